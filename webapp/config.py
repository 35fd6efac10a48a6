"""The ``[web]`` section: how ``sleigh-web`` listens and serves."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from ..daemons.runtime.config import DURATION, PATH, SIZE, Section, choice, setting
from ..daemons.runtime.paths import under
from ..daemons.search.config import ENDPOINTS


@dataclass(frozen=True)
class WebConfig(Section):
    SECTION: ClassVar[str] = "web"

    host: str = setting("127.0.0.1", help="Address to listen on for HTTP (TCP).")
    port: int = setting(8080, minimum=0, maximum=65535, help="TCP port; 0 picks a free one.")
    unix_socket: Path | None = setting(
        None, kind=PATH, help="Listen on this Unix socket instead of TCP (empty: TCP)."
    )
    workers: int = setting(
        2, minimum=1, maximum=64, help="Worker processes `sleigh up` starts on the one socket."
    )
    max_body: int = setting(
        "1MiB", kind=SIZE, minimum=1024, maximum=64 * 1024**2, help="Largest request body."
    )
    shutdown_timeout: float = setting(
        "10s",
        kind=DURATION,
        minimum=0,
        maximum=600,
        help="How long SIGTERM waits for requests in flight.",
    )
    page_size: int = setting(24, minimum=1, maximum=200, help="Products per listing page.")
    static_max_age: float = setting(
        "1h", kind=DURATION, minimum=0, maximum=365 * 86400, help="Cache lifetime of static files."
    )
    tree_ttl: float = setting(
        "5m", kind=DURATION, minimum=0.1, maximum=86400, help="How stale the category tree may be."
    )
    product_ttl: float = setting(
        "6h",
        kind=DURATION,
        minimum=0.1,
        maximum=7 * 86400,
        help="How stale a product's title, description, images, brand and ages may be.",
    )
    price_ttl: float = setting(
        "5m", kind=DURATION, minimum=0.1, maximum=86400, help="How stale a price may be."
    )
    stock_ttl: float = setting(
        "10s", kind=DURATION, minimum=0.1, maximum=3600, help="How stale stock levels may be."
    )
    listing_ttl: float = setting(
        "1m",
        kind=DURATION,
        minimum=0.1,
        maximum=86400,
        help="How stale a listing page's order, best sellers and related products may be.",
    )
    page_max_age: float = setting(
        "5m",
        kind=DURATION,
        minimum=0,
        maximum=86400,
        help="Longest time a proxy may cache a catalog page (the shortest data TTL wins).",
    )
    search: str = setting(
        "",
        kind=ENDPOINTS,
        help="sleigh-searchd endpoints the search page asks, comma-separated, balanced with"
        " failover (empty: [search] endpoints, else this host's searchd socket).",
    )

    def search_endpoints(self) -> list[str]:
        """The endpoints given here (empty: use the ``[search]`` section's)."""
        return [e for e in self.search.split(",") if e]

    key_file: Path | None = setting(
        None,
        kind=PATH,
        help="Secret keys for cookies and forms, one a line, the first signs (empty:"
        " SLEIGH_HOME/secrets/web.keys, created if missing; every app host needs the same).",
    )
    session_ttl: float = setting(
        "30d",
        kind=DURATION,
        minimum=60,
        maximum=366 * 86400,
        help="How long an idle session (and the cart it names) is kept.",
    )
    cart_ttl: float = setting(
        "1h", kind=DURATION, minimum=1, maximum=86400, help="How long a cart stays in the cache."
    )
    cookie_secure: str = setting(
        "auto",
        kind=choice("auto", "always", "never"),
        help="Mark cookies Secure: always, never, or auto (when the request came over TLS,"
        " directly or per X-Forwarded-Proto).",
    )
    balance_accepts: bool = setting(
        True,
        help="Workers on one socket share its new connections evenly (a table under run/);"
        " off: whichever worker wakes first takes every connection waiting.",
    )
    access_log: bool = setting(
        True, help="Log every request (logger sleigh.web.access): client, request, status, time."
    )
    checkout_ttl: float = setting(
        "30m",
        kind=DURATION,
        minimum=60,
        maximum=86400,
        help="How long a checkout review page stays good before the details are asked again.",
    )
    reset_ttl: float = setting(
        "1h",
        kind=DURATION,
        minimum=60,
        maximum=7 * 86400,
        help="How long a password-reset link works (once).",
    )
    mail: str = setting(
        "file",
        kind=choice("file", "console"),
        help="Where mail goes: file (.eml files in mail_dir) or console (the log).",
    )
    mail_dir: Path | None = setting(
        None, kind=PATH, help="Directory for mail=file (empty: SLEIGH_HOME/mail)."
    )
    sandbox_slow: float = setting(
        "3s",
        kind=DURATION,
        minimum=0,
        maximum=120,
        help="How long the sandbox payment provider's slow test card takes to answer.",
    )

    def socket_path(self, home: Path) -> Path | None:
        """The Unix socket to listen on, resolved against *home* (``None``: TCP)."""
        return None if self.unix_socket is None else under(home, self.unix_socket, Path())

    def mail_path(self, home: Path) -> Path:
        """The mail directory, resolved against *home*."""
        return under(home, self.mail_dir, Path("mail"))

    def key_path(self, home: Path) -> Path:
        """The key file, resolved against *home*."""
        return under(home, self.key_file, Path("secrets") / "web.keys")
