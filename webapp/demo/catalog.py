"""Load the demo catalog: a deterministic toy, book and video-game shop of any size.

Product *i* is a pure function of ``(seed, i)`` (see :mod:`.products`) with
id ``i + 1``, so loading is idempotent and incremental: products already
present (by id) are skipped, 1,000 then 5,000 adds 4,000, and two loads of
the same seed into two databases give identical rows. One transaction per
load; SQLite gets large ``executemany`` batches, PostgreSQL ``COPY``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ...errors import SleighError
from ..db.schema import brands, catalog_meta, categories, inventory
from ..db.schema import products as products_table
from .products import DemoProduct, Generator

__all__ = ["BATCH", "DemoCatalogError", "LoadReport", "load_demo"]

log = logging.getLogger("sleigh.demo")

#: Products generated and written per batch (and per progress report).
BATCH = 10_000
_PRODUCT_COLUMNS = (
    "id", "sku", "slug", "title", "description", "brand_id", "category_id", "price_cents",
    "age_min", "age_max", "popularity", "image", "created_at", "updated_at",
)  # fmt: skip
_INVENTORY_COLUMNS = ("product_id", "on_hand", "reserved", "updated_at")


class DemoCatalogError(SleighError):
    """The database already holds a demo catalog of another seed, or the request is bad."""


@dataclass(frozen=True)
class LoadReport:
    """What :func:`load_demo` did.

    :param categories: categories in the demo tree.
    :param brands: brands of the demo catalog.
    :param products_added: products this load inserted.
    :param products_total: products in the database afterwards.
    :param seconds: wall-clock time of the load.
    """

    categories: int
    brands: int
    products_added: int
    products_total: int
    seconds: float


async def load_demo(
    engine: AsyncEngine,
    *,
    products: int = 100_000,
    seed: int = 2000,
    progress: Callable[[int], None] | None = None,
) -> LoadReport:
    """Make sure the first *products* products of the demo catalog of *seed* are present.

    :param progress: called with the number of products inserted so far, after each batch.
    :raises DemoCatalogError: if *products* is negative or the database holds the demo
        catalog of another seed.
    """
    if products < 0:
        raise DemoCatalogError(f"products must be at least 0, got {products}")
    started = time.perf_counter()
    gen = Generator(seed)
    async with engine.begin() as conn:
        await _check_seed(conn, seed)
        category_ids = await _ensure_categories(conn, gen)
        brand_ids = await _ensure_brands(conn, gen)
        missing = await _missing(conn, products)
        rows = _rows(gen, missing, category_ids, brand_ids)
        added = await _insert(conn, rows, progress)
        total = (await conn.execute(select(func.count()).select_from(products_table))).scalar_one()
        await _record(conn, seed, products)
    report = LoadReport(
        len(gen.categories), len(gen.brands), added, total, time.perf_counter() - started
    )
    log.info(
        "demo catalog seed %d: %d products added, %d in all, %.1fs",
        seed, added, total, report.seconds,
    )  # fmt: skip
    return report


async def _meta(conn: AsyncConnection) -> dict[str, str]:
    rows = await conn.execute(select(catalog_meta.c.key, catalog_meta.c.value))
    return {key: value for key, value in rows}


async def _check_seed(conn: AsyncConnection, seed: int) -> None:
    stored = (await _meta(conn)).get("demo.seed")
    if stored is not None and stored != str(seed):
        raise DemoCatalogError(
            f"the database holds the demo catalog of seed {stored}, not {seed};"
            " load into an empty database or use the same seed"
        )


async def _record(conn: AsyncConnection, seed: int, count: int) -> None:
    meta = await _meta(conn)
    wanted = {
        "demo.seed": str(seed),
        "demo.products": str(max(count, int(meta.get("demo.products", "0")))),
        "demo.version": "1",
    }
    for key, value in wanted.items():
        if key not in meta:
            await conn.execute(insert(catalog_meta).values(key=key, value=value))
        elif meta[key] != value:
            await conn.execute(
                update(catalog_meta).where(catalog_meta.c.key == key).values(value=value)
            )


async def _ensure_categories(conn: AsyncConnection, gen: Generator) -> dict[str, int]:
    """Insert the tree's missing categories (parents first); return path -> id."""
    rows = await conn.execute(select(categories.c.path, categories.c.id))
    ids: dict[str, int] = {path: cid for path, cid in rows}
    for spec in gen.categories:
        if spec.path in ids:
            continue
        values = {
            "parent_id": None if spec.parent_path is None else ids[spec.parent_path],
            "slug": spec.slug,
            "name": spec.name,
            "path": spec.path,
            "depth": spec.depth,
            "sort_order": spec.sort_order,
        }
        result = await conn.execute(insert(categories).values(values).returning(categories.c.id))
        ids[spec.path] = result.scalar_one()
    return ids


