## books/_product_facts.mako: a book's facts: publisher and reading age.
## Receives (args): product (Product).
<%page args="product"/>
<dl>
  <dt>Reading age</dt><dd>${product.age_range}</dd>
  <dt>Publisher</dt><dd>${product.brand}</dd>
  <dt>Item</dt><dd>${product.sku}</dd>
</dl>
