"""The ``[database]`` section: which database and how connections are pooled."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ...daemons.runtime.config import DURATION, Section, setting


@dataclass(frozen=True)
class DatabaseConfig(Section):
    SECTION: ClassVar[str] = "database"

    url: str = setting(
        "",
        help="SQLAlchemy URL, e.g. postgresql+asyncpg://user@host/db;"
        " empty: an SQLite file sleigh.db under SLEIGH_HOME.",
    )
    pool_size: int = setting(5, minimum=1, maximum=200, help="Persistent connections kept open.")
    max_overflow: int = setting(
        10, minimum=0, maximum=1000, help="Extra connections allowed at peak, closed after use."
    )
    pool_timeout: float = setting(
        "10s",
        kind=DURATION,
        minimum=0.1,
        maximum=600,
        help="How long to wait for a free connection.",
    )
    ping_after: float = setting(
        "1s",
        kind=DURATION,
        minimum=0,
        maximum=3600,
        help="PostgreSQL: a pooled connection idle for longer than this is pinged before"
        " use, and replaced if it died (a server restart); 0: pinged before every use. A"
        " ping is three round trips; one used again sooner meets a dead server in its query.",
    )
    statement_cache_size: int = setting(
        512,
        minimum=0,
        maximum=100_000,
        help="Prepared statements cached per connection (PostgreSQL).",
    )
    read_connections: int = setting(
        4,
        minimum=1,
        maximum=100,
        help="PostgreSQL: connections each worker may open, beside the pool, for the"
        " catalog's hot reads (a product's parts, stock, related products).",
    )
    query_timeout: float = setting(
        "10s",
        kind=DURATION,
        minimum=0.01,
        maximum=3600,
        help="PostgreSQL, the web tier: the server cancels a statement that runs longer, and"
        " a worker gives up on a server that has not answered a second after that (a"
        " stuck query or a cut network fails one page, not every worker). Tools (index"
        " builds, demo loads, migrations) run without it.",
    )
    echo: bool = setting(False, help="Log every SQL statement (debugging only).")
