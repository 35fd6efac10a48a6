## category.mako: one section of the catalog: its products with facets, sorting and pages.
## Receives: title, request_id, tree, category (Category), ancestors (list[Category]),
## asked (Filters: the page's sort, page and filters), page (SearchPage: products, total,
## pages, facets with counts, chosen filters), sorts (dict[str, str]).
<%inherit file="base.mako"/>
<%namespace file="_listing.mako" import="listing"/>
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
% if category.children and not page.sections:
## (otherwise the Section facet links the sub-sections, with counts and the filters kept)
<nav aria-label="Sub-sections of ${category.name}">
  <ul class="subnav">
  % for child in category.children:
    <li><a href="/c/${child.path}">${child.name}</a></li>
  % endfor
  </ul>
</nav>
% endif
% if page.total == 0:
<p>Nothing here matches these filters (<a href="${asked.cleared()}">show every product of ${category.name}</a>).</p>
% endif
${listing(page, asked, sorts)}
