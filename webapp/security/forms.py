"""Forms that change something: CSRF tokens and the same-origin check.

Every form on a private page carries a token: HMAC-SHA256 of the session
id under a key of its own (so the token is not the cookie and names no
session). A form on a page that proxies cache for everyone (the "add to
cart" button of a product page) cannot carry a per-shopper token; its
handler instead requires the browser's ``Origin`` (or, failing that,
``Referer``) to be this site, which a cross-site form cannot fake, on top
of the ``SameSite=Lax`` cookie that a cross-site POST does not carry.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlsplit

from aiohttp import web

from .keys import Keys, b64
from .sessions import Session

FIELD = "csrf"


class CsrfTokens:
    """Makes and checks the CSRF token of a session."""

    def __init__(self, keys: Keys) -> None:
        self._keys = keys.derive("csrf-token")

    def _token(self, key: bytes, session: Session) -> str:
        return b64(hmac.new(key, session.id.encode(), hashlib.sha256).digest())

    def token(self, session: Session) -> str:
        return self._token(self._keys[0], session)

    def valid(self, session: Session, token: str) -> bool:
        if session.new or not token.isascii():
            return False
        return any(hmac.compare_digest(self._token(k, session), token) for k in self._keys)


TOKENS = web.AppKey("csrf_tokens", CsrfTokens)


class FormRejected(web.HTTPForbidden):
    """A form without a valid token, or from another site."""


def check_token(request: web.Request, session: Session, token: str) -> None:
    """:raises FormRejected: unless *token* is this session's CSRF token."""
    if not request.app[TOKENS].valid(session, token):
        raise FormRejected(text="This form has expired. Please go back, reload and try again.")


def same_origin(request: web.Request) -> bool:
    """Whether the browser says the request comes from a page of this site."""
    source = request.headers.get("Origin") or request.headers.get("Referer") or ""
    if not source or source == "null":
        return False
    parts = urlsplit(source)
    return parts.netloc.lower() == request.host.lower() and parts.scheme in ("http", "https")


def check_origin(request: web.Request) -> None:
    """:raises FormRejected: unless the request comes from a page of this site."""
    if not same_origin(request):
        raise FormRejected(text="That form came from another site, so we did not act on it.")
