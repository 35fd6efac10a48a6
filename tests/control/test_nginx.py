"""The front tier's nginx (``sleigh nginx config|purge``).

The rendered configuration refuses values that would change its meaning, and
real nginx accepts it. In front of a running shop and a second app host, real
nginx keeps public pages (under their URL, whoever asks) and never a shopper's
own; a shopper with a session sticks to one app host while others spread over
both; ``sleigh nginx purge`` replaces a kept page with the app's current one.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from argparse import Namespace
from collections.abc import Iterator
from pathlib import Path

import pytest

from sleigh.daemons.control.nginx_cmd import (
    NginxError,
    config_options,
    default_upstream,
    main_config,
    render,
    values,
)
from sleigh.daemons.control.settings import Settings, load_settings
from sleigh.daemons.runtime.sockets import UnixHTTPConnection
from sleigh.webapp.models.values import format_price
from sleigh.webapp.security.sessions import COOKIE
from tests.plugins.daemons import DaemonFactory, short_tmpdir
from tests.plugins.up import UpShop, running_shop

#: The shop's TTLs in these tests (the longest stock's may be): a page is public for
#: the rest of the hour it was made in (see :func:`_kept_from_now`).
LONG_TTLS = {
    f"SLEIGH_WEB_{name}": "1h"
    for name in ("TREE_TTL", "PRODUCT_TTL", "PRICE_TTL", "STOCK_TTL", "LISTING_TTL", "PAGE_MAX_AGE")
}
#: Seconds a kept page must have left for the test's steps that expect it kept.
ENOUGH = 120


def _settings(tmp_path: Path, **environ: str) -> Settings:
    return load_settings(None, environ, home=tmp_path)


# -- the rendering, no nginx needed --------------------------------------------------------
def test_render_fills_every_placeholder_and_refuses_a_mismatch() -> None:
    assert render("a {{x}} b {{y}}", {"x": "1", "y": "2"}) == "a 1 b 2"
    with pytest.raises(NginxError, match=r"missing \['y'\]"):
        render("{{x}} {{y}}", {"x": "1"})
    with pytest.raises(NginxError, match=r"unused \['z'\]"):
        render("{{x}}", {"x": "1", "z": "2"})


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("upstream", ["10.0.0.1:80; include /etc/passwd"]),
        ("upstream", ["unix:/run/web sock"]),
        ("upstream", ["10.0.0.1"]),
        ("listen", "80 default_server; return 500"),
        ("server_name", "shop.example;"),
        ("cache_dir", Path("relative/dir")),
        ("cache_size", "1 g"),
        ("inactive", "10 minutes"),
        ("tls_cert", Path("cert.pem")),
        ("tls_listen", "443 ssl; include /x"),
    ],
)
def test_a_value_that_would_change_the_config_s_meaning_is_refused(
    option: str, value: object, tmp_path: Path
) -> None:
    flag = "--" + option.replace("_", "-")
    tls = {"tls_cert": Path("/etc/ssl/shop.pem"), "tls_key": Path("/etc/ssl/shop.key")}
    given = {**tls, option: value} if option.startswith("tls") else {option: value}
    with pytest.raises(NginxError, match=re.escape(flag)):
        values(config_options(**given), _settings(tmp_path))


def test_a_certificate_without_its_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(NginxError, match="--tls-cert and --tls-key go together"):
        values(config_options(tls_cert=Path("/etc/ssl/shop.pem")), _settings(tmp_path))


def test_the_default_upstream_is_this_host_s_web_tier(tmp_path: Path) -> None:
    assert default_upstream(_settings(tmp_path)) == "127.0.0.1:8080"
    ipv6 = _settings(tmp_path, SLEIGH_WEB_HOST="::1", SLEIGH_WEB_PORT="8081")
    assert default_upstream(ipv6) == "[::1]:8081"
    unix = _settings(tmp_path, SLEIGH_WEB_UNIX_SOCKET="run/web.sock")
    assert default_upstream(unix) == f"unix:{tmp_path}/run/web.sock"


def test_the_config_command_prints_the_file_or_a_clear_error(tmp_path: Path) -> None:
    sleigh = [sys.executable, "-m", "sleigh.daemons.control", "--home", str(tmp_path), "nginx"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLEIGH_")}
    upstreams = ["--upstream", "10.0.0.2:8080", "--upstream", "unix:/run/sleigh/web.sock"]
    good = subprocess.run(
        [*sleigh, "config", *upstreams], capture_output=True, text=True, timeout=60, env=env
    )
    assert good.returncode == 0, good.stderr
    assert "server 10.0.0.2:8080 max_fails=3" in good.stdout
    assert "server unix:/run/sleigh/web.sock max_fails=3" in good.stdout
    assert f"map $cookie_{COOKIE} $sleigh_sticky" in good.stdout
    assert "{{" not in good.stdout
    assert 'client_ip_header = "X-Real-IP"' in good.stderr  # (not set for this home)
    env["SLEIGH_THROTTLE_CLIENT_IP_HEADER"] = "X-Real-IP"
    told = subprocess.run(
        [*sleigh, "config", *upstreams], capture_output=True, text=True, timeout=60, env=env
    )
    assert told.returncode == 0 and told.stdout == good.stdout and told.stderr == ""
    bad = subprocess.run(
        [*sleigh, "config", "--upstream", "10.0.0.2:8080;"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert bad.returncode == 1
    assert bad.stdout == ""
    assert "--upstream: '10.0.0.2:8080;' is not HOST:PORT" in bad.stderr


# -- real nginx --------------------------------------------------------------------------
def _nginx() -> str:
    found = shutil.which("nginx", path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")
    if not found:
        if os.environ.get("SLEIGH_TEST_REQUIRE_NGINX") == "1":
            pytest.fail("nginx is not installed (SLEIGH_TEST_REQUIRE_NGINX=1)", pytrace=False)
        pytest.skip("nginx is not installed (apt-get install nginx-light)")
    return found


def _write_nginx(directory: Path, options: Namespace, settings: Settings) -> Path:
    """The rendered file and a main configuration that includes it, in *directory*."""
    from sleigh.daemons.control.nginx_cmd import template_text

    site = directory / "sleigh.conf"
    site.write_text(render(template_text(), values(options, settings)))
    main = directory / "nginx.conf"
    main.write_text(main_config(site, directory, connections=256, access_log=False))
    return main


def _certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for shop.example and its key, as PEM files."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "shop.example")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "shop.pem", directory / "shop.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.mark.parametrize("tls", [False, True], ids=["http", "tls"])
def test_nginx_accepts_the_rendered_config(tmp_path: Path, tls: bool) -> None:
    nginx = _nginx()
    cert, key = _certificate(tmp_path) if tls else (None, None)
    options = config_options(
        upstream=["127.0.0.1:8080", "[::1]:8081", "unix:/run/sleigh/web.sock"],
        listen="127.0.0.1:8088",
        server_name="shop.example www.shop.example",
        cache_dir=tmp_path / "pages",
        tls_cert=cert,
        tls_key=key,
        tls_listen="127.0.0.1:8443",
    )
    main = _write_nginx(tmp_path, options, _settings(tmp_path))
    rendered = (tmp_path / "sleigh.conf").read_text()
    if tls:
        assert "listen 127.0.0.1:8443 ssl;" in rendered
        assert f"ssl_certificate {cert};" in rendered
        assert "return 301 https://$host$request_uri;" in rendered
        hsts = 'add_header Strict-Transport-Security "max-age=31536000" always;'
        assert rendered.count(hsts) == 2  # (pages and static files: a location's own
        # add_header hides the server's)
    else:
        assert "ssl" not in rendered and "return 301" not in rendered
        assert "Strict-Transport-Security" not in rendered
    checked = subprocess.run(
        [nginx, "-t", "-c", str(main), "-p", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr


def _get(
    front: Path, path: str, cookie: str = "", form: str | None = None
) -> tuple[int, dict[str, str], str]:
    """GET *path* through nginx (POST *form*, url-encoded, from a page of the site)."""
    conn = UnixHTTPConnection(front, timeout=30)
    headers = {"Cookie": cookie} if cookie else {}
    try:
        if form is None:
            conn.request("GET", path, headers=headers)
        else:
            headers["Origin"] = "http://localhost"  # (http.client's Host: localhost)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            conn.request("POST", path, body=form, headers=headers)
        answer = conn.getresponse()
        body = answer.read().decode()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, body
    finally:
        conn.close()


def _served_by(front: Path, cookie: str = "") -> int:
    """The pid of the app host that answered (its ``/metrics``)."""
    status, _, body = _get(front, "/metrics", cookie)
    assert status == 200
    found = re.search(r"^sleigh_web_pid (\d+)", body, re.M)
    assert found, body[:500]
    return int(float(found.group(1)))


@pytest.fixture
def front(tmp_path: Path, daemon_factory: DaemonFactory) -> Iterator[tuple[Path, UpShop, int]]:
    """nginx on a Unix socket in front of ``sleigh up`` (one worker) and a second app
    host (a ``sleigh-web`` of the same home on a socket of its own); the nginx socket,
    the shop, and the second host's pid."""
    nginx = _nginx()
    home = tmp_path / "home"
    with running_shop(home, products=60, workers=1, config=None, **LONG_TTLS) as shop:
        second = daemon_factory.start(
            [sys.executable, "-m", "sleigh.webapp", "--home", str(home)],
            env={**shop.env, **LONG_TTLS},
        )
        base = short_tmpdir()
        socket_path = base / "front.sock"
        options = config_options(
            upstream=[shop.address.removeprefix("http://").rstrip("/"), f"unix:{second.address}"],
            listen=f"unix:{socket_path}",
            cache_dir=base / "pages",
        )
        main = _write_nginx(base, options, load_settings(None, shop.env, home=home))
        with running_nginx(nginx, main, [socket_path]):
            yield socket_path, shop, second.pid


