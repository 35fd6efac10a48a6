"""The demo catalog: deterministic, idempotent, incremental and shop-shaped."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Table, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from sleigh.webapp.db.engine import create_engine
from sleigh.webapp.db.migrate import upgrade
from sleigh.webapp.db.schema import (
    brands,
    catalog_meta,
    categories,
    inventory,
    products,
)
from sleigh.webapp.demo.catalog import DemoCatalogError, load_demo
from sleigh.webapp.demo.products import Generator
from tests.plugins.database import DEMO_PRODUCTS, DEMO_SEED, make_db_config

TABLES = (categories, brands, products, inventory, catalog_meta)
ROOTS = {"toys", "books", "video-games"}


async def dump(engine: AsyncEngine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the catalog tables, ordered by primary key."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    async with engine.connect() as conn:
        for table in TABLES:
            query = select(table).order_by(*table.primary_key.columns)
            out[table.name] = [tuple(row) for row in await conn.execute(query)]
    return out


async def count(engine: AsyncEngine, table: Table) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(table))).scalar_one()


async def sqlite_engine(home: Path) -> AsyncEngine:
    engine = create_engine(make_db_config(""), home)
    await upgrade(engine)
    return engine


async def test_same_seed_gives_identical_rows(demo_engine: AsyncEngine, tmp_path: Path) -> None:
    other = await sqlite_engine(tmp_path / "other")
    try:
        report = await load_demo(other, products=DEMO_PRODUCTS, seed=DEMO_SEED)
        assert report.products_added == DEMO_PRODUCTS
        assert await dump(other) == await dump(demo_engine)
    finally:
        await other.dispose()


async def test_second_load_adds_and_changes_nothing(demo_engine: AsyncEngine) -> None:
    before = await dump(demo_engine)
    report = await load_demo(demo_engine, products=DEMO_PRODUCTS, seed=DEMO_SEED)
    assert report.products_added == 0
    assert report.products_total == DEMO_PRODUCTS
    assert await dump(demo_engine) == before
    smaller = await load_demo(demo_engine, products=10, seed=DEMO_SEED)
    assert smaller.products_added == 0
    assert await dump(demo_engine) == before


async def test_incremental_growth(engine: AsyncEngine, tmp_path: Path) -> None:
    seen: list[int] = []
    first = await load_demo(engine, products=100, seed=7, progress=seen.append)
    assert (first.products_added, first.products_total) == (100, 100)
    assert seen == [100]
    second = await load_demo(engine, products=250, seed=7)
    assert (second.products_added, second.products_total) == (150, 250)
    assert await count(engine, inventory) == 250
    direct = await sqlite_engine(tmp_path / "direct")
    try:
        await load_demo(direct, products=250, seed=7)
        grown, loaded = await dump(engine), await dump(direct)
        assert grown["products"] == loaded["products"]
        assert grown["inventory"] == loaded["inventory"]
    finally:
        await direct.dispose()


async def test_another_seed_is_refused(demo_engine: AsyncEngine) -> None:
    with pytest.raises(DemoCatalogError, match=f"seed {DEMO_SEED}"):
        await load_demo(demo_engine, products=DEMO_PRODUCTS + 10, seed=DEMO_SEED + 1)
    assert await count(demo_engine, products) == DEMO_PRODUCTS


async def test_negative_size_is_refused(engine: AsyncEngine) -> None:
    with pytest.raises(DemoCatalogError, match="at least 0"):
        await load_demo(engine, products=-1)


async def test_catalog_meta_records_seed_and_size(demo_engine: AsyncEngine) -> None:
    async with demo_engine.connect() as conn:
        meta = dict(tuple(row) for row in await conn.execute(select(catalog_meta)))
    assert meta["demo.seed"] == str(DEMO_SEED)
    assert meta["demo.products"] == str(DEMO_PRODUCTS)


async def test_new_products_get_fresh_ids_after_a_load(demo_engine: AsyncEngine) -> None:
    when = Generator(DEMO_SEED).product(0).created_at
    async with demo_engine.begin() as conn:
        brand_id = (await conn.execute(select(brands.c.id).limit(1))).scalar_one()
        category_id = (await conn.execute(select(categories.c.id).limit(1))).scalar_one()
        values = {
            "sku": "NEW-1", "slug": "new", "title": "New", "description": "New.",
            "brand_id": brand_id, "category_id": category_id, "price_cents": 100, "age_min": 0,
            "age_max": 99, "popularity": 1, "image": "toy-01", "created_at": when,
            "updated_at": when,
        }  # fmt: skip
        result = await conn.execute(insert(products).values(values).returning(products.c.id))
        assert result.scalar_one() == DEMO_PRODUCTS + 1


async def test_catalog_is_shop_shaped(demo_engine: AsyncEngine) -> None:
    async with demo_engine.connect() as conn:
        tree = {
            row.id: row
            for row in await conn.execute(
                select(categories.c.id, categories.c.parent_id, categories.c.path)
            )
        }
        rows = (await conn.execute(select(products, inventory).join(inventory))).all()
    assert {row.path for row in tree.values() if row.parent_id is None} == ROOTS
    for row in tree.values():
        if row.parent_id is not None:
            assert row.path.startswith(tree[row.parent_id].path + "/")
    assert len(rows) == DEMO_PRODUCTS
    for p in rows:
        assert tree[p.category_id].path.split("/")[0] in ROOTS
        assert p.price_cents > 0 and p.price_cents % 100 in (49, 99)
        assert 0 <= p.age_min <= p.age_max
        assert 0 <= p.reserved <= p.on_hand or p.on_hand == 0 == p.reserved
        assert re.fullmatch(r"(toy|book|game|gear)-\d\d", p.image)
        assert 2 <= p.description.count(". ") + 1 <= 4
        assert p.title and p.slug and p.updated_at >= p.created_at
    assert sum(p.on_hand == 0 for p in rows) >= 3, "some products are out of stock"
    assert sum(0 < p.on_hand <= 5 for p in rows) >= 3, "some products are low on stock"
    assert len(Counter(tree[p.category_id].path.split("/")[0] for p in rows)) == 3
    popularity = sorted((p.popularity for p in rows), reverse=True)
    top_tenth = popularity[: DEMO_PRODUCTS // 10]
    assert sum(top_tenth) > 0.3 * sum(popularity), "popularity is skewed"


async def test_brands_are_zipf_sized(demo_engine: AsyncEngine) -> None:
    assert await count(demo_engine, brands) == 200
    async with demo_engine.connect() as conn:
        sizes = sorted(
            (
                await conn.execute(
                    select(func.count()).select_from(products).group_by(products.c.brand_id)
                )
            ).scalars(),
            reverse=True,
        )
    assert sizes[0] >= 5 * sizes[len(sizes) // 2]


def test_product_is_a_pure_function_of_seed_and_index() -> None:
    a, b = Generator(11), Generator(11)
    assert [a.product(i) for i in (5, 0, 3)] == [b.product(i) for i in (5, 0, 3)]
    assert a.product(5) != Generator(12).product(5)
    assert a.product(5).id == 6


def test_top_one_percent_holds_a_large_share() -> None:
    gen = Generator(3)
    popularity = sorted((gen.product(i).popularity for i in range(20_000)), reverse=True)
    assert sum(popularity[:200]) > 0.2 * sum(popularity)