async def _ensure_brands(conn: AsyncConnection, gen: Generator) -> dict[str, int]:
    """Insert the missing brands; return slug -> id."""
    existing = set((await conn.execute(select(brands.c.slug))).scalars())
    new = [{"slug": b.slug, "name": b.name} for b in gen.brands if b.slug not in existing]
    if new:
        await conn.execute(insert(brands), new)
    rows = await conn.execute(select(brands.c.slug, brands.c.id))
    return {slug: bid for slug, bid in rows}


async def _missing(conn: AsyncConnection, count: int) -> list[int]:
    """The indexes ``i < count`` whose product (id ``i + 1``) is not in the database."""
    present = set(
        (
            await conn.execute(select(products_table.c.id).where(products_table.c.id <= count))
        ).scalars()
    )
    return [i for i in range(count) if i + 1 not in present]


def _rows(
    gen: Generator, missing: Sequence[int], category_ids: dict[str, int], brand_ids: dict[str, int]
) -> Iterator[list[tuple[tuple[Any, ...], tuple[Any, ...]]]]:
    """Batches of ``(product row, inventory row)`` tuples, in column order."""
    for start in range(0, len(missing), BATCH):
        batch = []
        for i in missing[start : start + BATCH]:
            p: DemoProduct = gen.product(i)
            product_row = (
                p.id, p.sku, p.slug, p.title, p.description, brand_ids[p.brand_slug],
                category_ids[p.category_path], p.price_cents, p.age_min, p.age_max,
                p.popularity, p.image, p.created_at, p.updated_at,
            )  # fmt: skip
            batch.append((product_row, (p.id, p.on_hand, p.reserved, p.updated_at)))
        yield batch


async def _insert(
    conn: AsyncConnection,
    batches: Iterator[list[tuple[tuple[Any, ...], tuple[Any, ...]]]],
    progress: Callable[[int], None] | None,
) -> int:
    postgres = conn.dialect.name == "postgresql"
    added = 0
    for batch in batches:
        product_rows = [pair[0] for pair in batch]
        inventory_rows = [pair[1] for pair in batch]
        if postgres:
            await _copy(conn, product_rows, inventory_rows)
        else:
            await conn.execute(
                insert(products_table),
                [dict(zip(_PRODUCT_COLUMNS, r, strict=True)) for r in product_rows],
            )
            await conn.execute(
                insert(inventory),
                [dict(zip(_INVENTORY_COLUMNS, r, strict=True)) for r in inventory_rows],
            )
        added += len(batch)
        if progress is not None:
            progress(added)
    if postgres and added:
        # Ids were given explicitly: move the sequence past them for later inserts.
        await conn.execute(
            text("SELECT setval(pg_get_serial_sequence('products', 'id'), max(id)) FROM products")
        )
    return added


async def _copy(
    conn: AsyncConnection,
    product_rows: list[tuple[Any, ...]],
    inventory_rows: list[tuple[Any, ...]],
) -> None:
    """``COPY`` the rows in on the connection's own transaction (asyncpg)."""
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    await driver.copy_records_to_table(
        "products", records=product_rows, columns=list(_PRODUCT_COLUMNS)
    )
    await driver.copy_records_to_table(
        "inventory", records=inventory_rows, columns=list(_INVENTORY_COLUMNS)
    )
