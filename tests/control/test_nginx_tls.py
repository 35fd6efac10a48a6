"""The front tier over TLS, end to end: real nginx with a certificate made for the test,
in front of ``sleigh up``; a client that trusts only that certificate."""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from sleigh.daemons.control.nginx_cmd import config_options
from sleigh.daemons.control.settings import load_settings
from sleigh.daemons.runtime.sockets import UnixHTTPConnection
from sleigh.webapp.security.sessions import COOKIE
from tests.control.test_nginx import (
    LONG_TTLS,
    _certificate,
    _nginx,
    _write_nginx,
    running_nginx,
)
from tests.plugins.daemons import short_tmpdir
from tests.plugins.up import running_shop

HOST = "shop.example"


class _UnixTLSConnection(http.client.HTTPSConnection):
    """HTTPS to nginx's TLS listener on a Unix socket, checking its certificate as
    *HOST*'s against *context*."""

    def __init__(self, path: Path, context: ssl.SSLContext) -> None:
        super().__init__(HOST, timeout=30, context=context)
        self.unix_path = str(path)
        self.tls = context

    def connect(self) -> None:
        raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        raw.settimeout(self.timeout)
        try:
            raw.connect(self.unix_path)
            self.sock = self.tls.wrap_socket(raw, server_hostname=HOST)
        except BaseException:
            raw.close()
            raise


@pytest.fixture
def tls_front(tmp_path: Path) -> Iterator[tuple[Path, Path, ssl.SSLContext]]:
    """nginx with a certificate for *HOST* in front of ``sleigh up``: its plain and its
    TLS socket, and a client context that trusts the certificate alone."""
    nginx = _nginx()
    home = tmp_path / "home"
    with running_shop(home, products=60, workers=1, config=None, **LONG_TTLS) as shop:
        base = short_tmpdir()
        cert, key = _certificate(base)
        plain, tls = base / "plain.sock", base / "tls.sock"
        options = config_options(
            upstream=[shop.address.removeprefix("http://").rstrip("/")],
            listen=f"unix:{plain}",
            tls_listen=f"unix:{tls}",
            tls_cert=cert,
            tls_key=key,
            server_name=HOST,
            cache_dir=base / "pages",
        )
        main = _write_nginx(base, options, load_settings(None, shop.env, home=home))
        with running_nginx(nginx, main, [plain, tls]):
            yield plain, tls, ssl.create_default_context(cafile=str(cert))


def _ask(
    conn: http.client.HTTPConnection, path: str, **headers: str
) -> tuple[int, dict[str, str], str]:
    try:
        if "form" in headers:
            body = headers.pop("form")
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            conn.request("POST", path, body=body, headers={"Host": HOST, **headers})
        else:
            conn.request("GET", path, headers={"Host": HOST, **headers})
        answer = conn.getresponse()
        text = answer.read().decode()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, text
    finally:
        conn.close()


@pytest.mark.slow
def test_the_shop_over_tls_keeps_pages_marks_cookies_secure_and_redirects_plain_http(
    tls_front: tuple[Path, Path, ssl.SSLContext],
) -> None:
    plain, tls, context = tls_front
    hsts = "max-age=31536000"

    status, headers, _ = _ask(UnixHTTPConnection(plain), "/p/5?x=1")
    assert status == 301 and headers["location"] == f"https://{HOST}/p/5?x=1"

    status, first, page = _ask(_UnixTLSConnection(tls, context), "/p/5")
    assert status == 200 and first["strict-transport-security"] == hsts
    assert "set-cookie" not in first
    _, again, same = _ask(_UnixTLSConnection(tls, context), "/p/5")
    assert again["x-cache-status"] == "HIT" and same == page

    # The app hears the shopper came over TLS (X-Forwarded-Proto): its cookie is Secure.
    status, added, _ = _ask(
        _UnixTLSConnection(tls, context),
        "/cart/add",
        form="product=5&quantity=1",
        Origin=f"https://{HOST}",
    )
    assert status == 303 and added["location"] == "/cart", added
    cookie = added["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "Secure" in cookie and "HttpOnly" in cookie
    status, cart, body = _ask(
        _UnixTLSConnection(tls, context), "/cart", Cookie=cookie.split(";", 1)[0]
    )
    assert status == 200 and "/p/5" in body and cart["strict-transport-security"] == hsts

    status, css, _ = _ask(_UnixTLSConnection(tls, context), "/static/style.css")
    assert status == 200 and css["strict-transport-security"] == hsts

    # A client that does not trust the certificate is refused at the handshake.
    with pytest.raises(ssl.SSLCertVerificationError):
        _ask(_UnixTLSConnection(tls, ssl.create_default_context()), "/p/5")
