## category.mako: one section of the catalog, a page of its products.
## Receives: title, request_id, tree, category (Category), ancestors (list[Category]),
## listing (Listing: products, total, page, pages), sort (str), sorts (dict[str, str]).
<%inherit file="base.mako"/>
<%namespace file="_cards.mako" import="cards"/>
<nav aria-label="Breadcrumb" class="crumbs">
  <ol>
    <li><a href="/">Home</a></li>
  % for a in ancestors:
    <li><a href="/c/${a.path}">${a.name}</a></li>
  % endfor
    <li aria-current="page">${category.name}</li>
  </ol>
</nav>
<h1>${category.name}</h1>
% if category.children:
<nav aria-label="Sub-sections of ${category.name}">
  <ul class="subnav">
  % for child in category.children:
    <li><a href="/c/${child.path}">${child.name}</a></li>
  % endfor
  </ul>
</nav>
% endif
<form class="sort" method="get" action="/c/${category.path}">
  <label for="sort">Sort by</label>
  <select id="sort" name="sort">
  % for key, label in sorts.items():
    <option value="${key}"${' selected' if key == sort else '' | n}>${label}</option>
  % endfor
  </select>
  <button type="submit">Sort</button>
</form>
<p class="count">${f"{listing.total:,}"} products &middot; page ${listing.page} of ${listing.pages}</p>
${cards(listing.products, 2)}
<nav aria-label="Pages" class="pager">
% if listing.page > 1:
  <a rel="prev" href="/c/${category.path}?sort=${sort}&amp;page=${listing.page - 1}">&larr; Previous</a>
% endif
% if listing.page < listing.pages:
  <a rel="next" href="/c/${category.path}?sort=${sort}&amp;page=${listing.page + 1}">Next &rarr;</a>
% endif
</nav>
