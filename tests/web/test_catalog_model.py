"""The catalog model's in-process TTLs, on a clock the test controls."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from sleigh.webapp.db import schema
from sleigh.webapp.models.catalog import Catalog


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_best_sellers_are_kept_for_their_ttl(demo_engine: AsyncEngine) -> None:
    clock = Clock()
    catalog = Catalog(demo_engine, popular_ttl=60, clock=clock)
    first = await catalog.popular(3)
    top = first[0]
    async with demo_engine.begin() as conn:
        await conn.execute(
            sa.update(schema.products).where(schema.products.c.id == top.id).values(popularity=-1)
        )
    clock.now += 59
    assert (await catalog.popular(3))[0].id == top.id
    clock.now += 2
    assert top.id not in [card.id for card in await catalog.popular(3)]


async def test_category_tree_is_reloaded_after_its_ttl(demo_engine: AsyncEngine) -> None:
    clock = Clock()
    catalog = Catalog(demo_engine, tree_ttl=300, clock=clock)
    tree = await catalog.tree()
    root = tree.roots[0]
    async with demo_engine.begin() as conn:
        await conn.execute(
            sa.update(schema.categories)
            .where(schema.categories.c.id == root.id)
            .values(name="Renamed Section")
        )
    assert (await catalog.tree()).by_id[root.id].name == root.name
    clock.now += 301
    assert (await catalog.tree()).by_id[root.id].name == "Renamed Section"
    subtree = (await catalog.tree()).subtree_ids(root)
    assert root.id in subtree and len(subtree) == len(set(subtree)) > 1
