## search.mako: search results, facets that narrow them, sorting and pages.
## Receives: title, request_id, tree, q (str), asked (Filters; "filters" is Mako's own name),
## page (SearchPage, or None: nothing asked yet), popular (list[ProductCard]: shown when
## nothing matched), sorts (dict[str, str]).
<%inherit file="base.mako"/>
<%namespace file="_cards.mako" import="cards"/>
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
 with these filters (<a href="${asked.url(category=None, brands=(), price=None, age=None, in_stock=False)}">search without them</a>)\
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
<div class="results">
<aside class="facets" aria-label="Narrow the results">
% for facet in page.facets:
  <h2>${facet.title}</h2>
  <ul>
  % for v in facet.values:
    <li><a href="${v.url}"${' aria-current="true"' if v.selected else '' | n}>${v.label}</a> <span class="count">(${f"{v.count:,}"})</span></li>
  % endfor
  % if facet.clear_url:
    <li><a href="${facet.clear_url}">&times; any ${facet.title.lower()}</a></li>
  % endif
  </ul>
% endfor
  <h2>Availability</h2>
  <ul>
    <li><a href="${asked.url(in_stock=not asked.in_stock)}"${' aria-current="true"' if asked.in_stock else '' | n}>In stock only</a></li>
  </ul>
</aside>
<section aria-label="Results">
<form class="sort" method="get" action="/search">
  <input type="hidden" name="q" value="${asked.q}">
% if asked.category is not None:
  <input type="hidden" name="category" value="${asked.category}">
% endif
% for b in asked.brands:
  <input type="hidden" name="brand" value="${b}">
% endfor
% if asked.price:
  <input type="hidden" name="price" value="${asked.price}">
% endif
% if asked.in_stock:
  <input type="hidden" name="in_stock" value="1">
% endif
  <label for="sort">Sort by</label>
  <select id="sort" name="sort">
  % for key, label in sorts.items():
    <option value="${key}"${' selected' if key == asked.sort else '' | n}>${label}</option>
  % endfor
  </select>
  <label for="age">Age</label>
  <select id="age" name="age">
    <option value="">any</option>
  % for years in range(0, 15):
    <option value="${years}"${' selected' if asked.age == years else '' | n}>${years}</option>
  % endfor
  </select>
  <button type="submit">Apply</button>
</form>
<p class="count">${f"{page.total:,}"} products &middot; page ${asked.page} of ${page.pages}</p>
${cards(page.products, 2)}
<nav aria-label="Pages" class="pager">
% if asked.page > 1:
  <a rel="prev" href="${asked.url(page=asked.page - 1)}">&larr; Previous</a>
% endif
% if asked.page < page.pages:
  <a rel="next" href="${asked.url(page=asked.page + 1)}">Next &rarr;</a>
% endif
</nav>
</section>
</div>
% endif
% endif
