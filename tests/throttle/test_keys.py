"""The keys the middleware asks about for a request (``webapp/throttle_keys.py``)."""

from __future__ import annotations

from aiohttp.test_utils import make_mocked_request

from sleigh.daemons.runtime.config import load_section
from sleigh.daemons.throttle.config import ThrottleConfig
from sleigh.webapp.security.sessions import COOKIE
from sleigh.webapp.throttle_keys import Asks

KINDS = frozenset({"ip", "cpu", "session", "login"})


def _keys(cookie: str, path: str = "/p/5", **settings: str) -> list[bytes]:
    cfg = load_section(ThrottleConfig, {"client_ip_header": "X-Real-IP", **settings}, {})
    request = make_mocked_request("GET", path, headers={"X-Real-IP": "192.0.2.7", "Cookie": cookie})
    return Asks(cfg, KINDS).ask_for(request).keys


def test_the_shop_s_session_cookie_is_the_session_key_by_default() -> None:
    assert _keys(f"{COOKIE}=abc.def") == [b"ip:192.0.2.7", b"cpu:192.0.2.7", b"session:abc.def"]
    assert _keys("other=abc") == [b"ip:192.0.2.7", b"cpu:192.0.2.7"]


def test_the_session_cookie_s_name_is_a_setting() -> None:
    assert b"session:xyz" in _keys("shopper=xyz", session_cookie="shopper")
    keys = _keys(f"{COOKIE}=x", session_cookie="shopper")
    assert not any(k.startswith(b"session:") for k in keys)


def test_a_route_class_adds_its_key_by_address() -> None:
    assert b"login:192.0.2.7" in _keys("", path="/account/signin")
