"""Counters and the ``INFO`` reply, in Redis's format (``# Section`` then ``key:value``)."""

from __future__ import annotations

import os
import platform
import time
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .server import Context

#: Upper bounds (µs) of the latency histogram's buckets; the last is open.
BUCKETS_US = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 100_000)
_BOUNDS_S = tuple(b / 1e6 for b in BUCKETS_US)


@dataclass
class Stats:
    hits: int = 0
    misses: int = 0
    sets: int = 0
    deletes: int = 0
    commands: int = 0
    connections_received: int = 0
    rejected_connections: int = 0
    protocol_errors: int = 0
    latency: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS_US) + 1))

    def observe(self, seconds: float) -> None:
        """Count one batch of commands that took *seconds* to answer (or submit)."""
        self.latency[bisect_left(_BOUNDS_S, seconds)] += 1

    def histogram(self) -> str:
        parts = [f"le_{b}={n}" for b, n in zip(BUCKETS_US, self.latency, strict=False)]
        parts.append(f"inf={self.latency[-1]}")
        return ",".join(parts)


def _human(n: float) -> str:
    for unit in ("B", "K", "M", "G", "T"):
        if n < 1024 or unit == "T":
            return f"{n:.2f}{unit}" if unit != "B" else f"{int(n)}B"
        n /= 1024
    return str(n)


def _server(ctx: Context) -> list[tuple[str, object]]:
    return [
        ("redis_version", "7.0.0"),
        ("sleigh_version", ctx.version),
        ("redis_mode", "standalone"),
        ("os", f"{platform.system()} {platform.release()} {platform.machine()}"),
        ("process_id", os.getpid()),
        ("listening", ctx.address),
        ("uptime_in_seconds", int(time.time() - ctx.started)),
        ("lmdb_path", ctx.store.env.path()),
        ("lmdb_sync", ctx.config.sync),
    ]


def _clients(ctx: Context) -> list[tuple[str, object]]:
    return [
        ("connected_clients", len(ctx.connections)),
        ("maxclients", ctx.config.max_connections),
    ]


def _memory(ctx: Context) -> list[tuple[str, object]]:
    usage = ctx.store.usage()
    info = ctx.store.env.info()
    return [
        ("used_memory", usage.used_bytes),
        ("used_memory_human", _human(usage.used_bytes)),
        ("maxmemory", usage.map_size),
        ("maxmemory_human", _human(usage.map_size)),
        ("maxmemory_policy", "volatile-ttl"),
        ("lmdb_map_used_ratio", f"{usage.fraction:.4f}"),
        ("lmdb_page_size", usage.page_size),
        ("lmdb_last_pgno", info["last_pgno"]),
        ("lmdb_readers", f"{info['num_readers']}/{info['max_readers']}"),
        ("lmdb_high_water", ctx.config.high_water),
        ("lmdb_low_water", ctx.config.low_water),
    ]


def _stats(ctx: Context) -> list[tuple[str, object]]:
    s, w = ctx.stats, ctx.writer
    direct_hits, direct_misses, readers = ctx.direct.collect(Path(ctx.store.env.path()))
    return [
        ("total_connections_received", s.connections_received),
        ("rejected_connections", s.rejected_connections),
        ("total_commands_processed", s.commands),
        ("keyspace_hits", s.hits),
        ("keyspace_misses", s.misses),
        ("expired_keys", ctx.store.expirations),
        ("evicted_keys", ctx.store.evictions),
        ("sleigh_direct_hits", direct_hits),
        ("sleigh_direct_misses", direct_misses),
        ("sleigh_direct_reader_processes", readers),
        ("sleigh_sets", s.sets),
        ("sleigh_deletes", s.deletes),
        ("sleigh_commits", w.commits),
        ("sleigh_writes_committed", w.writes),
        ("sleigh_largest_group", w.largest_group),
        ("sleigh_commit_seconds", f"{w.commit_seconds:.6f}"),
        ("sleigh_writes_pending", w.pending),
        ("sleigh_protocol_errors", s.protocol_errors),
        ("sleigh_latency_usec", s.histogram()),
        *_feed(ctx),
    ]


def _feed(ctx: Context) -> list[tuple[str, object]]:
    publisher = ctx.publisher
    if publisher is None:
        return [("sleigh_publish", "off")]
    return [
        ("sleigh_publish", publisher.address),
        ("sleigh_publish_subscribed", int(publisher.subscribed)),
        ("sleigh_publish_messages", publisher.seq),
        ("sleigh_published_writes", publisher.published),
    ]


def _keyspace(ctx: Context) -> list[tuple[str, object]]:
    count = ctx.store.count()
    return [("db0", f"keys={count},expires={count},avg_ttl=0")] if count else []


SECTIONS: dict[str, Callable[[Context], list[tuple[str, object]]]] = {
    "server": _server,
    "clients": _clients,
    "memory": _memory,
    "stats": _stats,
    "keyspace": _keyspace,
}


def info_text(ctx: Context, wanted: list[str]) -> str:
    """The ``INFO`` reply for the sections *wanted* (all for none, ``all`` or ``everything``)."""
    names = [n for n in SECTIONS if not wanted or {"all", "everything", "default", n} & set(wanted)]
    lines: list[str] = []
    for name in names:
        lines.append(f"# {name.capitalize()}")
        lines.extend(f"{key}:{value}" for key, value in SECTIONS[name](ctx))
        lines.append("")
    return "\r\n".join(lines)
