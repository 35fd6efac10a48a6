"""Checkout: details → review → place the order → confirmation.

The review page seals what was checked (cart lines, address, shipping,
the card's token, a fresh idempotency key) into one encrypted field; the
"place order" form sends it back with its CSRF token. Submitting that form
twice, or retrying it, finds the order already made under the same key.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from ...daemons.search.client import SearchUnavailable
from ..keys import CARTS, CHECKOUT, SEARCH, VIEWS
from ..models.checkout import CheckoutForm, parse_checkout
from ..models.orders import SHIPPING, Order, OutOfStock, shipping_cents
from ..security.forms import FIELD, TOKENS, check_token
from ..security.sessions import Session, get_session
from ..services.payments import PaymentError
from .cart import NOTICE, load_cart, see_other

log = logging.getLogger("sleigh.web.checkout")

routes = web.RouteTableDef()

ORDERS_KEY = "orders"


async def _session(request: web.Request) -> Session:
    session = await get_session(request)
    assert session is not None
    return session


def _form_page(
    request: web.Request, session: Session, form: CheckoutForm, cart: Any, *, status: int = 200
) -> web.Response:
    return request.app[VIEWS].render(
        request,
        "checkout.mako",
        status=status,
        title="Checkout",
        form=form,
        cart=cart,
        shipping=SHIPPING,
        csrf=request.app[TOKENS].token(session),
    )


@routes.get("/checkout", name="checkout")
async def start(request: web.Request) -> web.StreamResponse:
    session = await _session(request)
    cart = await load_cart(request, session)
    if not cart.lines:
        return see_other("/cart")
    form = CheckoutForm(values={"shipping": "standard", "country": "US"})
    form.values.update(session.data.get("checkout_details", {}))
    return _form_page(request, session, form, await request.app[CARTS].view(cart))


@routes.post("/checkout", name="checkout_review")
async def review(request: web.Request) -> web.StreamResponse:
    session = await _session(request)
    data = await request.post()
    check_token(request, session, str(data.get(FIELD, "")))
    cart = await load_cart(request, session)
    if not cart.lines:
        return see_other("/cart")
    view = await request.app[CARTS].view(cart)
    form = parse_checkout(data)
    token, label = await _card(request, data, form) if form.ok else ("", "")
    if not form.ok:
        return _form_page(request, session, form, view, status=400)
    session.set("checkout_details", dict(form.values))
    shipping = shipping_cents(form.values["shipping"], view.subtotal_cents)
    state = {
        "cart": cart.id,
        "lines": sorted(cart.lines.items()),
        "email": form.values["email"],
        "address": form.address(),
        "shipping": form.values["shipping"],
        "token": token,
        "card": label,
        "key": secrets.token_urlsafe(24),
    }
    return request.app[VIEWS].render(
        request,
        "review.mako",
        title="Review your order",
        cart=view,
        state=request.app[CHECKOUT].sealer.seal(state),
        details=state,
        shipping_label=SHIPPING[form.values["shipping"]][0],
        shipping_cents=shipping,
        total_cents=view.subtotal_cents + shipping,
        csrf=request.app[TOKENS].token(session),
    )


async def _card(
    request: web.Request, data: Mapping[str, object], form: CheckoutForm
) -> tuple[str, str]:
    """The payment provider's token and label for the card in *data*, or ``("", "")``
    with the provider's refusal as *form*'s error for the card."""
    try:
        return await request.app[CHECKOUT].payments.tokenize(
            str(data.get("card", "")), str(data.get("expiry", "")), str(data.get("cvc", ""))
        )
    except PaymentError as exc:
        form.errors["card"] = str(exc)
        return "", ""


@routes.post("/checkout/place", name="checkout_place")
async def place(request: web.Request) -> web.StreamResponse:
    session = await _session(request)
    data = await request.post()
    check_token(request, session, str(data.get(FIELD, "")))
    checkout = request.app[CHECKOUT]
    state = checkout.sealer.open(str(data.get("state", "")), max_age=checkout.max_age)
    if not isinstance(state, dict):
        session.set(NOTICE, "Your checkout expired; please check your details again.")
        return see_other("/checkout")
    cart = await load_cart(request, session)
    if cart.id != state["cart"] or sorted(cart.lines.items()) != [tuple(x) for x in state["lines"]]:
        existing = await checkout.orders.by_key(state["key"])
        if existing is not None:  # the cart was ordered by this very checkout
            return see_other(f"/orders/{existing.number}")
        session.set(NOTICE, "Your cart changed; please review your order again.")
        return see_other("/checkout")
    try:
        order, created = await checkout.orders.reserve(
            state["key"],
            dict(cart.lines),
            email=state["email"],
            method=state["shipping"],
            address=state["address"],
            customer_id=session.customer_id,
        )
    except OutOfStock as exc:
        await stock_changed(request, list(exc.left))
        session.set(NOTICE, "Some items sold out while you were checking out; see below.")
        return see_other("/cart")
    _remember(session, order)
    if created:
        await _pay(request, session, order, state)
    return see_other(f"/orders/{order.number}")


async def stock_changed(request: web.Request, ids: list[int]) -> None:
    """Stock of *ids* changed: drop the cached levels and tell search (in stock or not)
    within the request, so search results follow without waiting for a rebuild."""
    catalog = request.app[CARTS].catalog
    await catalog.forget_stock(ids)
    search = request.app.get(SEARCH)
    if search is None:
        return
    levels = await catalog.stock_now(ids)
    try:
        await search.update([(pid, None, levels.get(pid, 0) > 0) for pid in ids])
    except SearchUnavailable as exc:
        log.warning("search did not take the stock change of %s: %s", ids, exc)


def _remember(session: Session, order: Order) -> None:
    numbers = list(session.data.get(ORDERS_KEY, []))
    if order.number not in numbers:
        session.set(ORDERS_KEY, [*numbers[-19:], order.number])


async def _pay(request: web.Request, session: Session, order: Order, state: dict[str, Any]) -> None:
    checkout = request.app[CHECKOUT]
    answer = await checkout.payments.authorize(state["token"], order.total_cents, order.number)
    await checkout.orders.settle(
        order, approved=answer.approved, reference=answer.reference, cart_id=state["cart"]
    )
    await stock_changed(request, [line.product_id for line in order.lines])
    if not answer.approved:
        session.set(NOTICE, f"{answer.reason} Your order was not placed.")
        return
    session.pop("cart")
    paid = await checkout.orders.by_id(order.id)
    assert paid is not None
    try:
        await checkout.mailer.send(
            paid.email,
            f"Your sleigh order {paid.number}",
            request.app[VIEWS].render_text("mail_confirmation.mako", order=paid),
        )
    except Exception:  # a mail failure must not undo a paid order
        log.exception("confirmation mail for order %s failed", paid.number)


@routes.get(r"/orders/{number:[0-9]{6}-[A-Z0-9]{6}}", name="order")
async def show_order(request: web.Request) -> web.Response:
    session = await _session(request)
    number = request.match_info["number"]
    order = await request.app[CHECKOUT].orders.by_number(number)
    mine = order is not None and (
        number in session.data.get(ORDERS_KEY, [])
        or (order.customer_id is not None and order.customer_id == session.customer_id)
    )
    if order is None or not mine:
        raise web.HTTPNotFound(text="We could not find that order.")
    return request.app[VIEWS].render(
        request,
        "order.mako",
        title=f"Order {order.number}",
        order=order,
        notice=session.pop(NOTICE, ""),
    )
