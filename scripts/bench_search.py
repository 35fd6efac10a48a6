#!/usr/bin/env python3
"""Benchmark sleigh's search index against tantivy and SQLite FTS5 on one catalog.

One run generates a catalog (Zipf-Mandelbrot words, Zipf brands and categories,
log-normal prices), indexes it in each engine, then runs the same query mix:
1-3 words chosen by Zipf, half with a category or brand filter, a third with a
price range, half sorted by relevance and the rest by price, popularity or date,
top 20. It prints build time, size, queries/s with one and two threads, p50/p99
and the facets-on cost, side by side, then the targets.

sleigh computes the exact total of every query; tantivy is asked for none
(``count=False``) and its hits are not turned into product ids. FTS5 runs a
sample of the queries (it is two orders of magnitude slower), page only.

Usage: ``bench_search.py [--products N] [--queries N] [--quick]``; the default
runs 100,000 and 1,000,000 products. Other front ends (the daemon) add a column
through :func:`register_runner`.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import math
import os
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from search_corpus import Catalog, make_catalog, make_queries

from sleigh.core_ext.search import NATIVE, Query, build_index, open_index

#: Builds (or starts) an engine on a catalog in a directory: ``(seconds, bytes, factory)``,
#: the factory giving each measuring thread its search call; see :func:`register_runner`.
Runner = Callable[["Catalog", Path], tuple[float, int, Callable[[], Callable[[Query], object]]]]
EXTRA_RUNNERS: list[tuple[str, Runner]] = []


def register_runner(name: str, runner: Runner) -> None:
    """Add a row: *runner* builds (or starts) its engine (the daemon's benchmark adds
    "sleigh through the daemon" this way, reusing the index file built in the same
    directory, ``where / "sleigh.idx"``)."""
    EXTRA_RUNNERS.append((name, runner))


# -- engines ---------------------------------------------------------------------

Search = Callable[[Query], object]
#: Build time (s), size (bytes), and a factory of search calls (one per thread).
Built = tuple[float, int, Callable[[], Search]]


def build_sleigh(catalog: Catalog, where: Path) -> Built:
    started = time.perf_counter()
    info = build_index(catalog.docs, where / "sleigh.idx")
    seconds = time.perf_counter() - started
    index = open_index(where / "sleigh.idx")
    return seconds, info.size, lambda: index.search


if TYPE_CHECKING:
    import tantivy


def _tantivy_schema() -> tantivy.Schema:
    import tantivy

    builder = tantivy.SchemaBuilder()
    for name in ("title", "brand", "category", "description"):
        builder.add_text_field(name, tokenizer_name="en_stem", index_option="freq")
    for name in ("price", "popularity", "created", "brand_id", "cat", "in_stock", "pid"):
        builder.add_integer_field(name, indexed=True, fast=True)
    return builder.build()


def build_tantivy(catalog: Catalog, where: Path) -> Built:
    import tantivy

    schema = _tantivy_schema()
    started = time.perf_counter()
    (where / "tantivy").mkdir()
    index = tantivy.Index(schema, path=str(where / "tantivy"))
    writer = index.writer(heap_size=512_000_000, num_threads=2)
    for d in catalog.docs:
        writer.add_document(
            tantivy.Document(
                title=d.title,
                brand=d.brand,
                category=" ".join(n for _, n in d.category_path),
                description=d.description,
                price=d.price_cents,
                popularity=d.popularity,
                created=d.created,
                brand_id=d.brand_id,
                cat=[c for c, _ in d.category_path],
                in_stock=int(d.in_stock),
                pid=d.id,
            )
        )
    writer.commit()
    writer.wait_merging_threads()
    index.reload()
    seconds = time.perf_counter() - started
    size = sum(f.stat().st_size for f in (where / "tantivy").iterdir())
    search = _tantivy_search(index, schema)
    return seconds, size, lambda: search


def _tantivy_search(index: tantivy.Index, schema: tantivy.Schema) -> Search:
    import tantivy

    searcher = index.searcher()
    fields = ["title", "brand", "category", "description"]
    boosts = {"title": 4.0, "brand": 3.0, "category": 2.0}
    order = {
        "price_asc": ("price", tantivy.Order.Asc),
        "price_desc": ("price", tantivy.Order.Desc),
        "popularity": ("popularity", tantivy.Order.Desc),
        "newest": ("created", tantivy.Order.Desc),
    }
    must = tantivy.Occur.Must

    def search(q: Query) -> object:
        parts = [(must, index.parse_query(q.text, fields, boosts, conjunction_by_default=True))]
        if q.category is not None:
            parts.append((must, tantivy.Query.term_query(schema, "cat", q.category)))
        if q.brands:
            parts.append((must, tantivy.Query.term_query(schema, "brand_id", q.brands[0])))
        if q.price_min is not None:
            parts.append(
                (
                    must,
                    tantivy.Query.range_query(
                        schema, "price", tantivy.FieldType.Integer, q.price_min, q.price_max
                    ),
                )
            )
        query = tantivy.Query.boolean_query(parts)
        if q.sort in order:
            name, direction = order[q.sort]
            return searcher.search(
                query, q.limit, count=False, order_by_field=name, order=direction
            )
        return searcher.search(query, q.limit, count=False)

    return search


def build_fts5(catalog: Catalog, where: Path) -> Built:
    path = where / "fts5.db"
    started = time.perf_counter()
    db = sqlite3.connect(path)
    db.executescript(
        """
        PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;
        CREATE TABLE products (id INTEGER PRIMARY KEY, price INT, popularity INT,
                               created INT, brand INT, category INT);
        CREATE VIRTUAL TABLE fts USING fts5(title, brand, category, description,
                                            content='', tokenize='porter unicode61');
        """
    )
    db.executemany(
        "INSERT INTO products VALUES (?, ?, ?, ?, ?, ?)",
        (
            (d.id, d.price_cents, d.popularity, d.created, d.brand_id, d.category_path[-1][0])
            for d in catalog.docs
        ),
    )
    db.executemany(
        "INSERT INTO fts (rowid, title, brand, category, description) VALUES (?, ?, ?, ?, ?)",
        (
            (d.id, d.title, d.brand, " ".join(n for _, n in d.category_path), d.description)
            for d in catalog.docs
        ),
    )
    db.execute("CREATE INDEX products_price ON products (price)")
    db.commit()
    db.close()
    seconds = time.perf_counter() - started
    subtrees = {c: catalog.subtree(c) for c in catalog.parents}
    return seconds, path.stat().st_size, lambda: _fts5_search(path, subtrees)


def _fts5_search(path: Path, subtrees: dict[int, list[int]]) -> Search:
    db = sqlite3.connect(path, check_same_thread=False)
    order = {
        "relevance": "bm25(fts, 4.0, 3.0, 2.0, 1.0)",
        "price_asc": "p.price, p.popularity DESC",
        "price_desc": "p.price DESC, p.popularity DESC",
        "popularity": "p.popularity DESC",
        "newest": "p.created DESC",
    }

    def search(q: Query) -> object:
        where = ["fts MATCH ?"]
        args: list[object] = [" ".join(f'"{w}"' for w in q.text.split())]
        if q.category is not None:
            members = subtrees[q.category]
            where.append(f"p.category IN ({','.join('?' * len(members))})")
            args.extend(members)
        if q.brands:
            where.append("p.brand = ?")
            args.append(q.brands[0])
        if q.price_min is not None:
            where.append("p.price BETWEEN ? AND ?")
            args.extend((q.price_min, q.price_max))
        sql = (
            f"SELECT p.id FROM fts JOIN products p ON p.id = fts.rowid WHERE {' AND '.join(where)}"
            f" ORDER BY {order[q.sort]} LIMIT {q.limit}"
        )
        return db.execute(sql, args).fetchall()

    return search


# -- measuring -------------------------------------------------------------------


@dataclass
class Figures:
    qps: float
    p50_ms: float
    p99_ms: float


def measure(factory: Callable[[], Search], queries: Sequence[Query], threads: int) -> Figures:
    """Run every query once, split between *threads* threads; latency per query."""
    searches = [factory() for _ in range(threads)]
    latencies: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(threads + 1)

    def work(n: int) -> None:
        mine = []
        search = searches[n]
        barrier.wait()
        for q in queries[n::threads]:
            t0 = time.perf_counter()
            search(q)
            mine.append(time.perf_counter() - t0)
        with lock:
            latencies.extend(mine)

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    barrier.wait()
    started = time.perf_counter()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    return Figures(
        len(queries) / elapsed,
        latencies[len(latencies) // 2] * 1e3,
        latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1e3,
    )


@dataclass
class Row:
    name: str
    products: int
    build_s: float
    size: int
    one: Figures
    two: Figures
    note: str = ""


def _engines() -> list[tuple[str, Runner]]:
    return [
        ("sleigh in process" + ("" if NATIVE else " (Python twin)"), build_sleigh),
        ("tantivy", build_tantivy),
        ("SQLite FTS5", build_fts5),
        *EXTRA_RUNNERS,
    ]


def bench_size(n: int, queries: int, fts_sample: int) -> tuple[list[Row], float]:
    """Every engine on a catalog of *n*; also sleigh's facets-on / plain time ratio."""
    catalog = make_catalog(n)
    mix = make_queries(catalog, queries)
    gc.collect()
    gc.freeze()
    rows: list[Row] = []
    facet_ratio = math.nan
    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        for name, runner in _engines():
            seconds, size, factory = runner(catalog, Path(tmp))
            gc.collect()
            gc.freeze()  # what the engine keeps is not traced by every collection
            sample = mix[:fts_sample] if name == "SQLite FTS5" else mix
            warm = factory()
            for q in sample[:200]:
                warm(q)
            one, two = measure(factory, sample, 1), measure(factory, sample, 2)
            note = f"{len(sample)} queries" if len(sample) != len(mix) else ""
            rows.append(Row(name, n, seconds, size, one, two, note))
            if name.startswith("sleigh in process"):
                faceted = [dataclasses.replace(q, facets=True) for q in mix]
                facet_ratio = one.qps / measure(factory, faceted, 1).qps
            print(f"  done: {name} at {n:,} products", file=sys.stderr, flush=True)
    gc.unfreeze()
    return rows, facet_ratio


