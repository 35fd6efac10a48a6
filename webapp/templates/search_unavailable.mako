## search_unavailable.mako: the search page when no search daemon answers (HTTP 503).
## Receives: title, request_id, q (str: what the shopper searched for).
<%inherit file="base.mako"/>
<h1>Search is unavailable right now</h1>
<p>We could not search for
% if q:
&ldquo;${q}&rdquo;
% else:
that
% endif
at the moment. Please try again in a minute; meanwhile the rest of the shop works as usual.</p>
<p><a href="/">Browse the sections from the home page</a>.</p>
<p>If this goes on, mention request <code>${request_id}</code> when you tell us.</p>
