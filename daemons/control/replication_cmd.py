"""``sleigh replication status``: the operator's view of ``sleigh-mcastd``.

Also what ``sleigh status`` and ``sleigh up`` need of the replicator:
:func:`status` (one :class:`Component`), :func:`child` (how ``sleigh up``
runs it) and :func:`ensure_secret` (the cluster secret ``sleigh up``
creates on first use, for a cluster of one machine on loopback).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import secrets
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..replicator.stats import StatsUnavailable, fetch
from ..runtime.paths import create_private
from . import cache_cmd
from .component import Component
from .settings import Settings
from .supervisor import Child

TIMEOUT = 2.0


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``sleigh replication ...`` to the top-level subparsers *sub*."""
    replication = sub.add_parser(
        "replication", parents=[common], help="look into cache replication (sleigh-mcastd)"
    )
    actions = replication.add_subparsers(
        dest="replication_command", required=True, metavar="ACTION"
    )
    show = actions.add_parser("status", parents=[common], help="peers, lag, loss, repairs")
    show.add_argument("--json", action="store_true", help="print every counter as JSON")
    show.set_defaults(run=cmd_status)


def _fetch(settings: Settings) -> dict[str, Any]:
    return fetch(settings.replicator.socket_path(settings.home), TIMEOUT)


def peer_rows(snapshot: Mapping[str, Any]) -> list[str]:
    """One line per peer: state, lag, loss, repairs, unrecoverable gaps."""
    rows = [
        f"{'peer':16}  {'state':6}  {'lag':>6}  {'lag_s':>6}  {'received':>9}"
        f"  {'missed':>7}  {'recovered':>9}  {'naks':>6}  {'gaps':>4}  {'lost':>6}"
    ]
    for p in snapshot.get("peers", []):
        rows.append(
            f"{p['sender']:16}  {p['state']:6}  {p['lag']:>6}  {p['lag_seconds']:>6}"
            f"  {p['received']:>9}  {p['missed']:>7}  {p['recovered']:>9}  {p['naks']:>6}"
            f"  {p['gaps']:>4}  {p['lost']:>6}"
        )
    return rows


def summary(snapshot: Mapping[str, Any]) -> dict[str, Any]:
    """The headline counters (also ``sleigh status``'s details)."""
    sent = snapshot.get("sent", {})
    daemon = snapshot.get("daemon", {})
    peers = snapshot.get("peers", [])
    return {
        "sender": snapshot.get("sender"),
        "peers": len(peers),
        "alive": sum(p["state"] == "alive" for p in peers),
        "sent_ops": sent.get("ops", 0),
        "repairs_sent": sent.get("repairs", 0),
        "received_ops": sum(p["ops"] for p in peers),
        "lag": max((p["lag"] for p in peers), default=0),
        "unrecoverable": sum(p["gaps"] for p in peers),
        "rejected": sum(snapshot.get("rejected", {}).values()),
        "kernel_drops": daemon.get("kernel_rcvbuf_errors", -1),
    }


def cmd_status(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    try:
        snapshot = _fetch(settings)
    except StatsUnavailable as exc:
        print(f"sleigh replication: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(snapshot, indent=2, sort_keys=True))
        return 0
    for key, value in summary(snapshot).items():
        print(f"{key:16} {value}")
    rejected = snapshot.get("rejected", {})
    if rejected:
        print("rejected by reason: " + ", ".join(f"{k}={v}" for k, v in rejected.items()))
    print()
    print("\n".join(peer_rows(snapshot)))
    return 0


async def status(settings: Settings) -> Component:
    """``sleigh status``'s line for the replicator: degraded on silent peers or lost data."""
    path = settings.replicator.socket_path(settings.home)
    address = f"unix:{path}"
    try:
        snapshot = await asyncio.to_thread(_fetch, settings)
    except StatsUnavailable as exc:
        return Component("replication", "down", address, {"error": str(exc)})
    details = summary(snapshot)
    troubled = details["alive"] < details["peers"] or details["unrecoverable"]
    return Component("replication", "degraded" if troubled else "up", address, details)


#: The replicator's niceness (its unit's ``Nice=``): the cache's, for the same reason
#: (:data:`.cache_cmd.NICE`).
NICE = cache_cmd.NICE


def child(settings: Settings) -> Child:
    """How ``sleigh up`` runs ``sleigh-mcastd`` (after the cache; it binds its stats socket)."""
    return Child("mcastd", settings.program_argv("sleigh.daemons.replicator"), nice=NICE)


def ensure_secret(settings: Settings) -> Path:
    """Create the cluster secret file (mode 0600, 32 random bytes) if it is missing.

    For ``sleigh up`` on one machine: a real cluster shares one secret,
    distributed by the operator. An existing file is left as it is.
    """
    path = settings.replicator.secret_path(settings.home)
    create_private(path, base64.b64encode(secrets.token_bytes(32)) + b"\n")
    return path
