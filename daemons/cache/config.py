"""The ``[cache]`` section: where ``sleigh-cached`` keeps its LMDB file and how it listens."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from ..runtime.config import DURATION, FLOAT, MODE, PATH, SIZE, Section, choice, setting
from ..runtime.paths import under

#: LMDB's largest key with the default page size (``mdb_env_get_maxkeysize``).
LMDB_MAX_KEY = 511


@dataclass(frozen=True)
class CacheConfig(Section):
    SECTION: ClassVar[str] = "cache"

    path: Path | None = setting(
        None, kind=PATH, help="LMDB environment directory (empty: SLEIGH_HOME/cache)."
    )
    socket: Path | None = setting(
        None, kind=PATH, help="Unix socket to serve RESP on (empty: SLEIGH_HOME/run/cached.sock)."
    )
    socket_mode: int = setting("0660", kind=MODE, help="File mode of the Unix socket.")
    socket_group: str = setting("", help="Group owning the Unix socket (empty: the daemon's).")
    tcp_port: int = setting(
        0, minimum=0, maximum=65535, help="Also serve RESP on 127.0.0.1:PORT (0: off)."
    )
    map_size: int = setting(
        "1GiB", kind=SIZE, minimum=1024**2, maximum=1024**4, help="LMDB map size: the cache's cap."
    )
    sync: str = setting(
        "none",
        kind=choice("full", "data", "none"),
        help="What an acknowledged write survives. none: a process crash (kill -9); after an"
        " OS crash the cache starts cold. data: an OS crash too, but the last commit may be"
        " lost (fsync of the data, meta page lazily). full: an OS crash with every"
        " acknowledged write (fsync at every commit).",
    )
    max_readers: int = setting(
        512, minimum=16, maximum=65536, help="Reader slots: processes x threads reading directly."
    )
    key_max: int = setting(
        LMDB_MAX_KEY, kind=SIZE, minimum=1, maximum=LMDB_MAX_KEY, help="Longest key, in bytes."
    )
    value_max: int = setting(
        "1MiB", kind=SIZE, minimum=1, maximum=256 * 1024**2, help="Largest value, in bytes."
    )
    request_max: int = setting(
        "2MiB",
        kind=SIZE,
        minimum=1024,
        maximum=512 * 1024**2,
        help="Largest request (one command with its arguments), in bytes.",
    )
    max_args: int = setting(
        100_000, minimum=3, maximum=10_000_000, help="Most arguments in one command (MGET, DEL)."
    )
    max_connections: int = setting(
        1024, minimum=1, maximum=100_000, help="Client connections served at once."
    )
    high_water: float = setting(
        0.90,
        kind=FLOAT,
        minimum=0.1,
        maximum=0.99,
        help="Share of the map in use that starts eviction (soonest-to-expire first).",
    )
    low_water: float = setting(
        0.75, kind=FLOAT, minimum=0.05, maximum=0.98, help="Share of the map eviction stops at."
    )
    sweep_interval: float = setting(
        "1s", kind=DURATION, minimum=0.01, maximum=3600, help="How often expired entries are swept."
    )
    sweep_batch: int = setting(
        1000, minimum=1, maximum=1_000_000, help="Most expired entries removed per transaction."
    )
    max_batch: int = setting(
        10_000, minimum=1, maximum=1_000_000, help="Most writes committed in one transaction."
    )
    publish: Path | None = setting(
        "run/cached.pub",
        kind=PATH,
        help="ZeroMQ ipc socket on which every write of a local client is published for"
        " sleigh-mcastd (relative: under SLEIGH_HOME; empty or off: publish nothing).",
    )
    publish_hwm: int = setting(
        100_000,
        minimum=100,
        maximum=10_000_000,
        help="Commit groups the publisher queues for a slow subscriber before it drops them"
        " (the subscriber sees the gap in the sequence numbers).",
    )
    shutdown_timeout: float = setting(
        "10s", kind=DURATION, minimum=0, maximum=600, help="How long SIGTERM waits for clients."
    )

    def env_path(self, home: Path) -> Path:
        """The LMDB directory, resolved against *home*."""
        return under(home, self.path, Path("cache"))

    def publish_path(self, home: Path) -> Path | None:
        """The publisher's ipc socket, resolved against *home* (``None``: off)."""
        if self.publish is None or str(self.publish) == "off":
            return None
        return under(home, self.publish, Path("run") / "cached.pub")

    def socket_path(self, home: Path) -> Path:
        """The Unix socket, resolved against *home*."""
        return under(home, self.socket, Path("run") / "cached.sock")