@contextlib.contextmanager
def running_nginx(nginx: str, main: Path, sockets: list[Path]) -> Iterator[None]:
    """nginx with the main file *main* (its prefix the file's directory, its errors in
    ``errors.log`` there) until the block ends, once it listens on every one of *sockets*;
    stopped by its pid, the directory removed."""
    base = main.parent
    errors = base / "errors.log"
    with open(errors, "wb") as stderr:
        proc = subprocess.Popen(
            [nginx, "-c", str(main), "-p", str(base)], stdout=subprocess.DEVNULL, stderr=stderr
        )
    try:
        deadline = time.monotonic() + 30
        while not all(s.exists() for s in sockets) and time.monotonic() < deadline:
            assert proc.poll() is None, errors.read_text()
            time.sleep(0.05)
        assert all(s.exists() for s in sockets), "nginx did not listen"
        yield
    finally:
        proc.terminate()  # (SIGTERM: nginx's fast shutdown)
        proc.wait(30)
        shutil.rmtree(base, ignore_errors=True)


def _kept_from_now(sock: Path, path: str) -> tuple[dict[str, str], str]:
    """The first answer for *path* (not kept before), once its page has :data:`ENOUGH`
    seconds of its freshness left: a page is public until the end of its TTL's window,
    so one made near the end of a window is waited out and asked for again."""
    status, headers, page = _get(sock, path)
    assert status == 200 and headers["x-cache-status"] in ("MISS", "EXPIRED"), headers
    assert headers["cache-control"].startswith("public, max-age=")
    left = int(headers["cache-control"].rsplit("=", 1)[1])
    if left >= ENOUGH:
        return headers, page
    time.sleep(left + 1)
    return _kept_from_now(sock, path)


