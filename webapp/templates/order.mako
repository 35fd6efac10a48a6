## order.mako: one order and its status (a private page).
## Receives: title, request_id, order (Order), notice (str).
<%inherit file="base.mako"/>
% if notice:
<p class="notice" role="status">${notice}</p>
% endif
% if order.status == 'paid':
<h1>Thank you! Your order number is ${order.number}</h1>
<p>We sent a confirmation to ${order.email}.</p>
% else:
<h1>Order ${order.number}</h1>
% endif
<p class="status">Status: <strong>${order.status_label}</strong></p>
% if order.status == 'declined':
<p>Your card was not charged. <a href="/checkout">Try another card</a>.</p>
% endif
<table class="cart">
  <caption>Order ${order.number}, placed ${order.created_at.strftime('%d %B %Y')}</caption>
  <thead><tr><th scope="col">Item</th><th scope="col">Price</th><th scope="col">Quantity</th><th scope="col">Total</th></tr></thead>
  <tbody>
  % for line in order.lines:
    <tr><th scope="row"><a href="/p/${line.product_id}">${line.title}</a></th><td>${line.unit_price}</td><td>${line.quantity}</td><td>${line.total}</td></tr>
  % endfor
  </tbody>
  <tfoot>
    <tr><th scope="row" colspan="3">Subtotal</th><td>${order.money(order.subtotal_cents)}</td></tr>
    <tr><th scope="row" colspan="3">Shipping</th><td>${order.money(order.shipping_cents)}</td></tr>
    <tr><th scope="row" colspan="3">Total</th><td><strong>${order.money(order.total_cents)}</strong></td></tr>
  </tfoot>
</table>
