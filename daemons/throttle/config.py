"""The ``[throttle]`` section: ``sleigh-throttled``'s rules, log and sockets, and its clients.

Only scalars live here: the rules are a TOML file (``throttle.rules``, see
:mod:`.rules`; empty means the built-in defaults) and the web tier's route
classes a compact ``class=/prefix`` string.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from ..runtime.config import DURATION, MODE, PATH, SIZE, Section, setting
from ..runtime.paths import under


@dataclass(frozen=True)
class ThrottleConfig(Section):
    SECTION: ClassVar[str] = "throttle"

    socket: Path | None = setting(
        None, kind=PATH, help="Unix socket to serve on (empty: SLEIGH_HOME/run/throttled.sock)."
    )
    socket_mode: int = setting("0660", kind=MODE, help="File mode of the Unix socket.")
    tcp_host: str = setting("127.0.0.1", help="Address of the TCP listener (with tcp_port).")
    tcp_port: int = setting(
        0,
        minimum=0,
        maximum=65535,
        help="Also serve on tcp_host:PORT for other app hosts (0: off).",
    )
    rules: Path | None = setting(
        None, kind=PATH, help="Rules file (TOML, [rules.NAME] tables; empty: built-in defaults)."
    )
    log: Path | None = setting(
        None,
        kind=PATH,
        help="Binary state log on a local disk, never NFS (empty: SLEIGH_HOME/throttle/state.log).",
    )
    sync_interval: float = setting(
        "1s",
        kind=DURATION,
        minimum=0.001,
        maximum=3600,
        help="How often the log is fdatasync'ed (a kill -9 loses nothing; an OS crash this much).",
    )
    compact_size: int = setting(
        "256MiB",
        kind=SIZE,
        minimum=1024**2,
        maximum=64 * 1024**3,
        help="Log size that triggers a compaction (the old log is kept as state.log.1).",
    )
    max_connections: int = setting(
        1024, minimum=1, maximum=100_000, help="Client connections served at once."
    )
    shutdown_timeout: float = setting(
        "5s", kind=DURATION, minimum=0, maximum=600, help="How long SIGTERM waits for clients."
    )
    servers: str = setting(
        "",
        help="Clients: daemons to ask, comma-separated (unix:PATH or HOST:PORT); keys are spread"
        " by a consistent hash (empty: this home's Unix socket).",
    )
    timeout: float = setting(
        "5ms",
        kind=DURATION,
        minimum=0.0001,
        maximum=10,
        help="Clients: how long to wait for a reply.",
    )
    closed_timeout: float = setting(
        "250ms",
        kind=DURATION,
        minimum=0.0001,
        maximum=10,
        help="Web tier: how long a route that fails closed (fail_closed) waits for a reply"
        " before it refuses; it asks even while browsing uses the in-process fallback.",
    )
    retry_after_failure: float = setting(
        "1s",
        kind=DURATION,
        minimum=0,
        maximum=600,
        help="Web tier: after a failed round trip, use the in-process fallback this long.",
    )
    app_hosts: int = setting(
        1, minimum=1, maximum=10_000, help="Web tier: app hosts; the fallback divides limits by it."
    )
    routes: str = setting(
        "search=/search,cart=/cart,checkout=/checkout,login=/account/signin,reset=/account/reset",
        help="Web tier: route classes by path prefix, comma-separated CLASS=/prefix.",
    )
    fail_closed: str = setting(
        "login,reset",
        help="Web tier: route classes refused (503) while no daemon answers, comma-separated.",
    )
    exempt: str = setting(
        "/healthz,/metrics,/static/",
        help="Web tier: path prefixes never throttled, comma-separated.",
    )
    cpu_flush: float = setting(
        "100ms",
        kind=DURATION,
        minimum=0.001,
        maximum=60,
        help="Web tier: how often each worker sends the CPU time it charged, in one message.",
    )
    client_ip_header: str = setting(
        "",
        help="Web tier: header holding the client's address, set by a trusted proxy"
        " (X-Real-IP behind nginx; empty: the peer address), for the per-address limits"
        " and the access log.",
    )
    session_cookie: str = setting(
        "sid", help="Web tier: the session cookie's name (the shop's own is sid)."
    )
    enabled: bool = setting(True, help="Web tier: ask the throttle about every request.")

    def socket_path(self, home: Path) -> Path:
        """The Unix socket, resolved against *home*."""
        return under(home, self.socket, Path("run") / "throttled.sock")

    def log_path(self, home: Path) -> Path:
        """The state log, resolved against *home*."""
        return under(home, self.log, Path("throttle") / "state.log")

    def rules_path(self, home: Path) -> Path | None:
        """The rules file resolved against *home*, or ``None`` for the built-in rules."""
        return None if self.rules is None else under(home, self.rules, self.rules)
