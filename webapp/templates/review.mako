## review.mako: the last look before the order is placed (a private page).
## Receives: title, request_id, cart (CartView), state (str: the sealed checkout),
## details (dict: email, address, shipping, card), shipping_label (str),
## shipping_cents (int), total_cents (int), csrf (str).
<%inherit file="base.mako"/>
<%! from sleigh.webapp.models.values import format_price %>
<h1>Review your order</h1>
<table class="cart">
  <caption>What you are buying</caption>
  <thead><tr><th scope="col">Item</th><th scope="col">Quantity</th><th scope="col">Total</th></tr></thead>
  <tbody>
  % for line in cart.lines:
    <tr><th scope="row">${line.card.title}</th><td>${line.quantity}</td><td>${line.total}</td></tr>
  % endfor
  </tbody>
  <tfoot>
    <tr><th scope="row" colspan="2">Subtotal</th><td>${cart.subtotal}</td></tr>
    <tr><th scope="row" colspan="2">Shipping: ${shipping_label}</th><td>${format_price(shipping_cents)}</td></tr>
    <tr><th scope="row" colspan="2">Total</th><td><strong>${format_price(total_cents)}</strong></td></tr>
  </tfoot>
</table>
<section aria-labelledby="to">
  <h2 id="to">Delivery to</h2>
  <address>
    ${details['address']['name']}<br>${details['address']['line1']}<br>
    % if details['address']['line2']:
    ${details['address']['line2']}<br>
    % endif
    ${details['address']['city']} ${details['address']['region']} ${details['address']['postal_code']}<br>
    ${details['address']['country']}
  </address>
  <p>Confirmation to ${details['email']}. Paying with ${details['card']}.</p>
  <p><a href="/checkout">Change these details</a></p>
</section>
<form method="post" action="/checkout/place">
  <input type="hidden" name="csrf" value="${csrf}">
  <input type="hidden" name="state" value="${state}">
  <button type="submit">Place your order</button>
</form>
