"""The asyncio client's pipelined connection, against a real ``sleigh-cached`` (and, for
replies no daemon would send, a peer that sends them)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import hiredis
import pytest

from sleigh.daemons.cache.client import AsyncCacheClient, CacheCommandError, CacheUnavailable
from sleigh.daemons.cache.pipe import RespPipe, encode_command, parse_info
from tests.plugins.cache import CacheDaemon, StartCached


@pytest.fixture
async def pipe(cached: CacheDaemon) -> AsyncIterator[RespPipe]:
    p = RespPipe(cached.socket_path, timeout=2.0)
    yield p
    await p.aclose()


def test_commands_are_arrays_of_bulk_strings() -> None:
    assert encode_command((b"SET", b"k", b"v\r\n", b"PX", 1500)) == (
        b"*5\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nv\r\n\r\n$2\r\nPX\r\n$4\r\n1500\r\n"
    )


async def test_tasks_sharing_the_connection_each_get_their_own_replies(pipe: RespPipe) -> None:
    async def one(i: int) -> list[object]:
        key = b"task:%d" % i
        payload = encode_command((b"SET", key, b"value %d" % i)) + encode_command((b"GET", key))
        return await pipe.call(payload, 2)

    replies = await asyncio.gather(*(one(i) for i in range(300)))
    assert replies == [[b"OK", b"value %d" % i] for i in range(300)]
    conn = pipe._conn
    assert conn is not None and not conn.calls  # one connection, nothing left waiting


async def test_an_error_reply_is_a_value_and_the_connection_goes_on(pipe: RespPipe) -> None:
    bad, good = encode_command((b"NOSUCHCOMMAND",)), encode_command((b"PING",))
    error, pong = await pipe.call(bad + good, 2)
    assert isinstance(error, hiredis.ReplyError) and pong == b"PONG"
    assert await pipe.call(good, 1) == [b"PONG"]


async def test_a_daemon_that_stops_answering_fails_the_calls_then_is_reconnected(
    cached: CacheDaemon,
) -> None:
    pipe = RespPipe(cached.socket_path, timeout=0.3)
    ping = encode_command((b"PING",))
    try:
        assert await pipe.call(ping, 1) == [b"PONG"]
        cached.daemon.send_signal(signal.SIGSTOP)
        try:
            calls = [pipe.call(ping, 1) for _ in range(3)]
            results = await asyncio.gather(*calls, return_exceptions=True)
            assert all(isinstance(r, TimeoutError) for r in results), results
        finally:
            cached.daemon.send_signal(signal.SIGCONT)
        # The late replies went to the dropped connection; a new one answers in step.
        assert await pipe.call(encode_command((b"ECHO", b"fresh")), 1) == [b"fresh"]
    finally:
        await pipe.aclose()


async def test_every_new_connection_says_hello_first(cached: CacheDaemon) -> None:
    pipe = RespPipe(cached.socket_path, timeout=2.0, hello=[(b"CLIENT", b"SETNAME", b"hi")])
    name = encode_command((b"CLIENT", b"GETNAME"))
    try:
        assert await pipe.call(name, 1) == [b"hi"]
        await pipe.aclose()
        assert await pipe.call(name, 1) == [b"hi"]  # connected again, and said it again
    finally:
        await pipe.aclose()
    refused = RespPipe(cached.socket_path, timeout=2.0, hello=[(b"NOSUCHCOMMAND",)])
    try:
        with pytest.raises(ConnectionError, match="refused the connection"):
            await refused.call(name, 1)
    finally:
        await refused.aclose()


async def test_a_garbled_or_unasked_reply_drops_the_connection(tmp_path: Path) -> None:
    """A peer that is no RESP server: a reply no call asked for drops the connection (no
    later call is matched to it), and bytes that are no reply fail the call."""
    sent = [b"+OK\r\n+UNASKED\r\n", b"?garbage\r\n"]
    served: list[asyncio.Task[None]] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        served.append(asyncio.current_task())  # type: ignore[arg-type]
        try:
            await reader.read(1024)
            writer.write(sent.pop(0))
            await writer.drain()
            await reader.read(1024)  # until the client hangs up
        finally:
            writer.close()

    path = tmp_path / "peer.sock"
    server = await asyncio.start_unix_server(serve, path=str(path))
    pipe = RespPipe(path, timeout=2.0)
    try:
        assert await pipe.call(b"PING\r\n", 1) == [b"OK"]
        await asyncio.sleep(0.2)  # the reply nobody asked for arrives: the connection is dropped
        first = pipe._conn
        assert first is not None and "no command asked for" in str(first.broken)
        with pytest.raises(ConnectionError, match="cannot be parsed"):
            await pipe.call(b"PING\r\n", 1)
    finally:
        await pipe.aclose()
        server.close()
        await asyncio.wait_for(asyncio.gather(*served), 5)
        await server.wait_closed()


async def test_the_client_raises_a_refused_write_and_keeps_the_rest_of_the_batch(
    cached_factory: StartCached,
) -> None:
    small = cached_factory(value_max="100")
    async with AsyncCacheClient(small.socket_path, small.env_path, direct=False) as c:
        with pytest.raises(CacheCommandError):
            await c.set_many({"fits": "x", "too-big": "y" * 500, "after": "z"}, ttl=60)
        assert await c.get_many(["fits", "too-big", "after"]) == ["x", None, "z"]
        assert await c.ping()
        info = await c.info()
        assert info["maxmemory_policy"] == "volatile-ttl" and info["connected_clients"] == 1


def test_info_lines_become_a_dict_of_numbers_and_words() -> None:
    text = (
        "# Server\r\nredis_version:7.0.0-sleigh\r\nuptime_in_seconds:12\r\n"
        "\r\n# Memory\r\nratio:0.25\r\n"
    )
    assert parse_info(text) == {
        "redis_version": "7.0.0-sleigh",
        "uptime_in_seconds": 12,
        "ratio": 0.25,
    }


async def test_a_stopped_daemon_reads_as_unavailable(cached: CacheDaemon) -> None:
    async with AsyncCacheClient(cached.socket_path, None, direct=False, timeout=0.5) as c:
        await c.set("k", 1, ttl=60)
        cached.daemon.stop()
        with pytest.raises(CacheUnavailable):
            await c.set("k", 2, ttl=60)
        assert not await c.ping()
