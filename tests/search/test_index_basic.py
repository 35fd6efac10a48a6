"""The index's contract on the demo catalog: build, open, search, suggest, update."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from sleigh.core_ext.search import Query, build_index, load_products, open_index


async def test_demo_catalog_round_trip(demo_engine: AsyncEngine, tmp_path: Path) -> None:
    products = await load_products(demo_engine)
    assert products and all(p.category_path for p in products)
    info = build_index(products, tmp_path / "index", version=7)
    assert (info.version, info.products) == (7, len(products))
    index = open_index(tmp_path / "index")
    assert index.info.version == 7 and index.info.size == info.size
    everything = index.search(Query(limit=1000, sort="popularity"))
    assert everything.total == len(products)
    ranked = sorted(products, key=lambda p: (-p.popularity, p.id))
    assert everything.ids == [p.id for p in ranked]
    word = products[0].title.split()[0]
    found = index.search(Query(text=word, facets=True))
    assert found.total >= 1 and found.facets is not None
    assert sum(found.facets["brand"].values()) == found.total
    cheapest = index.search(Query(sort="price_asc", limit=1)).ids[0]
    assert index.update(ranked[-1].id, price_cents=0)
    assert index.search(Query(sort="price_asc", limit=1)).ids[0] == ranked[-1].id != cheapest
    assert not index.update(10**9, price_cents=1)
