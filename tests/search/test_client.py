"""The search clients against real daemons: balancing, failover, none up, bad requests."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from sleigh.daemons.search.client import (
    AsyncSearchClient,
    BadRequest,
    SearchClient,
    SearchUnavailable,
    search_request,
)
from sleigh.daemons.search.config import SearchConfig
from tests.plugins.searchd import SearchDaemon, StartSearchd


@pytest.fixture
def pair(searchd_factory: StartSearchd) -> tuple[SearchDaemon, SearchDaemon]:
    return searchd_factory(), searchd_factory()


def test_requests_are_balanced_over_replicas(pair: tuple[SearchDaemon, SearchDaemon]) -> None:
    endpoints = [d.endpoint for d in pair]
    with SearchClient(endpoints, timeout=10) as client:
        answered = {client.search("car").endpoint for _ in range(10)}
    assert answered == set(endpoints)


def test_failover_when_one_replica_stops(pair: tuple[SearchDaemon, SearchDaemon]) -> None:
    first, second = pair
    with SearchClient([first.endpoint, second.endpoint], timeout=5) as client:
        expected = client.search("red car", limit=5)
        assert first.daemon.stop() == 0
        for _ in range(10):
            result = client.search("red car", limit=5)
            assert (result.ids, result.total) == (expected.ids, expected.total)
            assert result.endpoint == second.endpoint
        assert second.daemon.stop() == 0
        # The fixture, like a .socket unit, keeps the listening sockets open: a connection
        # is accepted by the kernel, and waits for a daemon that would take it over.
        client.timeout = 1.0
        started = time.monotonic()
        with pytest.raises(SearchUnavailable, match="no search daemon answered"):
            client.search("red car")
        assert time.monotonic() - started < 2 * 2 * client.timeout


def test_none_up_is_search_unavailable(tmp_path: Path) -> None:
    endpoints = [f"ipc://{tmp_path}/a.sock", f"ipc://{tmp_path}/b.sock"]
    with SearchClient(endpoints, timeout=30) as client:
        started = time.monotonic()
        for _ in range(3):
            with pytest.raises(SearchUnavailable, match="refused or dropped"):
                client.search("car")
        assert time.monotonic() - started < 25  # refused connections fail at once


async def test_none_up_is_search_unavailable_async(tmp_path: Path) -> None:
    client = AsyncSearchClient([f"ipc://{tmp_path}/a.sock"], timeout=30)
    try:
        with pytest.raises(SearchUnavailable, match="refused or dropped"):
            await client.search("car")
    finally:
        await client.aclose()


def test_a_bad_request_is_not_retried_elsewhere(searchd: SearchDaemon) -> None:
    with SearchClient([searchd.endpoint], timeout=5) as client:
        with pytest.raises(BadRequest) as caught:
            client.search("car", limit=100_000)
        assert caught.value.code == "limit_too_large"
        assert client.stats()["errors"] == 1


async def test_async_client_searches_and_fails_over(
    pair: tuple[SearchDaemon, SearchDaemon],
) -> None:
    import asyncio

    first, second = pair
    client = AsyncSearchClient([first.endpoint, second.endpoint], timeout=5)
    try:
        results = await asyncio.gather(*(client.search("lego", limit=3) for _ in range(20)))
        assert len({(r.ids[0] if r.ids else None, r.total) for r in results}) == 1
        assert {r.endpoint for r in results} == {first.endpoint, second.endpoint}
        assert any(s.startswith("lego") for s in await client.suggest("leg"))
        assert first.daemon.stop() == 0
        again = await asyncio.gather(*(client.search("lego", limit=3) for _ in range(5)))
        assert {r.endpoint for r in again} == {second.endpoint}
        applied = await client.update([(1, 100, True)])
        assert applied[second.endpoint] == 1
        assert str(applied[first.endpoint]).startswith("not connected")
        with pytest.raises(BadRequest):
            await client.search("car", sort="nope")
        assert second.daemon.stop() == 0
        with pytest.raises(SearchUnavailable):
            await client.search("lego")
    finally:
        await client.aclose()


async def test_async_client_misses_no_reply_in_many_waves(searchd: SearchDaemon) -> None:
    """Replies come in while sends are made: none is left unread (the socket signals
    its descriptor on an edge, which a send may consume)."""
    import asyncio

    client = AsyncSearchClient([searchd.endpoint], timeout=5)
    try:
        for size in (1, 2, 7, 64, 1, 33, 128, 3):
            for _ in range(4):
                results = await asyncio.gather(
                    *(client.search("lego", limit=1 + i % 3) for i in range(size))
                )
                assert [len(r.ids) for r in results] == [1 + i % 3 for i in range(size)]
            await asyncio.sleep(0.01)
    finally:
        await client.aclose()


async def test_async_client_gives_up_on_a_daemon_that_does_not_answer(
    searchd: SearchDaemon,
) -> None:
    import asyncio
    import signal

    client = AsyncSearchClient([searchd.endpoint], timeout=0.3)
    try:
        assert (await client.search("lego", limit=1)).ids
        searchd.daemon.send_signal(signal.SIGSTOP)
        try:
            started = time.monotonic()
            with pytest.raises(SearchUnavailable, match=r"no reply within 0\.3s"):
                await client.search("lego", limit=1)
            assert time.monotonic() - started < 3
        finally:
            searchd.daemon.send_signal(signal.SIGCONT)
        await asyncio.sleep(1.1)  # (retry_after: the endpoint is tried again after 1 s)
        assert (await client.search("lego", limit=1)).ids
    finally:
        await client.aclose()


def test_client_endpoints_from_the_config(tmp_path: Path) -> None:
    assert SearchConfig().client_endpoints(tmp_path) == [f"ipc://{tmp_path}/run/searchd.sock"]
    cfg = SearchConfig(endpoints="tcp://10.0.0.5:7300,ipc:///run/sleigh/searchd.sock")
    assert cfg.client_endpoints(tmp_path) == [
        "tcp://10.0.0.5:7300",
        "ipc:///run/sleigh/searchd.sock",
    ]
    with pytest.raises(ValueError, match="endpoints are"):
        SearchClient(["http://x"])
    assert search_request("car", price=(None, 500), facets=["brand"]) == {
        "op": "search",
        "q": "car",
        "sort": "relevance",
        "offset": 0,
        "limit": 20,
        "price": [None, 500],
        "facets": ["brand"],
    }