@pytest.mark.slow
def test_nginx_in_front_keeps_public_pages_sticks_sessions_and_purges(
    front: tuple[Path, UpShop, int],
) -> None:
    sock, shop, second = front
    # A product page is kept, under its URL whoever asks; it never sets a cookie.
    first, page = _kept_from_now(sock, "/p/5")
    _, again, same = _get(sock, "/p/5", cookie=f"{COOKIE}=somebody")
    assert again["x-cache-status"] == "HIT" and same == page
    assert "set-cookie" not in first and "set-cookie" not in again
    # A shopper's own pages are never kept: the cart filled from the kept page's form
    # shows its line, and the header fragment counts it.
    status, added, _ = _get(sock, "/cart/add", form="product=5&quantity=2")
    assert status == 303 and added["location"] == "/cart", added
    shopper = added["set-cookie"].split(";", 1)[0]
    for path, shows in (("/cart", "/p/5"), ("/fragment/header", '<span class="count">(2)</span>')):
        for _ in range(2):
            status, headers, body = _get(sock, path, cookie=shopper)
            assert status == 200 and headers["x-cache-status"] == "MISS", path
            assert headers["cache-control"] == "private, no-store"
            assert shows in body, path
    # Static files come from nginx itself.
    status, headers, _ = _get(sock, "/static/style.css")
    assert status == 200 and "x-cache-status" not in headers
    # A session sticks to one app host; requests without one reach both.
    hosts = {pid for pid in shop.workers()} | {second}
    for cookie in ("alpha", "bravo", "charlie"):
        served = {_served_by(sock, f"{COOKIE}={cookie}") for _ in range(6)}
        assert len(served) == 1 and served <= hosts, cookie
    assert {_served_by(sock) for _ in range(30)} == hosts
    # A page changed in the database shows only after a purge (its TTL is a day).
    db = sqlite3.connect(shop.home / "sleigh.db")
    with db:
        db.execute("UPDATE products SET price_cents = 123456 WHERE id = 5")
    db.close()
    flushed = subprocess.run(
        [sys.executable, "-m", "sleigh.daemons.control", "--home", str(shop.home),
         "cache", "flush", "--yes"],
        capture_output=True, text=True, timeout=60, env=shop.env,
    )  # fmt: skip
    assert flushed.returncode == 0, flushed.stderr
    new_price = format_price(123456)
    _, kept, body = _get(sock, "/p/5")
    assert kept["x-cache-status"] == "HIT" and new_price not in body
    purged = subprocess.run(
        [sys.executable, "-m", "sleigh.daemons.control", "--home", str(shop.home),
         "nginx", "purge", "/p/5", "--proxy", f"unix:{sock}"],
        capture_output=True, text=True, timeout=60, env=shop.env,
    )  # fmt: skip
    assert purged.returncode == 0, purged.stdout + purged.stderr
    assert purged.stdout.strip() == "/p/5: 200 (BYPASS)"
    _, fresh, body = _get(sock, "/p/5")
    assert fresh["x-cache-status"] == "HIT" and new_price in body
