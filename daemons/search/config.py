"""The ``[search]`` section: where ``sleigh-searchd`` finds its index and how it serves."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from ..runtime.config import DURATION, MODE, PATH, Kind, Section, setting
from ..runtime.paths import under

#: How a composed sort rule is written: ``name=key,key,...`` rules separated by ``;``.
#: Each key is ``in_stock`` (in-stock first), ``relevance``, ``price_asc``,
#: ``price_desc``, ``popularity`` or ``newest``.
SORT_KEYS = ("in_stock", "relevance", "price_asc", "price_desc", "popularity", "newest")
#: The index's own ceilings (``core_ext.search.plan``), repeated here so loading the
#: settings does not import the index; a test keeps them equal.
INDEX_MAX_TERMS = 32
INDEX_MAX_TEXT = 1000
INDEX_MAX_LIMIT = 1000
_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
_HOST_PORT = re.compile(r"(?P<host>[^\s:]+|\[[0-9a-fA-F:]+\]):(?P<port>\d{1,5})")


def parse_sort_rules(raw: object) -> dict[str, tuple[str, ...]]:
    """``"name=key,key;name=key"`` as ``{name: (key, ...)}``.

    :raises ValueError: naming the rule or key at fault.
    """
    if not isinstance(raw, str):
        raise ValueError(f"expected a string, got {raw!r}")
    rules: dict[str, tuple[str, ...]] = {}
    for part in filter(None, (p.strip() for p in raw.split(";"))):
        name, eq, keys = (x.strip() for x in part.partition("="))
        if not eq or not _NAME.fullmatch(name):
            raise ValueError(f"{part!r}: write a rule as name=key,key (name: a-z, 0-9, _)")
        if name in SORT_KEYS or name in rules:
            raise ValueError(f"{part!r}: the name {name!r} is taken")
        chosen = tuple(k.strip() for k in keys.split(","))
        unknown = [k for k in chosen if k not in SORT_KEYS]
        if unknown or not chosen:
            raise ValueError(f"{part!r}: unknown sort key(s) {unknown}; known: {SORT_KEYS}")
        rules[name] = chosen
    return rules


def _parse_rules_text(raw: object) -> str:
    rules = parse_sort_rules(raw)
    return ";".join(f"{name}={','.join(keys)}" for name, keys in rules.items())


def _parse_host_port(raw: object) -> str:
    if not isinstance(raw, str):
        raise ValueError(f"expected a string, got {raw!r}")
    text = raw.strip()
    match = _HOST_PORT.fullmatch(text)
    if text and (match is None or not 1 <= int(match["port"]) <= 65535):
        raise ValueError(f"expected HOST:PORT with a port from 1 to 65535, got {raw!r}")
    return text


def _parse_endpoints(raw: object) -> str:
    if not isinstance(raw, str):
        raise ValueError(f"expected a string, got {raw!r}")
    given = [e.strip() for e in raw.split(",") if e.strip()]
    for endpoint in given:
        scheme, _, rest = endpoint.partition("://")
        if scheme not in ("ipc", "tcp") or not rest:
            raise ValueError(f"{endpoint!r}: endpoints are ipc:///path or tcp://host:port")
    return ",".join(given)


SORT_RULES = Kind("sort rules", _parse_rules_text)
HOST_PORT = Kind("host:port", _parse_host_port)
ENDPOINTS = Kind("endpoints", _parse_endpoints)


def default_workers() -> int:
    """One worker thread per core this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class SearchConfig(Section):
    SECTION: ClassVar[str] = "search"

    index_dir: Path | None = setting(
        None, kind=PATH, help="Directory of the index files (empty: SLEIGH_HOME/search)."
    )
    socket: Path | None = setting(
        None,
        kind=PATH,
        help="Unix socket the daemon serves ZeroMQ on (empty: SLEIGH_HOME/run/searchd.sock).",
    )
    socket_mode: int = setting("0660", kind=MODE, help="File mode of the Unix socket.")
    tcp: str = setting(
        "",
        kind=HOST_PORT,
        help="Also serve on this TCP address, HOST:PORT (empty: off), for replicas on other hosts.",
    )
    endpoints: str = setting(
        "",
        kind=ENDPOINTS,
        help="Endpoints clients (the web tier, sleigh) use, comma-separated ZeroMQ addresses"
        " (ipc:///run/sleigh/searchd.sock, tcp://10.0.0.5:7300); empty: this host's socket.",
    )
    workers: int = setting(
        0, minimum=0, maximum=256, help="Query threads (0: one per core this process may use)."
    )
    max_terms: int = setting(
        32,
        minimum=1,
        maximum=INDEX_MAX_TERMS,
        help="Most words (with OR, -words, quotes) in one query.",
    )
    max_query_len: int = setting(
        256, minimum=1, maximum=INDEX_MAX_TEXT, help="Longest query text, in characters."
    )
    max_limit: int = setting(
        200, minimum=1, maximum=INDEX_MAX_LIMIT, help="Largest page (limit) a request may ask for."
    )
    max_offset: int = setting(
        10_000, minimum=0, maximum=10_000_000, help="Deepest offset a request may ask for."
    )
    max_request: int = setting(
        65536, minimum=256, maximum=16 * 1024**2, help="Largest request body, in bytes."
    )
    sort_rules: str = setting(
        "instock_first=in_stock,relevance;instock_price_asc=in_stock,price_asc",
        kind=SORT_RULES,
        help="Sort rules composed from the plain sorts, 'name=key,key;name=...'; keys:"
        " in_stock (in-stock items first), relevance, price_asc, price_desc, popularity, newest.",
    )
    reload_interval: float = setting(
        "2s",
        kind=DURATION,
        minimum=0,
        maximum=3600,
        help="How often the index directory is checked for a newer index file (0: only on SIGHUP).",
    )
    update_retention: float = setting(
        "1h",
        kind=DURATION,
        minimum=0,
        maximum=7 * 86400,
        help="How long price/stock updates are kept to replay onto a newly built index.",
    )
    keep_indexes: int = setting(
        2, minimum=1, maximum=100, help="Index files `sleigh search reindex` keeps (newest first)."
    )
    shutdown_timeout: float = setting(
        "10s", kind=DURATION, minimum=0, maximum=600, help="How long SIGTERM waits for queries."
    )
    client_timeout: float = setting(
        "1s", kind=DURATION, minimum=0.01, maximum=600, help="How long a client waits for a reply."
    )

    def index_path(self, home: Path) -> Path:
        """The index directory, resolved against *home*."""
        return under(home, self.index_dir, Path("search"))

    def socket_path(self, home: Path) -> Path:
        """The Unix socket, resolved against *home*."""
        return under(home, self.socket, Path("run") / "searchd.sock")

    def sort_rule_map(self) -> dict[str, tuple[str, ...]]:
        """The composed sort rules, by name."""
        return parse_sort_rules(self.sort_rules)

    def tcp_endpoint(self) -> str | None:
        """The TCP endpoint to bind as well, or ``None``."""
        return f"tcp://{self.tcp}" if self.tcp else None

    def worker_count(self) -> int:
        """The number of query threads to start."""
        return self.workers or default_workers()

    def client_endpoints(self, home: Path) -> list[str]:
        """The ZeroMQ endpoints a client of this shop connects to."""
        given = [e.strip() for e in self.endpoints.split(",") if e.strip()]
        return given or [f"ipc://{self.socket_path(home)}"]
