"""The cart pages: show, add, change, remove; and the per-shopper header fragment.

Cart pages are private (they show one shopper's data). Adding comes from
product pages that proxies cache for everyone, so that form carries no
CSRF token and is checked by origin instead (see :mod:`..security.forms`);
the cart page's own forms carry the session's token.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from ..keys import CARTS, VIEWS
from ..models.cart import MAX_QUANTITY, Cart, CartError
from ..security.forms import FIELD, TOKENS, check_origin, check_token
from ..security.sessions import Session, get_session

routes = web.RouteTableDef()

NOTICE = "notice"


def see_other(location: str) -> web.Response:
    """A ``303 See Other``: after a form, the browser loads *location* with GET."""
    return web.Response(status=303, headers={"Location": location})


def _number(form: Mapping[str, object], name: str, low: int, high: int) -> int:
    raw = str(form.get(name, "")).strip()
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise web.HTTPBadRequest(text=f"{name} must be a whole number from {low} to {high}.")
    return int(raw)


async def load_cart(request: web.Request, session: Session) -> Cart:
    """The session's cart: the one it names, else the signed-in customer's open cart."""
    carts = request.app[CARTS]
    cart_id = session.data.get("cart")
    if cart_id is None and session.customer_id is not None:
        cart_id = await carts.customer_cart(session.customer_id)
    return await carts.load(cart_id)


async def _save(request: web.Request, session: Session, cart: Cart) -> None:
    cart_id = await request.app[CARTS].save(cart, customer_id=session.customer_id)
    if session.data.get("cart") != cart_id:
        session.set("cart", cart_id)


@routes.get("/cart", name="cart")
async def show(request: web.Request) -> web.Response:
    session = await get_session(request)
    assert session is not None
    carts = request.app[CARTS]
    cart = await load_cart(request, session)
    return request.app[VIEWS].render(
        request,
        "cart.mako",
        title="Your cart",
        cart=await carts.view(cart),
        csrf=request.app[TOKENS].token(session),
        notice=session.pop(NOTICE, ""),
        max_quantity=MAX_QUANTITY,
    )


@routes.post("/cart/add", name="cart_add")
async def add(request: web.Request) -> web.Response:
    check_origin(request)
    form = await request.post()
    product_id = _number(form, "product", 1, 2**31 - 1)
    quantity = _number(form, "quantity", 1, MAX_QUANTITY) if form.get("quantity") else 1
    item = await request.app[CARTS].catalog.product(product_id)
    if item is None:
        raise web.HTTPNotFound(text="That product is no longer in the shop.")
    session = await get_session(request)
    assert session is not None
    cart = await load_cart(request, session)
    try:
        cart.add(product_id, quantity)
    except CartError as exc:
        session.set(NOTICE, str(exc))
    else:
        await _save(request, session, cart)
        session.set(NOTICE, f"Added {item.title} to your cart.")
    return see_other("/cart")


@routes.post("/cart/update", name="cart_update")
async def update(request: web.Request) -> web.Response:
    form = await request.post()
    session = await get_session(request)
    assert session is not None
    check_token(request, session, str(form.get(FIELD, "")))
    product_id = _number(form, "product", 1, 2**31 - 1)
    quantity = 0 if "remove" in form else _number(form, "quantity", 0, MAX_QUANTITY)
    cart = await load_cart(request, session)
    if product_id in cart.lines:
        cart.set(product_id, quantity)
        await _save(request, session, cart)
        session.set(NOTICE, "Your cart was updated." if quantity else "The item was removed.")
    return see_other("/cart")


@routes.get("/fragment/header", name="header_fragment")
async def header_fragment(request: web.Request) -> web.Response:
    """The per-shopper bits of a cacheable page: cart count and greeting (private)."""
    session = await get_session(request, create=False)
    count = 0
    if session is not None:
        count = (await load_cart(request, session)).count
    signed_in = session is not None and session.customer_id is not None
    greeting = session.data.get("name", "") if session is not None else ""
    return request.app[VIEWS].render(
        request, "_header_fragment.mako", count=count, signed_in=signed_in, greeting=greeting
    )
