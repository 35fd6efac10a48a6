## product.mako: one product.
## Receives: title, request_id, tree, product (Product), category (Category),
## ancestors (list[Category], ending with category), related (list[ProductCard]).
<%inherit file="base.mako"/>
<%namespace file="_cards.mako" import="cards"/>
<nav aria-label="Breadcrumb" class="crumbs">
  <ol>
    <li><a href="/">Home</a></li>
  % for a in ancestors:
    <li><a href="/c/${a.path}">${a.name}</a></li>
  % endfor
  </ol>
</nav>
<article class="product" aria-labelledby="product-title">
  <img src="/img/${product.image}.svg" alt="Picture of ${product.title}" width="400" height="400">
  <div class="details">
    <h1 id="product-title">${product.title}</h1>
    <p class="brand">by ${product.brand}</p>
    <p class="price">${product.price}</p>
    <p class="stock${' out' if product.available <= 0 else ''}">${product.stock_label}</p>
    % if product.available > 0:
    <form method="post" action="/cart/add" class="add">
      <input type="hidden" name="product" value="${product.id}">
      <label for="quantity">Quantity</label>
      <input id="quantity" name="quantity" type="number" inputmode="numeric" min="1" max="99" value="1">
      <button type="submit">Add to cart</button>
    </form>
    % endif
    <%include file="_product_facts.mako" args="product=product"/>
    <p class="description">${product.description}</p>
  </div>
</article>
% if related:
<section aria-labelledby="related-title">
  <h2 id="related-title">More from ${category.name}</h2>
  ${cards(related)}
</section>
% endif
