"""Time loading the demo catalog into SQLite and, if reachable, PostgreSQL.

Each back end gets a fresh database (an SQLite file in a temporary directory;
a throw-away PostgreSQL database on the server of ``--url``), migrated to head,
then ``load_demo`` runs twice: the first load inserts, the second must add nothing.

    python scripts/bench_demo_load.py --products 100000
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

from webshop import DEFAULT_POSTGRES, BenchError, scratch_database

from sleigh.daemons.runtime.config import load_section
from sleigh.webapp.db.config import DatabaseConfig
from sleigh.webapp.db.engine import create_engine
from sleigh.webapp.db.migrate import upgrade
from sleigh.webapp.demo.catalog import LoadReport, load_demo


async def bench(url: str, home: Path, products: int, seed: int) -> tuple[LoadReport, LoadReport]:
    engine = create_engine(load_section(DatabaseConfig, {"url": url}, {}), home)
    try:
        await upgrade(engine)
        first = await load_demo(engine, products=products, seed=seed)
        again = await load_demo(engine, products=products, seed=seed)
        return first, again
    finally:
        await engine.dispose()


def line(label: str, first: LoadReport, again: LoadReport) -> str:
    rate = first.products_added / first.seconds if first.seconds else 0.0
    return (
        f"{label:<11} {first.products_added:>9,} {first.seconds:>8.2f} {rate:>12,.0f}"
        f" {again.seconds:>11.2f} {again.products_added:>9,}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=100_000, help="catalog size to load")
    parser.add_argument("--seed", type=int, default=2000, help="catalog seed")
    parser.add_argument(
        "--url", default=DEFAULT_POSTGRES, help="PostgreSQL server (admin database)"
    )
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args(argv)
    print(f"{'backend':<11} {'products':>9} {'seconds':>8} {'products/s':>12} {'reload (s)':>11} "
          f"{'re-added':>9}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        sqlite = f"sqlite+aiosqlite:///{home}/bench.db"
        first, again = asyncio.run(bench(sqlite, home, args.products, args.seed))
        print(line("sqlite", first, again), flush=True)
        if args.no_postgres:
            return 0
        try:
            with scratch_database(args.url) as url:
                first, again = asyncio.run(bench(url, home, args.products, args.seed))
        except BenchError as exc:
            print(f"postgresql  skipped: {exc}")
            return 0
        print(line("postgresql", first, again))
    return 0


if __name__ == "__main__":
    sys.exit(main())
