## mail_confirmation.mako: the order confirmation mail (plain text: every
## expression is written with the "n" filter, so nothing is HTML-escaped).
## Receives: order (Order, paid).
Thank you for your order from the sleigh shop.

Order number: ${order.number | n}
Status: ${order.status_label | n}

% for line in order.lines:
${str(line.quantity) | n} x ${line.title | n}  ${line.total | n}
% endfor

Subtotal: ${order.money(order.subtotal_cents) | n}
Shipping: ${order.money(order.shipping_cents) | n}
Total:    ${order.money(order.total_cents) | n}

Delivery to:
${order.address['name'] | n}
${order.address['line1'] | n}
% if order.address['line2']:
${order.address['line2'] | n}
% endif
${order.address['city'] | n} ${order.address['region'] | n} ${order.address['postal_code'] | n}
${order.address['country'] | n}