def print_table(rows: list[Row]) -> None:
    tantivy = {r.products: r for r in rows if r.name == "tantivy"}
    print(
        f"\n{'engine':<30} {'products':>9} {'build s':>8} {'size MB':>8} {'q/s 1T':>8}"
        f" {'q/s 2T':>8} {'p50 1T':>7} {'p99 1T':>7} {'p50 2T':>7} {'p99 2T':>7}"
        f" {'x tantivy 1T/2T':>16}  note"
    )
    for r in rows:
        t = tantivy.get(r.products)
        ratio = f"{r.one.qps / t.one.qps:.2f}/{r.two.qps / t.two.qps:.2f}" if t else "-"
        print(
            f"{r.name:<30} {r.products:>9,} {r.build_s:>8.1f} {r.size / 1e6:>8.1f}"
            f" {r.one.qps:>8.0f} {r.two.qps:>8.0f} {r.one.p50_ms:>7.2f} {r.one.p99_ms:>7.2f}"
            f" {r.two.p50_ms:>7.2f} {r.two.p99_ms:>7.2f} {ratio:>16}  {r.note}"
        )


def print_targets(rows: list[Row], facet_ratio: float) -> None:
    size = max(r.products for r in rows)
    by = {r.name: r for r in rows if r.products == size}
    ours = next(r for name, r in by.items() if name.startswith("sleigh in process"))
    tantivy, fts = by["tantivy"], by["SQLite FTS5"]
    checks = [
        ("q/s 1T sleigh/tantivy", ours.one.qps / tantivy.one.qps, ">=", 1.2),
        ("q/s 2T sleigh/tantivy", ours.two.qps / tantivy.two.qps, ">=", 1.2),
        ("p99 1T sleigh/tantivy", ours.one.p99_ms / tantivy.one.p99_ms, "<=", 1.0),
        ("p99 2T sleigh/tantivy", ours.two.p99_ms / tantivy.two.p99_ms, "<=", 1.0),
        ("q/s 1T sleigh/FTS5", ours.one.qps / fts.one.qps, ">=", 10.0),
        ("facets on / plain (time)", facet_ratio, "<=", 2.0),
        ("build time sleigh/tantivy", ours.build_s / tantivy.build_s, "<=", 1.5),
    ]
    for name, _ in EXTRA_RUNNERS:
        checks.append((f"q/s 1T {name}/tantivy", by[name].one.qps / tantivy.one.qps, ">=", 0.8))
    print(f"\ntargets (at {size:,} products; sleigh computes exact totals, tantivy does not)")
    for label, value, op, bound in checks:
        met = value >= bound if op == ">=" else value <= bound
        print(f"  {label:<34} {value:>7.2f}  {op} {bound:<5} {'met' if met else 'NOT MET'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, action="append", help="catalog size (repeatable)")
    parser.add_argument("--queries", type=int, default=None, help="queries in the mix")
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    args = parser.parse_args(argv)
    sizes = args.products or ([5_000] if args.quick else [100_000, 1_000_000])
    queries = args.queries or (300 if args.quick else 10_000)
    fts_sample = min(queries, 100 if args.quick else 500)
    print(
        f"bench_search: {queries:,} queries per engine, top 20, on {os.cpu_count()} cores;"
        f" engine {'compiled' if NATIVE else 'Python twin'}"
    )
    from bench_searchd import NAME as DAEMON_ROW
    from bench_searchd import daemon_runner

    register_runner(DAEMON_ROW, daemon_runner)
    rows: list[Row] = []
    facet_ratio = math.nan
    for n in sizes:
        found, facet_ratio = bench_size(n, queries, fts_sample)
        rows.extend(found)
    print_table(rows)
    print_targets(rows, facet_ratio)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
