## account.mako: the signed-in customer's page (private).
## Receives: title, request_id, customer (Customer), orders (list[Order], newest first),
## addresses (list[dict]: the addresses table's columns), address_fields (dict: field ->
## (label, required, longest)), errors (dict), values (dict), notice (str), csrf (str).
<%inherit file="base.mako"/>
<h1>Hello, ${customer.name}</h1>
% if notice:
<p class="notice" role="status">${notice}</p>
% endif
<section aria-labelledby="orders-title">
  <h2 id="orders-title">Your orders</h2>
  % if not orders:
  <p>No orders yet.</p>
  % else:
  <table class="cart">
    <thead><tr><th scope="col">Order</th><th scope="col">Placed</th><th scope="col">Status</th><th scope="col">Total</th></tr></thead>
    <tbody>
    % for order in orders:
      <tr><th scope="row"><a href="/orders/${order.number}">${order.number}</a></th>
        <td>${order.created_at.strftime('%d %b %Y')}</td><td>${order.status_label}</td>
        <td>${order.money(order.total_cents)}</td></tr>
    % endfor
    </tbody>
  </table>
  % endif
</section>
<section aria-labelledby="addresses-title">
  <h2 id="addresses-title">Your addresses</h2>
  % for address in addresses:
  <div class="address">
    <address>${address['name']}<br>${address['line1']}<br>${address['city']} ${address['postal_code']} ${address['country']}</address>
    <form method="post" action="/account/addresses">
      <input type="hidden" name="csrf" value="${csrf}">
      <button type="submit" name="delete" value="${address['id']}">Remove this address</button>
    </form>
  </div>
  % endfor
  <form method="post" action="/account/addresses" id="new-address">
    <input type="hidden" name="csrf" value="${csrf}">
    <fieldset>
      <legend>Add an address</legend>
      % for name, (label, required, longest) in address_fields.items():
      <div class="field">
        <label for="a-${name}">${label}${'' if required else ' (optional)'}</label>
        <input id="a-${name}" name="${name}" maxlength="${longest}"${' required' if required else ''}>
      </div>
      % endfor
      <button type="submit">Save address</button>
    </fieldset>
  </form>
</section>
<form method="post" action="/account/signout">
  <input type="hidden" name="csrf" value="${csrf}">
  <button type="submit">Sign out</button>
</form>
