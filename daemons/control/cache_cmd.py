"""``sleigh cache stats|get|del|flush``: the operator's view of ``sleigh-cached``.

Every command talks to the daemon over its socket (never the LMDB file),
so what it shows is what the daemon serves.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Mapping
from typing import Any

from ..cache.client import CacheClient, CacheClientError
from ..cache.codec import CodecError, decode
from .settings import Settings
from .supervisor import Child

#: The INFO fields ``sleigh cache stats`` shows first, in this order.
HEADLINE = (
    "connected_clients",
    "keyspace_hits",
    "keyspace_misses",
    "sleigh_direct_hits",
    "sleigh_direct_misses",
    "sleigh_direct_reader_processes",
    "sleigh_sets",
    "evicted_keys",
    "expired_keys",
    "used_memory_human",
    "maxmemory_human",
    "lmdb_map_used_ratio",
    "sleigh_commits",
    "sleigh_largest_group",
    "sleigh_latency_usec",
)


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``sleigh cache ...`` to the top-level subparsers *sub*."""
    cache = sub.add_parser("cache", parents=[common], help="look into the object cache")
    actions = cache.add_subparsers(dest="cache_command", required=True, metavar="ACTION")
    stats = actions.add_parser("stats", parents=[common], help="counters from INFO")
    stats.add_argument("--json", action="store_true", help="print every INFO field as JSON")
    stats.set_defaults(run=cmd_stats)
    get = actions.add_parser("get", parents=[common], help="show one entry and its TTL")
    get.add_argument("key")
    get.set_defaults(run=cmd_get)
    delete = actions.add_parser("del", parents=[common], help="delete entries")
    delete.add_argument("keys", nargs="+", metavar="KEY")
    delete.set_defaults(run=cmd_del)
    flush = actions.add_parser("flush", parents=[common], help="empty the cache")
    flush.add_argument("--yes", action="store_true", help="do not ask (for scripts)")
    flush.set_defaults(run=cmd_flush)


def _client(settings: Settings) -> CacheClient:
    cfg = settings.cache
    return CacheClient(cfg.socket_path(settings.home), None, direct=False, timeout=5.0)


def _fail(exc: Exception) -> int:
    print(f"sleigh cache: {exc}", file=sys.stderr)
    return 1


def cmd_stats(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    try:
        with _client(settings) as client:
            info = client.info()
    except CacheClientError as exc:
        return _fail(exc)
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    for key in HEADLINE:
        value = info.get(key, "-")
        if isinstance(value, dict):  # redis-py parses "a=1,b=2" into a dict
            value = ",".join(f"{k}={v}" for k, v in value.items())
        print(f"{key:24} {value}")
    return 0


def cmd_get(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    key = args.key
    try:
        with _client(settings) as client:
            raw, ttl = client.get_raw(key)
    except CacheClientError as exc:
        return _fail(exc)
    if raw is None:
        print(f"{args.key}: not in the cache", file=sys.stderr)
        return 1
    left = "no expiry" if ttl == -1 else f"expires in {ttl / 1000:.3f}s"
    print(f"# {args.key} ({len(raw)} bytes, {left})")
    with contextlib.suppress(CodecError):  # written by another client: only bytes
        print("msgpack:", json.dumps(decode(raw), indent=2, default=str, ensure_ascii=False))
    print("bytes:", repr(raw[:2000]) + (" ..." if len(raw) > 2000 else ""))
    return 0


def cmd_del(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    try:
        with _client(settings) as client:
            removed = client.delete(*args.keys)
    except CacheClientError as exc:
        return _fail(exc)
    print(f"deleted {removed} of {len(args.keys)}")
    return 0


def cmd_flush(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    if not args.yes:
        if not sys.stdin.isatty():
            print("sleigh cache flush: add --yes to flush without a terminal", file=sys.stderr)
            return 2
        if input("Empty the whole cache? [y/N] ").strip().lower() != "y":
            print("left as it was")
            return 1
    try:
        with _client(settings) as client:
            client.flush()
    except CacheClientError as exc:
        return _fail(exc)
    print("the cache is empty")
    return 0


#: The cache's niceness, and the replicator's (their units' ``Nice=``): their CPU is bounded
#: by the cluster's write rate, the web workers' is not. Three hosts on two cores at 10,000
#: objects/s, both cores also kept busy by two processes at nice 0 (web workers' stand-in):
#: at nice 0 a write reached the next host's cache in 8.8-35 ms (p50), 131-350 ms (p99); at
#: -5, 4.0 ms and 28-30 ms. With the cores otherwise idle, 2.1 and 4.4-4.8 against 1.6-1.7
#: and 3.5 (one outlier of 24.6).
NICE = -5


def child(settings: Settings) -> Child:
    """How ``sleigh up`` runs ``sleigh-cached`` (first: the others read or feed it)."""
    return Child("cached", settings.program_argv("sleigh.daemons.cache"), nice=NICE)
