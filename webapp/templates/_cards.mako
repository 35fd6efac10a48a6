## _cards.mako: product card grid.
## def cards(products: list[ProductCard], heading_level: int)
<%def name="cards(products, heading_level=3)">
<ul class="cards">
% for p in products:
  <li class="card">
    <a href="/p/${p.id}/${p.slug}">
      <img src="/img/${p.image}.svg" alt="" width="200" height="200" loading="lazy">
      <h${heading_level} class="card-title">${p.title}</h${heading_level}>
    </a>
    <p class="brand">${p.brand}</p>
    <p class="price">${p.price}</p>
    % if p.available <= 0:
    <p class="stock out">Out of stock</p>
    % elif p.available <= 5:
    <p class="stock low">Only ${p.available} left</p>
    % endif
  </li>
% endfor
</ul>
</%def>
