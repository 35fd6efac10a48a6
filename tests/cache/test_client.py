"""The cache clients against a real ``sleigh-cached``: direct reads and reads over the socket."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from sleigh.daemons.cache.client import (
    AsyncCacheClient,
    CacheClient,
    CacheCommandError,
    CacheUnavailable,
    from_config,
)
from sleigh.daemons.cache.config import CacheConfig
from sleigh.daemons.runtime.config import load_section
from tests.plugins.cache import CacheDaemon

VALUE = {
    "sku": "T-1000",
    "price": Decimal("19.99"),
    "tags": {"toy", "robot"},
    "id": uuid.UUID(int=42),
    "at": datetime(2000, 12, 24, 18, 30, tzinfo=UTC),
    "stock": [1, 2, 3],
}
DEADLINE = 5.0


@pytest.fixture(params=["direct", "socket"])
def client(request: pytest.FixtureRequest, cached: CacheDaemon) -> Iterator[CacheClient]:
    direct = request.param == "direct"
    c = CacheClient(cached.socket_path, cached.env_path, direct=direct)
    yield c
    c.close()


@pytest.fixture(params=["direct", "socket"])
async def aclient(
    request: pytest.FixtureRequest, cached: CacheDaemon
) -> AsyncIterator[AsyncCacheClient]:
    direct = request.param == "direct"
    c = AsyncCacheClient(cached.socket_path, cached.env_path, direct=direct)
    yield c
    await c.aclose()


def _eventually(check: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.01)
    return False


def test_set_then_get_round_trips(client: CacheClient) -> None:
    client.set("product:1", VALUE, ttl=60)
    assert client.get("product:1") == VALUE
    assert client.ping()


def test_str_and_bytes_keys_are_the_same_key(client: CacheClient) -> None:
    client.set("ключ", "value", ttl=60)
    assert client.get("ключ".encode()) == "value"
    client.set(b"raw", [1], ttl=60)
    assert client.get("raw") == [1]


def test_get_many_mixes_hits_and_misses(client: CacheClient) -> None:
    client.set_many({"a": 1, b"b": {"x": 2}}, ttl=60)
    assert client.get_many(["a", "missing", "b"]) == [1, None, {"x": 2}]
    assert client.get_many([]) == []


def test_short_ttl_expires(client: CacheClient) -> None:
    client.set("brief", "soon gone", ttl=0.05)
    assert _eventually(lambda: client.get("brief") is None)


def test_delete_counts_existing_keys(client: CacheClient) -> None:
    client.set("a", 1, ttl=60)
    client.set("b", 2, ttl=60)
    assert client.delete("a", "b", "never") == 2
    assert client.get("a") is None
    assert client.delete() == 0


def test_touch_extends_the_ttl(client: CacheClient) -> None:
    client.set("t", "kept", ttl=0.2)
    assert client.touch("t", ttl=60)
    time.sleep(0.3)
    assert client.get("t") == "kept"
    assert not client.touch("absent", ttl=60)


def test_info_is_a_dict(client: CacheClient) -> None:
    info = client.info()
    assert isinstance(info, dict)
    assert info


def test_oversized_value_is_a_command_error(cached_factory: Callable[..., CacheDaemon]) -> None:
    daemon = cached_factory(value_max="1KiB")
    with CacheClient(daemon.socket_path, daemon.env_path) as c, pytest.raises(CacheCommandError):
        c.set("big", b"x" * 4096, ttl=60)


def test_direct_reads_see_writes_of_other_clients(cached: CacheDaemon) -> None:
    with (
        CacheClient(cached.socket_path, direct=False) as writer,
        CacheClient(cached.socket_path, cached.env_path) as reader,
        CacheClient(cached.socket_path, cached.env_path) as second,
    ):
        writer.set("shared", "seen", ttl=60)
        assert reader.get("shared") == "seen"
        assert second.get("shared") == "seen"


def test_from_config_uses_the_home(cached: CacheDaemon) -> None:
    cfg = load_section(CacheConfig, {"socket": str(cached.socket_path)}, {})
    client = from_config(cfg, cached.home)
    try:
        client.set("k", 1, ttl=60)
        assert client.get("k") == 1
    finally:
        client.close()


async def test_async_client_round_trips(aclient: AsyncCacheClient) -> None:
    await aclient.set("p", VALUE, ttl=60)
    assert await aclient.get("p") == VALUE
    await aclient.set_many({"a": 1, "b": 2}, ttl=60)
    assert await aclient.get_many(["a", "zz", "b"]) == [1, None, 2]
    assert await aclient.delete("a", "nope") == 1
    assert await aclient.touch("b", ttl=60)
    assert await aclient.ping()
    assert await aclient.info()


async def test_async_short_ttl_expires(aclient: AsyncCacheClient) -> None:
    await aclient.set("brief", 1, ttl=0.05)
    deadline = time.monotonic() + DEADLINE
    while await aclient.get("brief") is not None:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)


# -- no daemon needed: refusals happen before any I/O ------------------------


@pytest.fixture
def nowhere(tmp_path: Path) -> Path:
    return tmp_path / "no-daemon.sock"


@pytest.mark.parametrize("key", ["", b"", "k" * 512, "é" * 256])
def test_bad_keys_are_refused_before_io(nowhere: Path, key: str | bytes) -> None:
    with CacheClient(nowhere, direct=False) as c:
        calls: list[Callable[[], object]] = [
            lambda: c.get(key),
            lambda: c.set(key, 1, ttl=1),
            lambda: c.get_many(["ok", key]),
            lambda: c.delete("ok", key),
            lambda: c.touch(key, 1),
        ]
        for call in calls:
            with pytest.raises(ValueError, match="1 to 511 bytes"):
                call()


@pytest.mark.parametrize("ttl", [0, -1, float("nan"), float("inf"), 1e300])
def test_bad_ttls_are_refused_before_io(nowhere: Path, ttl: float) -> None:
    with CacheClient(nowhere, direct=False) as c:
        with pytest.raises(ValueError, match="ttl"):
            c.set("k", 1, ttl=ttl)
        with pytest.raises(ValueError, match="ttl"):
            c.set_many({"k": 1}, ttl=ttl)
        with pytest.raises(ValueError, match="ttl"):
            c.touch("k", ttl)


def test_longest_key_is_accepted(nowhere: Path) -> None:
    with CacheClient(nowhere, direct=False) as c, pytest.raises(CacheUnavailable):
        c.get("k" * 511)


def test_unreachable_daemon_raises_cache_unavailable(nowhere: Path) -> None:
    with CacheClient(nowhere, nowhere.parent / "no-env", timeout=0.2) as c:
        with pytest.raises(CacheUnavailable):
            c.set("k", 1, ttl=1)
        with pytest.raises(CacheUnavailable):
            c.delete("k")
        assert not c.ping()
        with pytest.raises(CacheUnavailable):  # no file here, no daemon there
            c.get("k")


async def test_async_unreachable_daemon_raises_cache_unavailable(nowhere: Path) -> None:
    c = AsyncCacheClient(nowhere, timeout=0.2, direct=False)
    try:
        with pytest.raises(CacheUnavailable):
            await c.set("k", 1, ttl=1)
        with pytest.raises(CacheUnavailable):
            await c.get("k")
        assert not await c.ping()
        with pytest.raises(ValueError):
            await c.get("")
    finally:
        await c.aclose()


def test_reads_go_to_the_daemon_when_the_file_is_not_here(
    cached: CacheDaemon, tmp_path: Path
) -> None:
    """A client on another host (no LMDB file at env_path) still reads, over the socket."""
    with CacheClient(cached.socket_path, cached.env_path) as writer:
        writer.set("remote", {"n": 1}, ttl=60)
    elsewhere = tmp_path / "not-this-host"
    with CacheClient(cached.socket_path, elsewhere) as client:
        assert client.get("remote") == {"n": 1}
        assert client.get_many(["remote", "nope"]) == [{"n": 1}, None]
        assert client.get("nope") is None
