## _listing.mako: a listing of products with facets, chosen filters, sorting and pages;
## shared by search.mako and category.mako. Works without JavaScript (links and a GET form).
## The facets are in a <details> that site.js folds on a phone-width screen, so the
## products come first there (the chosen filters stay in view); without JavaScript it is open.
## def listing(page: SearchPage, asked: Filters, sorts: dict[str, str])
<%namespace file="_cards.mako" import="cards"/>
<%def name="listing(page, asked, sorts)">
<div class="results">
<aside class="facets" aria-label="Narrow the results">
% if page.chosen:
  <h2 id="facet-chosen">Chosen filters</h2>
  <ul class="chosen" aria-labelledby="facet-chosen">
  % for c in page.chosen:
    <li><a href="${c.remove_url}"><span class="visually-hidden">Remove the ${c.kind.lower()} filter: </span>${c.label} <span aria-hidden="true">&times;</span></a></li>
  % endfor
  % if len(page.chosen) > 1:
    <li><a href="${asked.cleared()}">Clear all filters</a></li>
  % endif
  </ul>
% endif
% if page.facets:
<details class="filters" open>
  <summary>Filter results</summary>
% endif
% for facet in page.facets:
  <h2 id="facet-${facet.name}">${facet.title}</h2>
  <ul aria-labelledby="facet-${facet.name}">
  % for v in facet.values:
    <li><a href="${v.url}"${' aria-current="true"' if v.selected else '' | n}>${v.label}</a> <span class="count">(${f"{v.count:,}"})</span><span class="visually-hidden"> products${", chosen: follow to remove" if v.selected else ""}</span></li>
  % endfor
  % if facet.clear_url:
    <li><a href="${facet.clear_url}">&times; any ${facet.title.lower()}</a></li>
  % endif
  </ul>
% endfor
% if page.facets:
</details>
% endif
</aside>
<section aria-label="Products">
<form class="sort" method="get" action="${asked.base}">
% if asked.q:
  <input type="hidden" name="q" value="${asked.q}">
% endif
% if asked.category is not None and not asked.browsing:
  <input type="hidden" name="category" value="${asked.category}">
% endif
% for b in asked.brands:
  <input type="hidden" name="brand" value="${b}">
% endfor
% if asked.price:
  <input type="hidden" name="price" value="${asked.price}">
% endif
% if asked.age:
  <input type="hidden" name="age" value="${asked.age}">
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
  <button type="submit">Sort</button>
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
</%def>
