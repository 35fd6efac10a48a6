"""``sleigh search reindex|query|suggest|update|stats``: the operator's view of ``sleigh-searchd``.

``reindex`` builds a new index file from the database into the index
directory (atomically: the daemon never sees a part of it), keeps the
newest ``search.keep_indexes`` files, and makes the daemon on this host swap
to it at once (``SIGHUP``; it would also find it within
``search.reload_interval``). Replicas on other hosts build their own.
The other commands talk to the daemon through the client, as the web tier does.

For ``sleigh up`` and ``sleigh status``: :func:`prepare` (build the first
index if there is none), :func:`child` and :func:`status`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from ...webapp.db.engine import create_engine
from ..search.client import AsyncSearchClient, SearchClient
from ..search.config import SearchConfig
from ..search.errors import SearchError
from ..search.index import index_files, index_name
from .component import Component
from .settings import Settings
from .supervisor import Child

log = logging.getLogger("sleigh.search.control")

__all__ = ["add_parser", "build", "child", "prepare", "reindex", "status"]

#: How long ``reindex`` waits for the daemon to serve the new index.
SWAP_WAIT = 30.0
STATUS_TIMEOUT = 3.0


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``sleigh search ...`` to the top-level subparsers *sub*."""
    search = sub.add_parser("search", parents=[common], help="product search: index and daemon")
    actions = search.add_subparsers(dest="search_command", required=True, metavar="ACTION")
    reindex_p = actions.add_parser(
        "reindex", parents=[common], help="build a new index from the database; the daemon swaps"
    )
    reindex_p.add_argument(
        "--no-swap", action="store_true", help="only build; do not tell the daemon"
    )
    reindex_p.set_defaults(run=cmd_reindex)
    query = actions.add_parser("query", parents=[common], help="run a search through the daemon")
    query.add_argument("text", nargs="*", help="the words (quote a phrase; OR; -word)")
    query.add_argument("--category", type=int, metavar="ID", help="only this category's subtree")
    query.add_argument("--brand", type=int, action="append", default=[], metavar="ID")
    query.add_argument("--price-min", type=int, metavar="CENTS")
    query.add_argument("--price-max", type=int, metavar="CENTS")
    query.add_argument("--age", type=int, metavar="YEARS")
    query.add_argument("--in-stock", action="store_true", help="only products in stock")
    query.add_argument("--sort", default="relevance", help="relevance, price_asc, ... or a rule")
    query.add_argument("--offset", type=int, default=0)
    query.add_argument("--limit", type=int, default=20)
    query.add_argument("--facets", action="store_true", help="count categories, brands, bands")
    query.add_argument("--json", action="store_true", help="print the reply as JSON")
    query.set_defaults(run=cmd_query)
    suggest = actions.add_parser("suggest", parents=[common], help="completions of a prefix")
    suggest.add_argument("text")
    suggest.add_argument("--limit", type=int, default=8)
    suggest.set_defaults(run=cmd_suggest)
    update = actions.add_parser(
        "update", parents=[common], help="change a product's price or stock in every replica"
    )
    update.add_argument("id", type=int, help="the product id")
    update.add_argument("--price", type=int, metavar="CENTS", help="the new price, in cents")
    update.add_argument("--in-stock", choices=("yes", "no"), help="whether the product is in stock")
    update.set_defaults(run=cmd_update)
    stats = actions.add_parser("stats", parents=[common], help="the daemon's counters")
    stats.add_argument("--json", action="store_true", help="print every counter as JSON")
    stats.set_defaults(run=cmd_stats)


def _client(settings: Settings) -> SearchClient:
    cfg = settings.search
    return SearchClient(cfg.client_endpoints(settings.home), timeout=max(cfg.client_timeout, 5.0))


def _fail(exc: Exception) -> int:
    print(f"sleigh search: {exc}", file=sys.stderr)
    return 1


# -- building -------------------------------------------------------------------


def _next_version(directory: Path) -> int:
    newest = index_files(directory)
    last = int(newest[0].name.split("-")[1].split(".")[0]) if newest else 0
    return max(last + 1, int(time.time() * 1000))


async def build(settings: Settings) -> tuple[Path, int, int, float]:
    """Build a new index file from the database.

    :returns: its path, version, number of products and the seconds it took.
    """
    from ...core_ext.search import build_index, load_products

    started = time.monotonic()
    directory = settings.search.index_path(settings.home)
    directory.mkdir(parents=True, exist_ok=True)
    engine = create_engine(settings.database, settings.home)
    try:
        products = await load_products(engine)
    finally:
        await engine.dispose()
    version = _next_version(directory)
    path = directory / index_name(version)
    info = await asyncio.to_thread(build_index, products, path, version=version)
    _prune(directory, settings.search.keep_indexes)
    return path, info.version, info.products, time.monotonic() - started


def _prune(directory: Path, keep: int) -> None:
    """Remove all but the newest *keep* index files (a daemon keeps its open map)."""
    for old in index_files(directory)[keep:]:
        old.unlink(missing_ok=True)


async def prepare(settings: Settings, out: TextIO = sys.stdout) -> Path | None:
    """Build the first index if the index directory has none (``sleigh up`` runs this
    after the database is ready); the file built, or ``None`` if one was there."""
    if index_files(settings.search.index_path(settings.home)):
        return None
    print("building the search index...", file=out, flush=True)
    path, version, products, seconds = await build(settings)
    print(f"search index version {version}: {products:,} products in {seconds:.1f}s", file=out)
    return path


