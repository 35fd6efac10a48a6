## error.mako: an error page.
## Receives: title, request_id, code (int: the HTTP status), message (str), detail (str).
<%inherit file="base.mako"/>
<h1>${message}</h1>
% if detail:
<p>${detail}</p>
% endif
<p>Error ${code}. <a href="/">Back to the home page</a>.</p>
% if code >= 500:
<p>If you tell us about it, mention request <code>${request_id}</code>.</p>
% endif
