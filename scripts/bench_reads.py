"""The catalog's hot read (a stock query) the ways it could run, side by side, in one run.

The demo catalog (2,000 products) goes into a throw-away PostgreSQL database on
the server of ``--postgres`` (dropped after) and into an SQLite file; then the same
stock query (``queries._STOCK``, one id, ids in turn) runs ``--queries`` times each
way, the ways in turn for ``--rounds`` rounds (the machine drifts: compare within a
round). Printed per way: CPU µs and wall µs a query in each round, and the median
of the rounds' ratios to sleigh's way. The ways:

* PostgreSQL: through the SQLAlchemy engine (pooled connection, greenlet, result,
  rollback), as configured (``database.ping_after``: no ping for a connection used
  a moment ago) and pinging at every checkout (``ping_after = 0``, what SQLAlchemy's
  ``pool_pre_ping`` does); asyncpg's pool with its default reset (a reset query on every
  release); asyncpg's pool with no reset; sleigh's read connections
  (:mod:`sleigh.webapp.db.connections`, what :func:`~sleigh.webapp.db.reads.rows`
  uses). The last three run the statement :func:`~sleigh.webapp.db.reads.rows`
  compiles;
* SQLite: through the engine; sleigh's reader (a connection of the process's own).

One process, one query at a time: CPU is this process's (the database server's is
not counted), wall is the round trip. Run:

    .venv/bin/python scripts/bench_reads.py [--queries N] [--rounds R] [--postgres URL] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import asyncpg
import uvloop
from webshop import DEFAULT_POSTGRES, BenchError, scratch_database

from sleigh.daemons.runtime.config import load_section
from sleigh.webapp.db import create_engine, reads
from sleigh.webapp.db.config import DatabaseConfig
from sleigh.webapp.db.engine import redacted
from sleigh.webapp.db.migrate import upgrade
from sleigh.webapp.demo.catalog import load_demo
from sleigh.webapp.models import queries

PRODUCTS = 2000
#: Queries before each measured series (connections opened, statements prepared).
WARM = 50
OURS = "sleigh read connections"

#: One way to run the query: product id -> rows.
Way = Callable[[int], Awaitable[Any]]


async def _engine(url: str, home: Path) -> Any:
    engine = create_engine(load_section(DatabaseConfig, {"url": url}, {}), home)
    await upgrade(engine)
    await load_demo(engine, products=PRODUCTS, seed=2000)
    return engine


def _pinging(url: str, home: Path) -> Any:
    """An engine on *url* that pings every connection it checks out."""
    return create_engine(load_section(DatabaseConfig, {"url": url, "ping_after": 0}, {}), home)


def _through_engine(engine: Any) -> Way:
    async def way(pid: int) -> Any:
        async with engine.connect() as conn:
            return list(await conn.execute(queries._STOCK, {"ids": [pid]}))

    return way


def _through_rows(engine: Any) -> Way:
    async def way(pid: int) -> Any:
        return await reads.rows(engine, queries._STOCK, {"ids": [pid]})

    return way


async def _nothing(connection: Any) -> None:
    """asyncpg's pool reset, made to do nothing."""


async def _postgres_ways(engine: Any, pinging: Any, closing: list[Any]) -> dict[str, Way]:
    reader = reads._readers[engine.sync_engine]
    assert isinstance(reader, reads._PostgresReader)
    sql, _ = reader.sql(queries._STOCK, {"ids": [1]})
    connect = reader.connections.connect
    ways = {
        "SQLAlchemy engine": _through_engine(engine),
        "engine, ping at every checkout": _through_engine(pinging),
    }
    for name, reset in (
        ("asyncpg pool, default reset", None),
        ("asyncpg pool, no reset", _nothing),
    ):
        pool = await asyncpg.create_pool(min_size=0, max_size=4, reset=reset, **connect)
        closing.append(pool)

        def way(pid: int, pool: Any = pool) -> Awaitable[Any]:
            return pool.fetch(sql, pid)  # type: ignore[no-any-return]

        ways[name] = way
    ways[OURS] = _through_rows(engine)
    return ways


async def _series(way: Way, count: int) -> tuple[float, float]:
    """(CPU µs, wall µs) a query over *count* queries."""
    for pid in range(1, WARM + 1):
        await way(pid)
    cpu, wall = time.process_time(), time.perf_counter()
    for i in range(count):
        await way(i % PRODUCTS + 1)
    return (time.process_time() - cpu) * 1e6 / count, (time.perf_counter() - wall) * 1e6 / count


async def _measure(
    ways: dict[str, Way], count: int, rounds: int
) -> dict[str, list[tuple[float, float]]]:
    got: dict[str, list[tuple[float, float]]] = {name: [] for name in ways}
    for _ in range(rounds):
        for name, way in ways.items():
            got[name].append(await _series(way, count))
    return got


def _print(title: str, got: dict[str, list[tuple[float, float]]], ours: str) -> None:
    print(f"\n{title}")
    print(f"  {'way':<30} {'CPU us a query, each round':<34} {'wall us, each round':<34} x CPU")
    for name, series in got.items():
        cpu = " ".join(f"{c:7.1f}" for c, _ in series)
        wall = " ".join(f"{w:7.1f}" for _, w in series)
        ratio = statistics.median(c / o for (c, _), (o, _) in zip(series, got[ours], strict=True))
        print(f"  {name:<30} {cpu:<34} {wall:<34} {ratio:.2f}")


async def run(args: argparse.Namespace, home: Path, url: str) -> None:
    closing: list[Any] = []
    pg = await _engine(url, home)
    pinging = _pinging(url, home)
    lite = await _engine(f"sqlite+aiosqlite:///{home}/bench.db", home)
    try:
        ways = await _postgres_ways(pg, pinging, closing)
        got = await _measure(ways, args.queries, args.rounds)
        _print(f"PostgreSQL ({len(got)} ways, {args.queries:,} queries each, in turn)", got, OURS)
        lite_ways = {
            "SQLAlchemy engine": _through_engine(lite),
            "sleigh reader": _through_rows(lite),
        }
        got = await _measure(lite_ways, args.queries, args.rounds)
        _print(f"SQLite ({args.queries:,} queries each, in turn)", got, "sleigh reader")
        print("\nx CPU: the median over the rounds of the way's CPU a query / sleigh's")
    finally:
        for pool in closing:
            await pool.close()
        await pg.dispose()
        await pinging.dispose()
        await lite.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=3000, help="queries a way, a round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every way in turn")
    parser.add_argument(
        "--postgres", default=DEFAULT_POSTGRES, metavar="URL", help="the PostgreSQL server"
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: 200 queries, 1 round")
    args = parser.parse_args(argv)
    if args.quick:
        args.queries, args.rounds = 200, 1
    print(f"bench_reads: one stock query, {PRODUCTS:,} demo products; PostgreSQL at"
          f" {redacted(args.postgres)}")  # fmt: skip
    try:
        with scratch_database(args.postgres) as url, tempfile.TemporaryDirectory() as tmp:
            uvloop.run(run(args, Path(tmp), url))
    except BenchError as exc:
        print(f"bench_reads: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
