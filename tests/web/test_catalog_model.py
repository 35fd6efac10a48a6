"""The catalog model reads through a real ``sleigh-cached`` and falls back to the database."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
import redis
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from sleigh.daemons.cache.client import AsyncCacheClient
from sleigh.webapp.db import schema
from sleigh.webapp.models.catalog import Catalog, ProductPage, TTLs
from sleigh.webapp.models.freshness import collecting
from sleigh.webapp.models.store import Through
from sleigh.webapp.models.values import format_price
from tests.plugins.cache import CacheDaemon


@pytest_asyncio.fixture
async def cache(cached: CacheDaemon) -> AsyncIterator[AsyncCacheClient]:
    client = AsyncCacheClient(cached.socket_path, cached.env_path)
    yield client
    await client.aclose()


async def _stocked_top(
    engine: AsyncEngine, cache: AsyncCacheClient, stock_ttl: float, stock: int
) -> tuple[Catalog, int]:
    """A catalog whose stock lives *stock_ttl* s in the cache, and the id of its most
    popular product, which now has *stock* in stock."""
    catalog = Catalog(engine, cache, TTLs(stock=stock_ttl, product=600))
    [top] = await catalog.popular(1)
    await _set_stock(engine, top.id, stock)
    return catalog, top.id


async def _set_stock(engine: AsyncEngine, product_id: int, on_hand: int) -> None:
    inv = schema.inventory.c
    async with engine.begin() as conn:
        await conn.execute(
            sa.update(schema.inventory)
            .where(inv.product_id == product_id)
            .values(on_hand=on_hand, reserved=0)
        )


async def _eventually(check: object, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await check():  # type: ignore[operator]
            return
        await asyncio.sleep(0.05)
    raise AssertionError("never happened")


async def test_parts_come_from_the_cache_until_their_ttl(
    demo_engine: AsyncEngine, cache: AsyncCacheClient
) -> None:
    catalog, top_id = await _stocked_top(demo_engine, cache, 0.3, 3)
    first = await catalog.product(top_id)
    assert first is not None
    async with demo_engine.begin() as conn:
        await conn.execute(
            sa.update(schema.products).where(schema.products.c.id == top_id).values(title="Renamed")
        )
    await _set_stock(demo_engine, top_id, 0)
    cached_title = await catalog.product(top_id)
    assert cached_title is not None and cached_title.title == first.title  # within product TTL

    async def out_of_stock() -> bool:
        item = await catalog.product(top_id)
        return item is not None and item.stock_label == "Out of stock"

    await _eventually(out_of_stock)  # the stock part expires after 0.3 s
    assert await cache.get(f"info2:{top_id}") is not None
    assert await cache.get(f"desc:{top_id}") is not None
    assert catalog.through.hits > 0 and catalog.through.failures == 0


async def test_a_second_worker_reads_what_the_first_cached(
    demo_engine: AsyncEngine, cache: AsyncCacheClient, cached: CacheDaemon
) -> None:
    first = Catalog(demo_engine, cache)
    tree = await first.tree()
    listing = await first.listing(tree.roots[0], size=5)
    second = Catalog(demo_engine, cache)
    again = await second.listing((await second.tree()).roots[0], size=5)
    assert [c.id for c in again.products] == [c.id for c in listing.products]
    assert again.total == listing.total
    assert second.through.misses == 0  # every part came from the cache


async def test_a_dead_cache_means_database_reads(demo_engine: AsyncEngine, tmp_path: Path) -> None:
    nowhere = AsyncCacheClient(tmp_path / "no.sock", tmp_path / "no-env", timeout=0.2)
    try:
        catalog = Catalog(demo_engine, nowhere)
        [top] = await catalog.popular(1)
        item = await catalog.product(top.id)
        assert item is not None and item.title == top.title
        assert catalog.through.failures > 0
    finally:
        await nowhere.aclose()


async def test_the_tree_is_rebuilt_only_when_its_rows_change(
    demo_engine: AsyncEngine, cache: AsyncCacheClient
) -> None:
    catalog = Catalog(demo_engine, cache, TTLs(tree=0.3))
    first = await catalog.tree()
    assert await catalog.tree() is first  # same rows from the cache: the same tree
    root = first.roots[0]
    async with demo_engine.begin() as conn:
        await conn.execute(
            sa.update(schema.categories)
            .where(schema.categories.c.id == root.id)
            .values(name="Renamed section")
        )

    async def renamed() -> bool:
        tree = await catalog.tree()
        return tree.by_id[root.id].name == "Renamed section"

    await _eventually(renamed)  # the rows expire after 0.3 s and the tree follows
    latest = await catalog.tree()
    assert latest is not first
    assert [c.id for c in latest.roots] == [c.id for c in first.roots]
    assert sum(len(c.children) for c in latest.by_id.values()) == len(latest.by_id) - len(
        latest.roots
    )


async def test_requests_missing_the_same_objects_share_one_database_load(
    cache: AsyncCacheClient,
) -> None:
    through = Through(cache)
    calls: list[list[int]] = []
    release = asyncio.Event()

    async def loader(missing: list[int]) -> dict[int, str]:
        calls.append(missing)
        await release.wait()
        return {i: f"v{i}" for i in missing}

    key = f"shared{time.monotonic_ns()}:"
    waiting = [asyncio.ensure_future(through.load(key, [1, 2], 60, loader)) for _ in range(5)]
    other = asyncio.ensure_future(through.load(key, [3], 60, loader))
    await asyncio.sleep(0.05)
    release.set()
    results = await asyncio.gather(*waiting, other)
    assert calls == [[1, 2], [3]]  # one load per set of missing ids, not one per request
    assert results[:5] == [{1: "v1", 2: "v2"}] * 5 and results[5] == {3: "v3"}
    assert through.shared == 4
    assert await through.load(key, [1, 2, 3], 60, loader) == {1: "v1", 2: "v2", 3: "v3"}
    assert len(calls) == 2  # all cached now


async def test_a_failed_shared_load_fails_every_request_and_the_next_one_retries(
    cache: AsyncCacheClient,
) -> None:
    through = Through(cache)
    release = asyncio.Event()
    attempts = 0

    async def loader(missing: list[int]) -> dict[int, str]:
        nonlocal attempts
        attempts += 1
        await release.wait()
        if attempts == 1:
            raise RuntimeError("database went away")
        return {i: "ok" for i in missing}

    key = f"failing{time.monotonic_ns()}:"
    waiting = [asyncio.ensure_future(through.load(key, [7], 60, loader)) for _ in range(3)]
    await asyncio.sleep(0.05)
    release.set()
    outcomes = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(isinstance(o, RuntimeError) for o in outcomes) and attempts == 1
    assert await through.load(key, [7], 60, loader) == {7: "ok"} and attempts == 2


async def test_when_the_loading_request_is_cancelled_a_waiting_one_loads_itself(
    cache: AsyncCacheClient,
) -> None:
    through = Through(cache)
    started = asyncio.Event()
    calls = 0

    async def loader(missing: list[int]) -> dict[int, str]:
        nonlocal calls
        calls += 1
        started.set()
        await asyncio.sleep(0.2 if calls == 1 else 0)
        return {i: "fresh" for i in missing}

    key = f"cancelled{time.monotonic_ns()}:"
    first = asyncio.ensure_future(through.load(key, [9], 60, loader))
    await started.wait()
    second = asyncio.ensure_future(through.load(key, [9], 60, loader))
    await asyncio.sleep(0.02)
    first.cancel()
    assert await second == {9: "fresh"} and calls == 2
    assert first.cancelled()


async def test_objects_loaded_together_do_not_expire_together(
    cache: AsyncCacheClient, cached: CacheDaemon
) -> None:
    through = Through(cache, rng=random.Random(7))

    async def loader(missing: list[int]) -> dict[int, int]:
        return {i: i for i in missing}

    key = f"jitter{time.monotonic_ns()}:"
    for ident in range(20):
        await through.load(key, [ident], 100.0, loader)
    r = redis.Redis(unix_socket_path=str(cached.socket_path), socket_timeout=10)
    try:
        left = [r.pttl(f"{key}{ident}") for ident in range(20)]
    finally:
        r.close()
    assert all(89_000 <= ms <= 100_000 for ms in left), left  # never longer than the TTL
    assert max(left) - min(left) > 2_000  # spread over the last tenth of it


def test_a_card_is_made_again_only_when_its_parts_change(tmp_path: Path) -> None:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path}/unused.db")
    catalog = Catalog(engine)  # cards are made from parts in hand: no database read
    info = [7, "SKU-7", "train", "Train", "img7", "Brio", "brio", 3, 2, 5]
    first = catalog._card(info, 1999, 4)
    assert catalog._card(info, 1999, 4) is first
    cheaper = catalog._card(info, 1499, 4)
    assert cheaper is not first and cheaper.price_cents == 1499
    fewer = catalog._card(info, 1499, 1)
    assert fewer.available == 1
    rewritten = list(info)  # an equal part read again after a write: a new object
    rewritten[3] = "Wooden train"
    assert catalog._card(rewritten, 1499, 1).title == "Wooden train"
    asyncio.run(engine.dispose())


@pytest.mark.parametrize(
    ("cents", "shown"),
    [(0, "$0.00"), (5, "$0.05"), (1999, "$19.99"), (123456, "$1,234.56"), (10**8, "$1,000,000.00")],
)
def test_prices_are_dollars_with_thousands_and_cents(cents: int, shown: str) -> None:
    assert format_price(cents) == shown
    assert format_price(cents) == shown  # the kept answer too


async def _warm_page(catalog: Catalog, product_id: int) -> ProductPage:
    """The page's data once its objects are all in the cache (a first read writes them
    back; the second reads them all from the cache, and is kept)."""
    await catalog.product_page(product_id)
    page = await catalog.product_page(product_id)
    assert page is not None and page.related
    return page


async def test_a_product_page_is_handed_out_again_until_any_object_of_it_is_written(
    demo_engine: AsyncEngine, cache: AsyncCacheClient, cached: CacheDaemon
) -> None:
    catalog = Catalog(demo_engine, cache)
    [top] = await catalog.popular(1)
    page = await _warm_page(catalog, top.id)
    assert await catalog.product_page(top.id) is page  # kept: nothing was written
    await cache.set(f"price:{top.id}", 123_45, 60)  # as a price change writes it
    repriced = await catalog.product_page(top.id)
    assert repriced is not page and repriced is not None
    assert repriced.product.price == "$123.45"
    assert await catalog.product_page(top.id) is repriced
    related = repriced.related[-1]
    await cache.set(f"price:{related.id}", 9_99, 60)  # a related product's card changes
    again = await catalog.product_page(top.id)
    assert again is not None and again is not repriced
    assert [c.price for c in again.related if c.id == related.id] == ["$9.99"]
    assert await catalog.product_page(top.id) is again
    redis.Redis(unix_socket_path=str(cached.socket_path)).flushdb()  # nothing is vouched for
    assert await catalog.product_page(top.id) is not again


async def test_a_kept_product_page_lives_no_longer_than_its_shortest_ttl(
    demo_engine: AsyncEngine, cache: AsyncCacheClient
) -> None:
    catalog, top_id = await _stocked_top(demo_engine, cache, 0.4, 5)
    page = await _warm_page(catalog, top_id)
    await _set_stock(demo_engine, top_id, 0)
    assert await catalog.product_page(top_id) is page
    await asyncio.sleep(0.5)  # the stock part expired in the cache
    fresh = await catalog.product_page(top_id)
    assert fresh is not None and fresh.product.stock_label == "Out of stock"


async def test_a_kept_product_page_counts_as_the_reads_it_saves(
    demo_engine: AsyncEngine, cache: AsyncCacheClient
) -> None:
    """Hits by kind, and the TTL the page's caching headers are made of, as if read."""
    catalog = Catalog(demo_engine, cache, TTLs(stock=7, price=30))
    [top] = await catalog.popular(1)
    await _warm_page(catalog, top.id)
    hits = {kind: tally[0] for kind, tally in catalog.through.kinds.items()}
    with collecting() as read:
        read_page = await catalog.product_page(top.id)  # (kept since the second read)
    read_hits = {k: t[0] - hits[k] for k, t in catalog.through.kinds.items()}
    with collecting() as kept:
        assert await catalog.product_page(top.id) is read_page
    kept_hits = {k: t[0] - hits[k] - read_hits[k] for k, t in catalog.through.kinds.items()}
    assert kept.ttl == read.ttl == 7
    assert kept_hits == read_hits and read_hits["inv"] >= 2


async def test_without_direct_reads_no_product_page_is_kept(
    demo_engine: AsyncEngine, cached: CacheDaemon
) -> None:
    """Read over the socket, nothing vouches for an object: every page is made again."""
    async with AsyncCacheClient(cached.socket_path, None, direct=False) as client:
        catalog = Catalog(demo_engine, client)
        [top] = await catalog.popular(1)
        await catalog.product_page(top.id)
        first = await catalog.product_page(top.id)
        assert first is not None and await catalog.product_page(top.id) is not first
