"""Accounts: sign up, sign in (the guest cart merges in), sign out, password
reset by a signed, expiring, single-use link, addresses and order history.

Every page here is private; every form carries the session's CSRF token.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

from aiohttp import web

from ..keys import ACCOUNTS, CARTS, CHECKOUT, CONFIG, RESET, VIEWS
from ..models.checkout import ADDRESS_FIELDS, parse_checkout, validate_email
from ..models.customers import Customer, EmailTaken, password_problem
from ..security.forms import FIELD, TOKENS, check_token
from ..security.sessions import Session, get_session, renew_session
from .cart import NOTICE, see_other

routes = web.RouteTableDef()

#: The fields of each account form: (name, label, input type, autocomplete).
FORMS = {
    "signin": [
        ("email", "Email", "email", "email"),
        ("password", "Password", "password", "current-password"),
    ],
    "signup": [
        ("name", "Your name", "text", "name"),
        ("email", "Email", "email", "email"),
        ("password", "Password (10 characters or more)", "password", "new-password"),
        ("confirm", "Password again", "password", "new-password"),
    ],
    "reset": [("email", "Email", "email", "email")],
    "newpass": [
        ("password", "New password (10 characters or more)", "password", "new-password"),
        ("confirm", "New password again", "password", "new-password"),
    ],
}
TITLES = {
    "signin": ("Sign in", "Sign in"),
    "signup": ("Create an account", "Create account"),
    "reset": ("Forgot your password?", "Send me a link"),
    "newpass": ("Choose a new password", "Save password"),
}


async def _session(request: web.Request) -> Session:
    session = await get_session(request)
    assert session is not None
    return session


def _next(raw: object) -> str:
    """A local path to go to after signing in (anything else: the account page)."""
    text = str(raw or "")
    ok = text.startswith("/") and not text.startswith("//") and "\\" not in text
    return text if ok and text.isprintable() and len(text) < 500 else "/account"


def _form(
    request: web.Request,
    session: Session,
    kind: str,
    *,
    action: str,
    values: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
    status: int = 200,
) -> web.Response:
    title, button = TITLES[kind]
    return request.app[VIEWS].render(
        request,
        "account_form.mako",
        status=status,
        title=title,
        kind=kind,
        fields=FORMS[kind],
        button=button,
        action=action,
        values=values or {},
        errors=errors or {},
        notice=session.pop(NOTICE, ""),
        csrf=request.app[TOKENS].token(session),
    )


async def _posted(request: web.Request) -> tuple[Session, Mapping[str, str]]:
    session = await _session(request)
    data = await request.post()
    check_token(request, session, str(data.get(FIELD, "")))
    return session, {k: str(v)[:1000] for k, v in data.items() if isinstance(v, str)}


async def _sign_in(request: web.Request, customer: Customer) -> None:
    """Bind the session (under a new id) to *customer*; fold the guest cart in."""
    session = await renew_session(request)
    session.sign_in(customer.id)
    session.set("name", customer.name)
    guest = session.data.get("cart")
    carts = request.app[CARTS]
    cart_id = (
        await carts.merge(guest, customer.id) if guest else await carts.customer_cart(customer.id)
    )
    session.set("cart", cart_id)


@routes.get("/account/signin", name="signin")
async def signin_page(request: web.Request) -> web.Response:
    session = await _session(request)
    action = "/account/signin?next=" + quote(_next(request.query.get("next")), safe="/")
    return _form(request, session, "signin", action=action)


@routes.post("/account/signin")
async def signin(request: web.Request) -> web.Response:
    session, form = await _posted(request)
    email, _ = validate_email(form.get("email"))
    customer = await request.app[ACCOUNTS].authenticate(email, form.get("password", ""))
    if customer is None:
        errors = {"email": "That email and password do not match an account."}
        action = "/account/signin?next=" + quote(_next(request.query.get("next")), safe="/")
        return _form(
            request,
            session,
            "signin",
            action=action,
            values={"email": email},
            errors=errors,
            status=400,
        )
    await _sign_in(request, customer)
    return see_other(_next(request.query.get("next")))


@routes.get("/account/signup", name="signup")
async def signup_page(request: web.Request) -> web.Response:
    return _form(request, await _session(request), "signup", action="/account/signup")


@routes.post("/account/signup")
async def signup(request: web.Request) -> web.Response:
    session, form = await _posted(request)
    email, error = validate_email(form.get("email"))
    name = form.get("name", "").strip()
    errors = {"email": error} if error else {}
    if not 1 <= len(name) <= 200 or not name.isprintable():
        errors["name"] = "Tell us your name (up to 200 characters)."
    problem = password_problem(form.get("password", ""), form.get("confirm", ""))
    if problem:
        errors["password"] = problem
    if not errors:
        try:
            customer = await request.app[ACCOUNTS].create(email, name, form["password"])
        except EmailTaken:
            errors["email"] = "That email has an account already: sign in instead."
        else:
            await _sign_in(request, customer)
            return see_other("/account")
    values = {"email": email, "name": name}
    return _form(
        request,
        session,
        "signup",
        action="/account/signup",
        values=values,
        errors=errors,
        status=400,
    )


@routes.post("/account/signout", name="signout")
async def signout(request: web.Request) -> web.Response:
    await _posted(request)
    session = await renew_session(request)
    session.sign_in(None)
    session.data.clear()
    return see_other("/")


@routes.get("/account", name="account")
async def account(request: web.Request) -> web.Response:
    session = await _session(request)
    if session.customer_id is None:
        return see_other("/account/signin?next=/account")
    customer = await request.app[ACCOUNTS].get(session.customer_id)
    if customer is None:  # the account was deleted
        session.sign_in(None)
        return see_other("/account/signin")
    return request.app[VIEWS].render(
        request,
        "account.mako",
        title="Your account",
        customer=customer,
        orders=await request.app[CHECKOUT].orders.history(customer.id),
        addresses=await request.app[ACCOUNTS].addresses(customer.id),
        address_fields=ADDRESS_FIELDS,
        errors={},
        values={},
        notice=session.pop(NOTICE, ""),
        csrf=request.app[TOKENS].token(session),
    )


@routes.post("/account/addresses", name="addresses")
async def addresses(request: web.Request) -> web.Response:
    session, form = await _posted(request)
    if session.customer_id is None:
        return see_other("/account/signin?next=/account")
    accounts = request.app[ACCOUNTS]
    delete = form.get("delete", "")
    if delete.isascii() and delete.isdigit():
        await accounts.delete_address(session.customer_id, int(delete))
        session.set(NOTICE, "The address was removed.")
        return see_other("/account")
    parsed = parse_checkout({**form, "email": "a@b.co", "shipping": "standard"})
    if not parsed.ok:
        session.set(NOTICE, "Please check the address: " + "; ".join(parsed.errors.values()))
        return see_other("/account#new-address")
    await accounts.add_address(session.customer_id, parsed.address())
    session.set(NOTICE, "The address was saved.")
    return see_other("/account")


@routes.get("/account/reset", name="reset")
async def reset_page(request: web.Request) -> web.Response:
    return _form(request, await _session(request), "reset", action="/account/reset")


@routes.post("/account/reset")
async def reset(request: web.Request) -> web.Response:
    session, form = await _posted(request)
    email, error = validate_email(form.get("email"))
    if error:
        return _form(
            request,
            session,
            "reset",
            action="/account/reset",
            values={"email": email},
            errors={"email": error},
            status=400,
        )
    config = request.app[CONFIG]
    found = await request.app[ACCOUNTS].start_reset(email, config.reset_ttl)
    if found is not None:
        customer, token = found
        link = f"{request.scheme}://{request.host}/account/reset/{request.app[RESET].sign(token)}"
        minutes = int(config.reset_ttl // 60)
        body = (
            f"Hello {customer.name},\n\nTo choose a new password for your sleigh account,"
            f" open this link within {minutes} minutes:\n\n{link}\n\n"
            "If you did not ask for this, ignore this message: your password stays as it is.\n"
        )
        await request.app[CHECKOUT].mailer.send(customer.email, "Your sleigh password", body)
    session.set(NOTICE, f"If {email} has an account, we sent it a link to choose a new password.")
    return see_other("/account/signin")


async def _reset_target(request: web.Request, password: str | None) -> int | None:
    token = request.app[RESET].unsign(request.match_info["token"])
    if token is None:
        return None
    return await request.app[ACCOUNTS].finish_reset(token, password)


@routes.get(r"/account/reset/{token:[A-Za-z0-9_.-]{1,200}}", name="reset_token")
async def new_password_page(request: web.Request) -> web.Response:
    session = await _session(request)
    if await _reset_target(request, None) is None:
        session.set(NOTICE, "That link has expired or was used already; ask for a new one.")
        return see_other("/account/reset")
    return _form(request, session, "newpass", action=request.path)


@routes.post(r"/account/reset/{token:[A-Za-z0-9_.-]{1,200}}")
async def new_password(request: web.Request) -> web.Response:
    session, form = await _posted(request)
    problem = password_problem(form.get("password", ""), form.get("confirm", ""))
    if problem:
        return _form(
            request,
            session,
            "newpass",
            action=request.path,
            errors={"password": problem},
            status=400,
        )
    customer_id = await _reset_target(request, form["password"])
    if customer_id is None:
        session.set(NOTICE, "That link has expired or was used already; ask for a new one.")
        return see_other("/account/reset")
    customer = await request.app[ACCOUNTS].get(customer_id)
    assert customer is not None
    await _sign_in(request, customer)
    session = await _session(request)
    session.set(NOTICE, "Your new password is saved, and you are signed in.")
    return see_other("/account")
