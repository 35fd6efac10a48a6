## cart.mako: the shopper's cart (a private page).
## Receives: title, request_id, cart (CartView: lines[CartLineView], count, subtotal),
## csrf (str: the form token), notice (str: what the last action did, or ""),
## max_quantity (int).
<%inherit file="base.mako"/>
<h1>Your cart</h1>
% if notice:
<p class="notice" role="status">${notice}</p>
% endif
% if not cart.lines:
<p>Your cart is empty. <a href="/">Find something you like.</a></p>
% else:
<table class="cart">
  <caption>${cart.count} ${'item' if cart.count == 1 else 'items'} in your cart</caption>
  <thead>
    <tr><th scope="col">Item</th><th scope="col">Price</th><th scope="col">Quantity</th><th scope="col">Total</th></tr>
  </thead>
  <tbody>
  % for line in cart.lines:
    <tr>
      <th scope="row"><a href="/p/${line.card.id}/${line.card.slug}">${line.card.title}</a>
      % if line.card.available <= 0:
        <span class="stock out">Out of stock</span>
      % elif line.short:
        <span class="stock low">Only ${line.card.available} left</span>
      % endif
      </th>
      <td>${line.card.price}</td>
      <td>
        <form method="post" action="/cart/update" class="qty">
          <input type="hidden" name="csrf" value="${csrf}">
          <input type="hidden" name="product" value="${line.card.id}">
          <label for="qty-${line.card.id}" class="visually-hidden">Quantity of ${line.card.title}</label>
          <input id="qty-${line.card.id}" name="quantity" type="number" inputmode="numeric"
                 min="0" max="${max_quantity}" value="${line.quantity}" required>
          <button type="submit">Update</button>
          <button type="submit" name="remove" value="1">Remove</button>
        </form>
      </td>
      <td>${line.total}</td>
    </tr>
  % endfor
  </tbody>
  <tfoot>
    <tr><th scope="row" colspan="3">Subtotal</th><td>${cart.subtotal}</td></tr>
  </tfoot>
</table>
<p class="next"><a class="button" href="/checkout">Go to checkout</a></p>
% endif
