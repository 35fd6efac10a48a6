"""Time loading the demo catalog into SQLite and, if reachable, PostgreSQL.

Each back end gets a fresh database (an SQLite file in a temporary directory;
a throw-away PostgreSQL database on the server of ``--url``), migrated to head,
then ``load_demo`` runs twice: the first load inserts, the second must add nothing.

    python scripts/bench_demo_load.py --products 100000
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import tempfile
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from sleigh.daemons.runtime.config import load_section
from sleigh.webapp.db.config import DatabaseConfig
from sleigh.webapp.db.engine import create_engine, redacted
from sleigh.webapp.db.migrate import upgrade
from sleigh.webapp.demo.catalog import LoadReport, load_demo

DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


async def bench(url: str, home: Path, products: int, seed: int) -> tuple[LoadReport, LoadReport]:
    engine = create_engine(load_section(DatabaseConfig, {"url": url}, {}), home)
    try:
        await upgrade(engine)
        first = await load_demo(engine, products=products, seed=seed)
        again = await load_demo(engine, products=products, seed=seed)
        return first, again
    finally:
        await engine.dispose()


async def postgres(server: str, products: int, seed: int, home: Path) -> tuple[LoadReport, ...]:
    url = make_url(server)
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"sleigh_bench_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(dsn, timeout=5)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            db = url.set(database=name).render_as_string(hide_password=False)
            return await bench(db, home, products, seed)
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def line(label: str, first: LoadReport, again: LoadReport) -> str:
    rate = first.products_added / first.seconds if first.seconds else 0.0
    return (
        f"{label:<11} {first.products_added:>9,} {first.seconds:>8.2f} {rate:>12,.0f}"
        f" {again.seconds:>11.2f} {again.products_added:>9,}"
    )


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=100_000, help="catalog size to load")
    parser.add_argument("--seed", type=int, default=2000, help="catalog seed")
    parser.add_argument("--url", default=DEFAULT_PG, help="PostgreSQL server (admin database)")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args(argv)
    print(f"{'backend':<11} {'products':>9} {'seconds':>8} {'products/s':>12} {'reload (s)':>11} "
          f"{'re-added':>9}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        first, again = await bench(f"sqlite+aiosqlite:///{home}/bench.db", home, args.products,
                                   args.seed)  # fmt: skip
        print(line("sqlite", first, again), flush=True)
        if args.no_postgres:
            return 0
        try:
            first, again = await postgres(args.url, args.products, args.seed, home)
        except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
            print(f"postgresql  skipped: {redacted(args.url)} unreachable ({exc!r})")
            return 0
        print(line("postgresql", first, again))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