def _swap(settings: Settings, version: int, out: TextIO) -> bool:
    """Have the daemon on this host serve *version*; whether it does."""
    cfg = settings.search
    with SearchClient([f"ipc://{cfg.socket_path(settings.home)}"], timeout=5.0) as client:
        try:
            pid = int(client.stats()["pid"])
        except SearchError as exc:
            print(
                f"no daemon answers on this host ({exc}); it loads the new index when it starts",
                file=out,
            )
            return False
        os.kill(pid, signal.SIGHUP)
        deadline = time.monotonic() + SWAP_WAIT
        while time.monotonic() < deadline:
            try:
                if client.ping() == version:
                    print(f"sleigh-searchd (pid {pid}) now serves version {version}", file=out)
                    return True
            except SearchError:
                pass
            time.sleep(0.05)
    print(
        f"sleigh-searchd (pid {pid}) did not serve version {version} in time; see its log", file=out
    )
    return False


def reindex(settings: Settings, *, swap: bool = True, out: TextIO = sys.stdout) -> int:
    """Build from the database and make the local daemon swap; the exit status."""
    path, version, products, seconds = asyncio.run(build(settings))
    print(f"built {path} (version {version}, {products:,} products) in {seconds:.1f}s", file=out)
    if swap and not _swap(settings, version, out):
        return 1 if _daemon_runs(settings) else 0
    return 0


def _daemon_runs(settings: Settings) -> bool:
    return settings.search.socket_path(settings.home).exists()


def cmd_reindex(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    return reindex(settings, swap=not args.no_swap)


# -- talking to the daemon ----------------------------------------------------------


def cmd_query(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    conditions: dict[str, Any] = {
        "category": args.category,
        "brands": args.brand,
        "age": args.age,
        "in_stock": True if args.in_stock else None,
        "sort": args.sort,
        "offset": args.offset,
        "limit": args.limit,
        "facets": ("category", "brand", "price_band", "age_band") if args.facets else (),
    }
    if args.price_min is not None or args.price_max is not None:
        conditions["price"] = (args.price_min, args.price_max)
    try:
        with _client(settings) as client:
            result = client.search(" ".join(args.text), **conditions)
    except SearchError as exc:
        return _fail(exc)
    if args.json:
        print(json.dumps(result.__dict__, indent=2, default=str))
        return 0
    print(f"{result.total:,} found (index version {result.version}, {result.took_us} µs)")
    if result.suggestion:
        print(f"did you mean: {result.suggestion}")
    print(" ".join(str(i) for i in result.ids))
    for name, counts in (result.facets or {}).items():
        top = sorted(counts.items(), key=lambda kv: -kv[1])[:10]
        print(f"{name}: " + ", ".join(f"{k}={v}" for k, v in top))
    return 0


def cmd_suggest(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    try:
        with _client(settings) as client:
            completions = client.suggest(args.text, args.limit)
    except SearchError as exc:
        return _fail(exc)
    for completion in completions:
        print(completion)
    return 0


def cmd_update(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    if args.price is None and args.in_stock is None:
        print("sleigh search update: give --price and/or --in-stock", file=sys.stderr)
        return 2
    stock = None if args.in_stock is None else args.in_stock == "yes"
    try:
        with _client(settings) as client:
            applied = client.update([(args.id, args.price, stock)])
    except SearchError as exc:
        return _fail(exc)
    for endpoint, outcome in applied.items():
        said = f"{outcome} product(s) changed" if isinstance(outcome, int) else outcome
        print(f"{endpoint}: {said}")
    return 0 if all(isinstance(v, int) for v in applied.values()) else 1


def cmd_stats(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    try:
        with _client(settings) as client:
            stats = client.stats()
    except SearchError as exc:
        return _fail(exc)
    if args.json:
        print(json.dumps(stats, indent=2, default=str))
        return 0
    for key, value in _headline(stats).items():
        print(f"{key:16} {value}")
    return 0


def _headline(stats: dict[str, Any]) -> dict[str, Any]:
    index = stats.get("index") or {}
    latency = stats.get("latency_us", {})
    return {
        "endpoint": stats.get("endpoint"),
        "pid": stats.get("pid"),
        "index_version": index.get("version", "none"),
        "index_age_s": index.get("age_s", "-"),
        "products": index.get("products", "-"),
        "qps_10s": stats.get("qps_10s"),
        "requests": stats.get("requests"),
        "errors": stats.get("errors"),
        "p50_us": latency.get("p50"),
        "p99_us": latency.get("p99"),
        "workers": stats.get("workers"),
    }


# -- sleigh up and sleigh status ----------------------------------------------------


def child(settings: Settings) -> Child:
    """How ``sleigh up`` runs the daemon (it binds its own socket under the home)."""
    return Child("searchd", settings.program_argv("sleigh.daemons.search"))


async def status(settings: Settings) -> Component:
    """The search daemons' line in ``sleigh status``: up if every endpoint answers."""
    cfg: SearchConfig = settings.search
    endpoints = cfg.client_endpoints(settings.home)
    details: dict[str, Any] = {}
    down = []
    for endpoint in endpoints:
        client = AsyncSearchClient([endpoint], timeout=STATUS_TIMEOUT)
        try:
            stats = await client.stats()
        except SearchError as exc:
            down.append(f"{endpoint}: {exc}")
            continue
        finally:
            await client.aclose()
        for key, value in _headline(stats).items():
            if key != "endpoint":
                details.setdefault(key, value)
    address = ", ".join(endpoints)
    if down:
        details["error"] = "; ".join(down)
        return Component(
            "search", "down" if len(down) == len(endpoints) else "degraded", address, details
        )
    if details.get("index_version") == "none":
        return Component("search", "degraded", address, {**details, "error": "no index yet"})
    return Component("search", "up", address, details)
