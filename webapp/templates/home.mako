## home.mako: the home page.
## Receives: title, request_id, tree (CategoryTree), popular (list[ProductCard]),
## sections (list[tuple[Category, list[ProductCard]]]).
<%inherit file="base.mako"/>
<%namespace file="_cards.mako" import="cards"/>
<section class="hero" aria-labelledby="hero-title">
  <h1 id="hero-title">Toys, books and video games for every age</h1>
  <p>Browse ${len(tree.by_id)} sections of the catalog.</p>
</section>
<section aria-labelledby="popular-title">
  <h2 id="popular-title">Popular right now</h2>
  ${cards(popular)}
</section>
% for root, items in sections:
<section aria-labelledby="s-${root.slug}">
  <h2 id="s-${root.slug}"><a href="/c/${root.path}">${root.name}</a></h2>
  <ul class="subnav">
  % for child in root.children:
    <li><a href="/c/${child.path}">${child.name}</a></li>
  % endfor
  </ul>
  ${cards(items)}
</section>
% endfor
