## _product_facts.mako: the facts list of a product page; a section may
## override it (books say "Reading age").
## Receives (args): product (Product).
<%page args="product"/>
<dl>
  <dt>Ages</dt><dd>${product.age_range}</dd>
  <dt>Brand</dt><dd>${product.brand}</dd>
  <dt>Item</dt><dd>${product.sku}</dd>
</dl>
