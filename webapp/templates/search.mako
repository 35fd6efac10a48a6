## search.mako: search results, facets that narrow them, sorting and pages.
## Receives: title, request_id, tree, q (str), asked (Filters; "filters" is Mako's own name),
## page (SearchPage: products, total, pages, facets with counts, chosen filters; or None:
## nothing asked yet), popular (list[ProductCard]: shown when
## nothing matched), sorts (dict[str, str]).
<%inherit file="base.mako"/>
<%namespace file="_cards.mako" import="cards"/>
<%namespace file="_listing.mako" import="listing"/>
% if page is None:
<h1>Search the shop</h1>
<p>Type a few words in the search box: a toy, a book, a game, a brand.</p>
<h2>Popular right now</h2>
${cards(popular, 3)}
% else:
<h1>
% if asked.q:
  Results for &ldquo;${asked.q}&rdquo;
% else:
  ${page.category.name if page.category else 'All products'}
% endif
</h1>
% if page.suggestion:
<p class="did-you-mean">Did you mean <a href="${asked.url(q=page.suggestion)}">${page.suggestion}</a>?</p>
% endif
% if page.total == 0:
<p>Nothing matched${f" \u201c{asked.q}\u201d" if asked.q else ""}\
% if asked.narrowed:
 with these filters (<a href="${asked.cleared()}">search without them</a>)\
% endif
.</p>
<p>Check the spelling, try fewer or other words, or browse a section:</p>
<ul class="subnav">
% for root in tree.roots:
  <li><a href="/c/${root.path}">${root.name}</a></li>
% endfor
</ul>
<h2>Popular right now</h2>
${cards(popular, 3)}
% else:
${listing(page, asked, sorts)}
% endif
% endif
