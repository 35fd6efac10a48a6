## _header_fragment.mako: the per-shopper part of the page header, fetched
## apart so that the page around it stays cacheable.
## Receives: request_id, count (int: items in the cart), signed_in (bool), greeting (str: the name).
<a class="cart-link" href="/cart">Cart <span class="count">(${count})</span></a>\
% if signed_in:
 <a class="hello" href="/account">Hello, ${greeting}</a>\
% else:
 <a href="/account/signin">Sign in</a>\
% endif
