"""``sleigh throttle top|show|reset|stats``: the operator's view of ``sleigh-throttled``.

``top`` reads the state log (and the one before the last compaction,
``state.log.1``) directly: it is history, not state. ``show`` and
``reset`` ask the daemon, so what they show is what it enforces.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..runtime.config import DURATION
from ..throttle.client import ThrottleClient, addresses_from, make_key
from ..throttle.errors import ThrottleError
from ..throttle.gcra import ALLOW, CHARGE, DENY, PENALTY, kind_of
from ..throttle.logfile import iter_events
from .component import Component
from .settings import Settings
from .supervisor import Child


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``sleigh throttle ...`` to the top-level subparsers *sub*."""
    throttle = sub.add_parser("throttle", parents=[common], help="look into the request limits")
    actions = throttle.add_subparsers(dest="throttle_command", required=True, metavar="ACTION")
    top = actions.add_parser("top", parents=[common], help="top talkers and denials, from the log")
    top.add_argument("--since", default="10m", help="how far back (default 10m)")
    top.add_argument("--limit", type=int, default=10, help="rows per table (default 10)")
    top.add_argument("--json", action="store_true", help="print the figures as JSON")
    top.set_defaults(run=cmd_top)
    show = actions.add_parser("show", parents=[common], help="one key's state (KIND:VALUE)")
    show.add_argument("key")
    show.set_defaults(run=cmd_show)
    reset = actions.add_parser("reset", parents=[common], help="forget one key's state")
    reset.add_argument("key")
    reset.set_defaults(run=cmd_reset)
    stats = actions.add_parser("stats", parents=[common], help="the daemon's counters")
    stats.set_defaults(run=cmd_stats)


def parse_key(text: str) -> bytes:
    """``ip:192.0.2.7`` as the web tier makes it (a long value becomes its hash)."""
    kind, sep, value = text.partition(":")
    if not sep or not kind or not value:
        raise ThrottleError(f"a key is KIND:VALUE (ip:192.0.2.7), got {text!r}")
    return make_key(kind, value)


def _client(settings: Settings) -> ThrottleClient:
    return ThrottleClient(addresses_from(settings.throttle, settings.home), timeout=5.0)


def _fail(exc: Exception) -> int:
    print(f"sleigh throttle: {exc}", file=sys.stderr)
    return 1


def talkers(paths: list[Path], since: int) -> dict[str, Any]:
    """Admissions, denials and penalties per key and per kind, from the logs at *paths*."""
    allowed: Counter[bytes] = Counter()
    denied: Counter[bytes] = Counter()
    penalties: Counter[bytes] = Counter()
    for path in paths:
        if not path.exists():
            continue
        for event, key, _, _ in iter_events(path, since):
            if event in (ALLOW, CHARGE):
                allowed[key] += 1
            elif event == DENY:
                denied[key] += 1
            elif event == PENALTY:
                denied[key] += 1
                penalties[key] += 1
    kinds: dict[str, dict[str, int]] = {}
    for counter, name in ((allowed, "allowed"), (denied, "denied"), (penalties, "penalties")):
        for key, count in counter.items():
            row = kinds.setdefault(
                kind_of(key).decode(), {"allowed": 0, "denied": 0, "penalties": 0}
            )
            row[name] += count
    return {"allowed": allowed, "denied": denied, "penalties": penalties, "kinds": kinds}


def cmd_top(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    try:
        window = DURATION.parse(args.since)
    except ValueError as exc:
        return _fail(ValueError(f"--since: {exc}"))
    path = settings.throttle.log_path(settings.home)
    try:
        found = talkers(
            [path.with_name(path.name + ".1"), path], time.time_ns() - int(window * 1e9)
        )
    except (OSError, ThrottleError) as exc:
        return _fail(exc)
    limit = max(1, args.limit)
    if args.json:
        out = {
            "since_s": window,
            "kinds": found["kinds"],
            **{
                name: [[k.decode(), n] for k, n in found[name].most_common(limit)]
                for name in ("allowed", "denied", "penalties")
            },
        }
        print(json.dumps(out, indent=2))
        return 0
    print(f"# the last {DURATION.show(window)}, from {path}")
    print(f"{'kind':12} {'allowed':>10} {'denied':>10} {'penalties':>10}")
    for kind, row in sorted(found["kinds"].items()):
        print(f"{kind:12} {row['allowed']:>10} {row['denied']:>10} {row['penalties']:>10}")
    for name in ("allowed", "denied"):
        print(f"\n# top {name}")
        for key, count in found[name].most_common(limit):
            print(f"{count:>10}  {key.decode()}")
    return 0


def cmd_show(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    try:
        with _client(settings) as client:
            info = client.show(parse_key(args.key))
    except ThrottleError as exc:
        return _fail(exc)
    for name, value in info.items():
        if name.endswith("_ns"):
            name, value = name[:-3] + "_s", f"{value / 1e9:.3f}"
        print(f"{name:16} {value}")
    return 0


def cmd_reset(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    try:
        with _client(settings) as client:
            had = client.reset(parse_key(args.key))
    except ThrottleError as exc:
        return _fail(exc)
    print(f"{args.key}: {'reset' if had else 'had no state'}")
    return 0


def cmd_stats(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    try:
        with _client(settings) as client:
            print(json.dumps([client.stats(n) for n in range(len(client.conns))], indent=2))
    except ThrottleError as exc:
        return _fail(exc)
    return 0


def _stats(settings: Settings) -> list[dict[str, Any]]:
    with ThrottleClient(addresses_from(settings.throttle, settings.home), timeout=2.0) as client:
        return [client.stats(n) for n in range(len(client.conns))]


async def status(settings: Settings) -> Component:
    """The throttle's line in ``sleigh status``: up if every daemon answers."""
    try:
        addresses = addresses_from(settings.throttle, settings.home)
    except ThrottleError as exc:
        return Component("throttle", "down", settings.throttle.servers, {"error": str(exc)})
    address = ", ".join(f"unix:{a}" if isinstance(a, Path) else f"{a[0]}:{a[1]}" for a in addresses)
    try:
        infos = await asyncio.to_thread(_stats, settings)
    except ThrottleError as exc:
        return Component("throttle", "down", address, {"error": str(exc)})
    details = {
        name: sum(int(info[name]) for info in infos)
        for name in ("requests", "allowed", "denied", "keys", "connections", "errors")
    }
    details["daemons"] = len(infos)
    return Component("throttle", "up", address, details)


#: The throttle daemon's niceness (its unit's ``Nice=``): every request waits for it a few
#: milliseconds at most, and it needs 2-3 µs of CPU a decision. At normal priority on a busy
#: two-core host, with the web workers saturating both cores, 5-15% of its answers came
#: after the web tier's 5 ms and were decided in process; at -10, 2%.
NICE = -10


def child(settings: Settings) -> Child:
    """How ``sleigh up`` runs the throttle daemon (before the web workers)."""
    return Child("throttled", settings.program_argv("sleigh.daemons.throttle"), nice=NICE)
