"""One small function per operation, and the table that dispatches them."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import protocol as p
from .gcra import Decision, Table, kind_of
from .logfile import LogWriter
from .rules import Rule


@dataclass
class Stats:
    """The daemon's counters (``STATS``, ``sleigh status``)."""

    started: float = field(default_factory=time.time)
    requests: int = 0
    allowed: int = 0
    denied: int = 0
    charges: int = 0
    resets: int = 0
    errors: int = 0
    connections: int = 0
    connections_total: int = 0


@dataclass
class Context:
    """What every connection shares: the table, the log, the rules, the counters."""

    table: Table
    writer: LogWriter
    rules: dict[str, Rule]
    address: str
    max_connections: int = 1024
    stats: Stats = field(default_factory=Stats)
    closing: bool = False
    transports: set[asyncio.Transport] = field(default_factory=set)
    #: A compaction is writing its snapshot in a worker thread.
    compacting: bool = False


def _decision(d: Decision) -> bytes:
    limiting = p.NO_KEY if d.limiting < 0 else d.limiting
    remaining, retry = min(d.remaining, p.U32_MAX), min(d.retry_after, p.U64_MAX)
    return p.DECISION.pack(d.allowed, limiting, remaining, retry)


def check(ctx: Context, req: p.Request, now: int) -> bytes:
    decision = ctx.table.check(req.keys, req.costs, now)
    if decision.allowed:
        ctx.stats.allowed += 1
    else:
        ctx.stats.denied += 1
    return _decision(decision)


def peek(ctx: Context, req: p.Request, now: int) -> bytes:
    return _decision(ctx.table.check(req.keys, req.costs, now, charge=False))


def charge(ctx: Context, req: p.Request, now: int) -> bytes:
    for key in req.keys:
        ctx.table.rule_for(key)  # refuse an unknown kind before charging anything
    worst = Decision(True, 0, 1 << 31, -1)
    for index, (key, cost) in enumerate(zip(req.keys, req.costs, strict=True)):
        got = ctx.table.charge(key, cost, now)
        if got.retry_after > worst.retry_after:
            worst = Decision(False, got.retry_after, 0, index)
        elif worst.allowed:
            worst = worst._replace(remaining=min(worst.remaining, got.remaining))
    ctx.stats.charges += 1
    return _decision(worst)


def show(ctx: Context, req: p.Request, now: int) -> bytes:
    key = req.keys[0]
    rule = ctx.table.rule_for(key)
    state = ctx.table.states.get(key, [0, 0, 0, 0])
    info: dict[str, Any] = {
        "key": key.decode(),
        "rule": rule.name,
        "known": key in ctx.table.states,
        "remaining": ctx.table.remaining(key, now),
        "burst": rule.burst,
        "interval_ns": rule.interval,
        "tat_ahead_ns": max(0, state[0] - now),
        "strike_ahead_ns": max(0, state[1] - now),
        "blocked_for_ns": max(0, state[2] - now),
        "retry_after_ns": ctx.table.check([key], [1], now, charge=False).retry_after,
    }
    return json.dumps(info).encode()


def reset(ctx: Context, req: p.Request, now: int) -> bytes:
    ctx.table.rule_for(req.keys[0])
    ctx.stats.resets += 1
    return bytes([ctx.table.reset(req.keys[0], now)])


def stats(ctx: Context, req: p.Request, now: int) -> bytes:
    s = ctx.stats
    kinds: dict[str, int] = {}
    for key in ctx.table.states:
        name = kind_of(key).decode()
        kinds[name] = kinds.get(name, 0) + 1
    info = {
        "address": ctx.address,
        "uptime_s": round(time.time() - s.started, 3),
        "requests": s.requests,
        "allowed": s.allowed,
        "denied": s.denied,
        "charges": s.charges,
        "resets": s.resets,
        "errors": s.errors,
        "connections": s.connections,
        "connections_total": s.connections_total,
        "keys": len(ctx.table.states),
        "keys_by_kind": kinds,
        "rules": sorted(ctx.rules),
        "log_path": str(ctx.writer.path),
        "log_bytes": ctx.writer.size,
        "log_records": ctx.writer.records,
    }
    return json.dumps(info).encode()


def ping(ctx: Context, req: p.Request, now: int) -> bytes:
    return b""


HANDLERS: dict[int, Callable[[Context, p.Request, int], bytes]] = {
    p.PING: ping,
    p.CHECK: check,
    p.PEEK: peek,
    p.CHARGE: charge,
    p.SHOW: show,
    p.RESET: reset,
    p.STATS: stats,
}
