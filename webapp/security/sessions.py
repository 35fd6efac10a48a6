"""Server-side sessions behind a signed cookie.

The cookie holds a random session id and its HMAC-SHA256 tag (see
:class:`~.keys.Signer`); the session's data lives in the database (the
truth) and in the object cache (so the next read is fast): every save
writes both. A cookie that does not verify is as good as no cookie: the
shopper gets a fresh session, never an error page and never someone
else's session.

Sessions are loaded lazily: a page that never asks for the session (a
catalog page a proxy may cache) neither reads nor sets the cookie. A
response that did touch a session is marked private, whatever the
controller said, so a proxy can never cache one shopper's cookie.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from aiohttp import web
from aiohttp.typedefs import Handler
from sqlalchemy.ext.asyncio import AsyncEngine

from ...daemons.cache.client import CacheClientError
from ..db import schema
from ..models.store import ObjectCache
from .keys import Keys, Signer, b64

log = logging.getLogger("sleigh.web.sessions")

COOKIE = "sid"
CACHE_PREFIX = "sess:"
#: The longest a session stays in the object cache between reads.
CACHE_TTL = 3600.0


@dataclass
class Session:
    """One shopper's server-side state.

    :ivar data: small JSON-able values (the cart id, a flash message...).
    """

    id: str
    expires_at: float
    customer_id: int | None = None
    data: dict[str, Any] = field(default_factory=dict)
    new: bool = False
    modified: bool = False

    def set(self, key: str, value: Any) -> None:
        self.data[key] = value
        self.modified = True

    def pop(self, key: str, default: Any = None) -> Any:
        if key in self.data:
            self.modified = True
        return self.data.pop(key, default)

    def sign_in(self, customer_id: int | None) -> None:
        """Bind the session to a customer (``None``: sign out)."""
        self.customer_id = customer_id
        self.modified = True


class SessionStore:
    """Loads and saves sessions: cache, then database; saves go to both."""

    def __init__(
        self,
        engine: AsyncEngine,
        cache: ObjectCache | None,
        keys: Keys,
        *,
        ttl: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.cache = cache
        self.ttl = ttl
        self.signer = Signer(keys, "session-cookie")
        self._clock = clock

    def new(self) -> Session:
        """A fresh session (saved only once something is put in it)."""
        sid = b64(secrets.token_bytes(24))
        return Session(sid, self._clock() + self.ttl, new=True, modified=True)

    async def load(self, cookie: str | None) -> Session | None:
        """The live session a cookie names, else ``None`` (bad tag, unknown, expired)."""
        sid = self.signer.unsign(cookie) if cookie else None
        if sid is None:
            return None
        found = await self._cached(sid)
        if found is None:
            found = await self._stored(sid)
            if found is not None:
                await self._cache(found)
        if found is None or found.expires_at <= self._clock():
            return None
        return found

    async def save(self, session: Session) -> None:
        """Write *session* to the database, then to the cache; its expiry slides."""
        session.expires_at = self._clock() + self.ttl
        values = {
            "customer_id": session.customer_id,
            "data": session.data,
            "expires_at": datetime.fromtimestamp(session.expires_at, UTC),
        }
        async with self.engine.begin() as conn:
            table = schema.sessions
            done = await conn.execute(table.update().where(table.c.id == session.id).values(values))
            if done.rowcount == 0:
                now = datetime.fromtimestamp(self._clock(), UTC)
                await conn.execute(table.insert().values(id=session.id, created_at=now, **values))
        await self._cache(session)
        session.new = session.modified = False

    async def delete(self, session: Session) -> None:
        """Forget *session* everywhere (sign-out, or a new id after sign-in)."""
        async with self.engine.begin() as conn:
            await conn.execute(schema.sessions.delete().where(schema.sessions.c.id == session.id))
        if self.cache is not None:
            try:
                await self.cache.delete(CACHE_PREFIX + session.id)
            except CacheClientError as exc:
                log.warning("session cache delete failed: %s", exc)

    def cookie_value(self, session: Session) -> str:
        return self.signer.sign(session.id)

    async def _cached(self, sid: str) -> Session | None:
        if self.cache is None:
            return None
        try:
            raw = await self.cache.get(CACHE_PREFIX + sid)
        except CacheClientError as exc:
            log.warning("session cache read failed, using the database: %s", exc)
            return None
        if not isinstance(raw, list) or len(raw) != 3:
            return None
        customer, data, expires = raw
        return Session(sid, float(expires), customer, dict(data))

    async def _stored(self, sid: str) -> Session | None:
        table = schema.sessions
        query = sa.select(table.c.customer_id, table.c.data, table.c.expires_at).where(
            table.c.id == sid
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        return Session(sid, row.expires_at.timestamp(), row.customer_id, dict(row.data))

    async def _cache(self, session: Session) -> None:
        if self.cache is None:
            return
        ttl = min(CACHE_TTL, session.expires_at - self._clock())
        if ttl <= 0:
            return
        value = [session.customer_id, session.data, session.expires_at]
        try:
            # Session data stays on the host: sticky balancing sends the
            # shopper back here, and any other host reads the database.
            await self.cache.set(CACHE_PREFIX + session.id, value, ttl, local=True)
        except CacheClientError as exc:
            log.warning("session cache write failed: %s", exc)


STORE = web.AppKey("session_store", SessionStore)


class _State:
    """What one request did with its session."""

    def __init__(self) -> None:
        self.session: Session | None = None
        self.loaded = False
        self.old: Session | None = None


_STATE = web.RequestKey("session_state", _State)


async def get_session(request: web.Request, *, create: bool = True) -> Session | None:
    """The request's session: from its cookie, else a new one (``create``), else ``None``."""
    state = request[_STATE]
    if not state.loaded:
        state.loaded = True
        state.session = await request.app[STORE].load(request.cookies.get(COOKIE))
    if state.session is None and create:
        state.session = request.app[STORE].new()
    return state.session


async def renew_session(request: web.Request) -> Session:
    """Move the request's session to a new id (at sign-in: no session fixation)."""
    current = await get_session(request)
    assert current is not None
    fresh = request.app[STORE].new()
    fresh.customer_id, fresh.data = current.customer_id, dict(current.data)
    state = request[_STATE]
    if not current.new:
        state.old = current
    state.session = fresh
    return fresh


def secure_request(request: web.Request, mode: str) -> bool:
    """Whether the cookie gets ``Secure``: always, never, or when the shopper uses TLS."""
    if mode != "auto":
        return mode == "always"
    return request.secure or request.headers.get("X-Forwarded-Proto", "") == "https"


def sessions(cookie_secure: str) -> Any:
    """Middleware: lazy session per request; saves what changed and sets the cookie."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        state = request[_STATE] = _State()
        response = await handler(request)
        if not state.loaded:
            return response
        response.headers["Cache-Control"] = "private, no-store"
        response.headers.popall("Expires", None)
        store = request.app[STORE]
        if state.old is not None:
            await store.delete(state.old)
        session = state.session
        if session is not None and session.modified:
            await store.save(session)
            response.set_cookie(
                COOKIE,
                store.cookie_value(session),
                max_age=int(store.ttl),
                path="/",
                httponly=True,
                samesite="Lax",
                secure=secure_request(request, cookie_secure),
            )
        return response

    return middleware
