## checkout.mako: the shopper's details, shipping and card (a private page).
## Receives: title, request_id, form (CheckoutForm: values, errors), cart (CartView),
## shipping (dict: key -> (label, cents, free_from)), csrf (str).
<%inherit file="base.mako"/>
<%! from sleigh.webapp.models.values import format_price %>
<%def name="field(name, label, type='text', autocomplete='', required=True, hint='')">
  <% error = form.errors.get(name, '') %>
  <div class="field${' invalid' if error else ''}">
    <label for="f-${name}">${label}${'' if required else ' (optional)'}</label>
    % if hint:
    <p class="hint" id="hint-${name}">${hint}</p>
    % endif
    <input id="f-${name}" name="${name}" type="${type}" value="${form.values.get(name, '') if type != 'password' else ''}"
      % if autocomplete:
           autocomplete="${autocomplete}"
      % endif
      % if required:
           required
      % endif
      % if error:
           aria-invalid="true" aria-describedby="err-${name}"
      % endif
    >
    % if error:
    <p class="error" id="err-${name}">${error}</p>
    % endif
  </div>
</%def>
<h1>Checkout</h1>
% if form.errors:
<div class="errors" role="alert">
  <h2>Please check ${len(form.errors)} ${'thing' if len(form.errors) == 1 else 'things'}</h2>
  <ul>
  % for name, message in form.errors.items():
    <li><a href="#f-${name}">${message}</a></li>
  % endfor
  </ul>
</div>
% endif
<p>${cart.count} ${'item' if cart.count == 1 else 'items'}, ${cart.subtotal}. <a href="/cart">Change your cart</a></p>
<form method="post" action="/checkout" class="checkout" novalidate>
  <input type="hidden" name="csrf" value="${csrf}">
  <fieldset>
    <legend>Contact</legend>
    ${field('email', 'Email', type='email', autocomplete='email', hint='We send the confirmation here.')}
  </fieldset>
  <fieldset>
    <legend>Delivery address</legend>
    ${field('name', 'Full name', autocomplete='name')}
    ${field('line1', 'Address', autocomplete='address-line1')}
    ${field('line2', 'Address line 2', autocomplete='address-line2', required=False)}
    ${field('city', 'Town or city', autocomplete='address-level2')}
    ${field('region', 'State or region', autocomplete='address-level1', required=False)}
    ${field('postal_code', 'Postcode or ZIP', autocomplete='postal-code')}
    ${field('country', 'Country code', autocomplete='country', hint='Two letters, such as US or GB.')}
    ${field('phone', 'Phone', type='tel', autocomplete='tel', required=False)}
  </fieldset>
  <fieldset>
    <legend>Shipping</legend>
    % for key, (label, cents, free_from) in shipping.items():
    <div class="choice">
      <input type="radio" id="ship-${key}" name="shipping" value="${key}"${' checked' if form.values.get('shipping') == key else ''}>
      <label for="ship-${key}">${label}: ${format_price(cents)}${(' (free from ' + format_price(free_from) + ')') if free_from else ''}</label>
    </div>
    % endfor
    % if 'shipping' in form.errors:
    <p class="error" id="err-shipping">${form.errors['shipping']}</p>
    % endif
  </fieldset>
  <fieldset>
    <legend>Payment</legend>
    <p class="hint">Sandbox: use 4242 4242 4242 4242, any future date, any 3 digits.</p>
    ${field('card', 'Card number', autocomplete='cc-number')}
    ${field('expiry', 'Expiry date (MM/YY)', autocomplete='cc-exp')}
    ${field('cvc', 'Security code', autocomplete='cc-csc')}
  </fieldset>
  <button type="submit">Review your order</button>
</form>
