"""The ``[replicator]`` section: how ``sleigh-mcastd`` joins its cluster.

The options fall in five groups: the socket (group, port, interface, ttl,
buffers), the cluster (id, secret), the wire (MTU, largest object), repair
(retransmit buffer, NAK delays, give-up) and pacing, and membership
(heartbeats, silent/gone timeouts, timestamp window). The protocol core
(:mod:`.engine`) reads the repair, pacing and membership options; the
service reads the socket options.

Relations between options are checked when the section is built
(:meth:`ReplicatorConfig.__post_init__`), naming the keys, so a bad
combination fails ``sleigh config check`` rather than the running daemon.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from ..runtime.config import DURATION, PATH, SIZE, ConfigError, Section, choice, setting
from ..runtime.paths import under


@dataclass(frozen=True)
class ReplicatorConfig(Section):
    SECTION: ClassVar[str] = "replicator"

    socket: Path | None = setting(
        None, kind=PATH, help="Unix socket for stats (empty: SLEIGH_HOME/run/mcastd.sock)."
    )
    # -- the multicast socket ------------------------------------------------------------
    group: str = setting("239.255.42.99", help="IPv4 multicast group (239/8: site-local scope).")
    port: int = setting(4299, minimum=1, maximum=65535, help="UDP port of the group.")
    interface: str = setting(
        "127.0.0.1",
        help="Address of the interface to send and join on (IP_MULTICAST_IF); the default,"
        " loopback, keeps the traffic on this machine.",
    )
    ttl: int = setting(
        1, minimum=0, maximum=255, help="Multicast TTL: 1 stays on the local network segment."
    )
    rcvbuf: int = setting(
        "8MiB",
        kind=SIZE,
        minimum=64 * 1024,
        maximum=1024**3,
        help="SO_RCVBUF asked for (the kernel caps it at net.core.rmem_max unless run as root,"
        " which uses SO_RCVBUFFORCE).",
    )
    sndbuf: int = setting(
        "4MiB", kind=SIZE, minimum=64 * 1024, maximum=1024**3, help="SO_SNDBUF asked for."
    )
    # -- the cluster ---------------------------------------------------------------------
    cluster_id: int = setting(
        1,
        minimum=0,
        maximum=2**32 - 1,
        help="Cluster number carried by every datagram; datagrams of another cluster are"
        " dropped and counted, so two shops may share a group by mistake and stay apart.",
    )
    secret_file: Path | None = setting(
        None,
        kind=PATH,
        help="File holding the cluster secret (at least 16 bytes; readable by the service"
        " only). Empty: SLEIGH_HOME/replicator.secret.",
    )
    # -- the wire ------------------------------------------------------------------------
    mtu_payload: int = setting(
        1200,
        minimum=600,
        maximum=65507,
        help="Largest UDP payload sent or accepted, in bytes; objects are split to fit so the"
        " kernel never fragments (every member of a cluster should use the same value).",
    )
    max_object: int = setting(
        "1MiB",
        kind=SIZE,
        minimum=1,
        maximum=64 * 1024**2,
        help="Largest value replicated; a larger one is sent as an invalidation of its key.",
    )
    # -- repair --------------------------------------------------------------------------
    retransmit_buffer: int = setting(
        "16MiB",
        kind=SIZE,
        minimum=64 * 1024,
        maximum=4 * 1024**3,
        help="Bytes of sent datagrams kept for repair; a receiver further behind than this"
        " reports an unrecoverable gap.",
    )
    receive_window: int = setting(
        32768,
        minimum=64,
        maximum=1_000_000,
        help="Datagrams held per sender beyond a gap while waiting for its repair.",
    )
    nak_delay_min: float = setting(
        "0.2ms", kind=DURATION, minimum=0, maximum=1, help="Least random delay before a NAK."
    )
    nak_delay_max: float = setting(
        "1ms",
        kind=DURATION,
        minimum=0,
        maximum=1,
        help="Most random delay before a NAK; the spread lets one receiver's NAK (multicast)"
        " suppress the others'.",
    )
    nak_retry: float = setting(
        "2ms",
        kind=DURATION,
        minimum=0.0001,
        maximum=10,
        help="How long a NAKed range (ours or another receiver's) waits for its repair before"
        " it is asked for again; a receiver whose repairs take longer waits 1.5x their"
        " average instead (the range at the head of the stream: 1.5x the quickest of the"
        " last eight).",
    )
    repair_holdoff: float = setting(
        "1ms",
        kind=DURATION,
        minimum=0,
        maximum=10,
        help="A sender repairs one datagram at most once in this time, however many NAKs ask.",
    )
    give_up: float = setting(
        "2s",
        kind=DURATION,
        minimum=0.01,
        maximum=3600,
        help="How long a gap may stay open before it is declared unrecoverable.",
    )
    gap_policy: str = setting(
        "flush",
        kind=choice("flush", "keys"),
        help="What an unrecoverable gap invalidates when it may hold writes to keys nobody"
        " heard of. flush: the whole local cache (nothing served that may be wrong). keys:"
        " only the keys named by fragments heard (the rest stays until its TTL).",
    )
    # -- pacing --------------------------------------------------------------------------
    rate: int = setting(
        "200MiB",
        kind=SIZE,
        minimum=64 * 1024,
        maximum=100 * 1024**3,
        help="Bytes per second sent at most (new data and repairs; a token bucket).",
    )
    burst: int = setting(
        "1MiB",
        kind=SIZE,
        minimum=1500,
        maximum=1024**3,
        help="Bytes sent back to back before pacing applies; keep it under the receivers' rcvbuf.",
    )
    # -- membership ----------------------------------------------------------------------
    heartbeat_interval: float = setting(
        "100ms",
        kind=DURATION,
        minimum=0.001,
        maximum=60,
        help="Heartbeat period of an idle sender (heartbeats carry its highest sequence).",
    )
    heartbeat_min: float = setting(
        "1ms",
        kind=DURATION,
        minimum=0.0001,
        maximum=60,
        help="First heartbeat after a burst of data; the gap doubles up to heartbeat_interval,"
        " so the loss of a burst's last datagram is found quickly. In a steady stream the"
        " first waits twice the stream's gap (at most 10 times this).",
    )
    peer_silent: float = setting(
        "1s",
        kind=DURATION,
        minimum=0.01,
        maximum=3600,
        help="A peer heard of for this long is shown as silent.",
    )
    peer_gone: float = setting(
        "30s",
        kind=DURATION,
        minimum=0.02,
        maximum=86400,
        help="A peer silent for this long is gone and its stream forgotten (must exceed"
        " timestamp_window, so its old datagrams can never be replayed).",
    )
    timestamp_window: float = setting(
        "10s",
        kind=DURATION,
        minimum=0.01,
        maximum=3600,
        help="Datagrams whose timestamp is further than this from the local clock are"
        " dropped as stale (hosts' clocks must agree within it: run NTP).",
    )
    drain_timeout: float = setting(
        "1s",
        kind=DURATION,
        minimum=0,
        maximum=600,
        help="On SIGTERM: how long queued data is sent and NAKs answered before leaving.",
    )
    receive_path: str = setting(
        "reader",
        kind=choice("thread", "reader"),
        help="How datagrams are received. reader: the event loop drains the socket"
        " whenever it is readable (one wake-up per batch; lower latency and CPU per object"
        " between hosts, measured by scripts/bench_replicator.py). thread: blocking recv in"
        " a thread of its own, batches handed to the event loop (two wake-ups per batch).",
    )

    def __post_init__(self) -> None:
        _check_relations(self)

    def socket_path(self, home: Path) -> Path:
        """The stats socket, resolved against *home*."""
        return under(home, self.socket, Path("run") / "mcastd.sock")

    def secret_path(self, home: Path) -> Path:
        """The cluster secret file, resolved against *home*."""
        return under(home, self.secret_file, Path("replicator.secret"))


def _check_relations(cfg: ReplicatorConfig) -> None:
    """:raises ConfigError: naming the keys whose values contradict each other."""
    rules = (
        (cfg.nak_delay_min <= cfg.nak_delay_max, "nak_delay_min must not exceed nak_delay_max"),
        (
            cfg.heartbeat_min <= cfg.heartbeat_interval,
            "heartbeat_min must not exceed heartbeat_interval",
        ),
        (cfg.peer_silent < cfg.peer_gone, "peer_silent must be less than peer_gone"),
        (cfg.timestamp_window < cfg.peer_gone, "timestamp_window must be less than peer_gone"),
        (
            cfg.heartbeat_interval < cfg.peer_silent,
            "heartbeat_interval must be less than peer_silent",
        ),
        (cfg.nak_retry < cfg.give_up, "nak_retry must be less than give_up"),
        (cfg.burst >= cfg.mtu_payload, "burst must be at least mtu_payload"),
        (
            cfg.retransmit_buffer >= 4 * cfg.mtu_payload,
            "retransmit_buffer must hold at least four datagrams of mtu_payload",
        ),
    )
    for ok, message in rules:
        if not ok:
            raise ConfigError(f"replicator: {message}")
    try:
        group = ipaddress.IPv4Address(cfg.group)
        ipaddress.IPv4Address(cfg.interface)
    except ValueError as exc:
        raise ConfigError(f"replicator.group/interface: {exc}") from None
    if not group.is_multicast:
        raise ConfigError(f"replicator.group: {cfg.group} is not a multicast address")
