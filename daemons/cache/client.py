"""The client the web tier, scripts and tests use to talk to ``sleigh-cached``.

Reads go straight to the LMDB file through this process's shared
:class:`~sleigh.daemons.cache.direct.DirectReader` when an environment path
is given and ``direct`` is true; otherwise they go over the socket
(``GET``/``MGET``). Writes always go over the Unix socket (RESP2; redis-py
for the blocking client, :mod:`.pipe` for the asyncio one): the daemon is
the only writer.

Keys are ``str`` (UTF-8 encoded) or ``bytes``, 1 to 511 bytes; TTLs are
seconds, finite and positive, sent as whole milliseconds (at least 1).
Both are checked before any I/O and raise :class:`ValueError`.

Reader ownership: LMDB allows one open handle per environment per process,
so clients in one process share one reader per path, reference-counted
(:func:`~sleigh.daemons.cache.direct.shared_reader`); :meth:`CacheClient.close`
gives it back. A missing environment reads as a miss, as does an entry the
direct reader cannot see yet.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, overload

import hiredis
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .codec import decode as default_decode
from .codec import encode as default_encode
from .config import LMDB_MAX_KEY, CacheConfig
from .direct import DirectReader, release_reader, shared_reader
from .errors import CacheError
from .pipe import RespPipe, encode_command, parse_info
from .stamps import Receipt

__all__ = [
    "AsyncCacheClient",
    "CacheClient",
    "CacheClientError",
    "CacheCommandError",
    "CacheUnavailable",
    "from_config",
]

Key = str | bytes
Codec = tuple[Callable[[object], bytes], Callable[[Any], object]]
_MAX_PX = 2**63 - 1


class CacheClientError(CacheError):
    """Root of the errors a cache client raises."""


class CacheUnavailable(CacheClientError):
    """The daemon could not be reached (not running, wrong socket path, timed out)."""


class CacheCommandError(CacheClientError):
    """The daemon refused a command; ``str(exc)`` is its error reply."""


def _key(key: Key) -> bytes:
    if type(key) is bytes and 0 < len(key) <= LMDB_MAX_KEY:
        return key  # the hot path: no copy, one check
    raw = key.encode("utf-8") if isinstance(key, str) else bytes(key)
    if not 0 < len(raw) <= LMDB_MAX_KEY:
        raise ValueError(f"cache keys are 1 to {LMDB_MAX_KEY} bytes, got {len(raw)}")
    return raw


def _px(ttl: float) -> int:
    if not (isinstance(ttl, int | float) and math.isfinite(ttl) and ttl > 0):
        raise ValueError(f"ttl must be a finite number of seconds > 0, got {ttl!r}")
    ms = max(1, round(ttl * 1000))
    if ms > _MAX_PX:
        raise ValueError(f"ttl is too long: {ttl!r} s")
    return ms


def _translate(exc: redis.RedisError) -> CacheClientError:
    if isinstance(exc, redis.ResponseError):
        return CacheCommandError(str(exc))
    return CacheUnavailable(f"sleigh-cached is unreachable: {exc}")


def _redis_options(socket_path: Path, timeout: float) -> dict[str, Any]:
    return {
        "unix_socket_path": str(socket_path),
        "protocol": 2,
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(NoBackoff(), 0),
    }


class _Base:
    """What both clients share: key/TTL checks, the codec and the direct reader."""

    def __init__(self, env_path: Path | None, *, direct: bool, codec: Codec) -> None:
        self._encode, self._decode = codec
        self._reader: DirectReader | None = None
        if direct and env_path is not None:
            self._reader = shared_reader(env_path)

    def _release(self) -> None:
        if self._reader is not None:
            release_reader(self._reader)
            self._reader = None

    def _decoded(self, raw: object) -> object | None:
        return None if raw is None else self._decode(raw)

    def _set_args(self, obj: object, ttl: float) -> tuple[bytes, int]:
        return self._encode(obj), _px(ttl)


class CacheClient(_Base):
    """Blocking client.

    :param socket_path: the daemon's Unix socket (``CacheConfig.socket_path(home)``).
    :param env_path: the LMDB environment (``CacheConfig.env_path(home)``), for direct reads.
    :param timeout: seconds to connect and to wait for each reply.
    :param direct: read the LMDB file directly (needs *env_path*).
    :param codec: ``(encode, decode)``; msgpack with extension types by default.
    """

    def __init__(
        self,
        socket_path: Path,
        env_path: Path | None = None,
        *,
        timeout: float = 1.0,
        direct: bool = True,
        codec: Codec = (default_encode, default_decode),
    ) -> None:
        super().__init__(env_path, direct=direct, codec=codec)
        self.socket_path = Path(socket_path)
        self._redis = redis.Redis(**_redis_options(self.socket_path, timeout))

    def get(self, key: Key) -> object | None:
        """The value stored under *key*, or ``None`` on a miss."""
        raw = _key(key)
        reader = self._reader
        if reader is not None:
            value = reader.get_decoded(raw, self._decode)
            if value is not None or reader.is_open:
                return value  # a hit, or a true miss; else the file is not here: ask the daemon
        try:
            return self._decoded(self._redis.get(raw))
        except redis.RedisError as exc:
            raise _translate(exc) from exc

    def get_many(self, keys: Sequence[Key]) -> list[object | None]:
        """Values for *keys*, in order, ``None`` for each miss (one read transaction)."""
        raws = [_key(k) for k in keys]
        if not raws:
            return []
        reader = self._reader
        if reader is not None:
            values = reader.get_many_decoded(raws, self._decode)
            if reader.is_open:
                return values
        try:
            found = self._redis.mget(raws)
        except redis.RedisError as exc:
            raise _translate(exc) from exc
        return [self._decoded(raw) for raw in found]

    def set(self, key: Key, obj: object, ttl: float, *, local: bool = False) -> None:
        """Store *obj* under *key* for *ttl* seconds.

        :param local: keep this write on this host: it is not published to
            ``sleigh-mcastd`` (``SET ... LOCAL``), so no other host sees it.
        :raises ValueError: for a bad key or TTL, before any I/O.
        :raises CacheUnavailable: if the daemon cannot be reached.
        :raises CacheCommandError: if the daemon refuses the write (too large, full).
        """
        raw = _key(key)
        payload, px = self._set_args(obj, ttl)
        if local:
            self._call(lambda: self._redis.execute_command("SET", raw, payload, "PX", px, "LOCAL"))
        else:
            self._call(lambda: self._redis.set(raw, payload, px=px))

    def set_many(self, items: Mapping[Key, object], ttl: float) -> None:
        """Store every item for *ttl* seconds, pipelined (no transaction)."""
        px = _px(ttl)
        prepared = [(_key(k), self._encode(v)) for k, v in items.items()]
        if not prepared:
            return
        pipe = self._redis.pipeline(transaction=False)
        for raw, payload in prepared:
            pipe.set(raw, payload, px=px)
        self._call(pipe.execute)

    def delete(self, *keys: Key) -> int:
        """Delete *keys*; how many existed."""
        raws = [_key(k) for k in keys]
        if not raws:
            return 0
        return int(self._call(lambda: self._redis.delete(*raws)))

    def touch(self, key: Key, ttl: float) -> bool:
        """Give *key* a new TTL; whether it existed."""
        raw, px = _key(key), _px(ttl)
        return bool(self._call(lambda: self._redis.pexpire(raw, px)))

    def get_raw(self, key: Key) -> tuple[bytes | None, int]:
        """The stored bytes under *key* as the daemon serves them, and the
        milliseconds left (-1: no expiry, -2: absent); for operators."""
        raw = _key(key)
        pipe = self._redis.pipeline(transaction=False)
        pipe.get(raw)
        pipe.pttl(raw)
        value, left = self._call(pipe.execute)
        return value, int(left)

    def flush(self) -> None:
        """Empty the whole cache."""
        self._call(self._redis.flushdb)

    def ping(self) -> bool:
        """Whether the daemon answers."""
        try:
            return bool(self._redis.ping())
        except redis.RedisError:
            return False

    def info(self) -> dict[str, object]:
        """The daemon's ``INFO``, parsed."""
        return dict(self._call(self._redis.info))

    def close(self) -> None:
        """Close the connection and give back the direct reader."""
        self._release()
        self._redis.close()

    def __enter__(self) -> CacheClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except redis.RedisError as exc:
            raise _translate(exc) from exc


class AsyncCacheClient(_Base):
    """The same as :class:`CacheClient`, with coroutine methods, for aiohttp.

    Direct reads stay synchronous underneath (a direct LMDB read takes
    microseconds); writes and socket reads go over one pipelined connection
    (:class:`~.pipe.RespPipe`) that every task shares.
    """

    def __init__(
        self,
        socket_path: Path,
        env_path: Path | None = None,
        *,
        timeout: float = 1.0,
        direct: bool = True,
        codec: Codec = (default_encode, default_decode),
    ) -> None:
        super().__init__(env_path, direct=direct, codec=codec)
        self.socket_path = Path(socket_path)
        self._pipe = RespPipe(self.socket_path, timeout=timeout)

    async def get(self, key: Key) -> object | None:
        """See :meth:`CacheClient.get`."""
        raw = _key(key)
        reader = self._reader
        if reader is not None:
            value = reader.get_decoded(raw, self._decode)
            if value is not None or reader.is_open:
                return value
        return self._decoded(await self._one((b"GET", raw)))

    async def get_many(
        self, keys: Sequence[Key], *, shared: bool = False, receipt: Receipt | None = None
    ) -> list[object | None]:
        """See :meth:`CacheClient.get_many`.

        :param shared: the caller changes none of the objects, so one decoded earlier
            may be handed out again while its key is unwritten
            (:meth:`~.direct.DirectReader.get_many_shared`).
        :param receipt: notes what the objects were read under (*shared* reads only), so
            that :meth:`vouches` can tell later whether they are still current.
        """
        raws = [_key(k) for k in keys]
        if not raws:
            return []
        reader = self._reader
        if reader is not None:
            if shared:
                values = reader.get_many_shared(raws, self._decode, receipt)
            else:
                values = reader.get_many_decoded(raws, self._decode)
            if reader.is_open:
                if receipt is not None and not shared:
                    receipt.missing()
                return values
        if receipt is not None:  # read over the socket: nothing to vouch with
            receipt.missing()
        found = _expect(await self._one((b"MGET", *raws)), list, "MGET")
        return [self._decoded(raw) for raw in found]

    async def set(self, key: Key, obj: object, ttl: float, *, local: bool = False) -> None:
        """See :meth:`CacheClient.set`."""
        raw = _key(key)
        payload, px = self._set_args(obj, ttl)
        await self._one((b"SET", raw, payload, b"PX", px, b"LOCAL") if local else
                        (b"SET", raw, payload, b"PX", px))  # fmt: skip

    def vouches(self, receipt: Receipt) -> bool:
        """Whether the objects read with *receipt* are still what a read would give
        (:meth:`~.direct.DirectReader.vouches`; ``False`` without direct reads)."""
        reader = self._reader
        return reader is not None and reader.is_open and reader.vouches(receipt)

    async def set_many(self, items: Mapping[Key, object], ttl: float) -> None:
        """See :meth:`CacheClient.set_many`."""
        px = _px(ttl)
        commands = [encode_command((b"SET", _key(k), self._encode(v), b"PX", px))
                    for k, v in items.items()]  # fmt: skip
        if commands:
            await self._call(b"".join(commands), len(commands))

    async def delete(self, *keys: Key) -> int:
        """See :meth:`CacheClient.delete`."""
        raws = [_key(k) for k in keys]
        if not raws:
            return 0
        return _expect(await self._one((b"DEL", *raws)), int, "DEL")

    async def touch(self, key: Key, ttl: float) -> bool:
        """See :meth:`CacheClient.touch`."""
        raw, px = _key(key), _px(ttl)
        return bool(await self._one((b"PEXPIRE", raw, px)))

    async def ping(self) -> bool:
        """See :meth:`CacheClient.ping`."""
        try:
            return await self._one((b"PING",)) == b"PONG"
        except CacheClientError:
            return False

    async def info(self) -> dict[str, object]:
        """See :meth:`CacheClient.info`."""
        text = _expect(await self._one((b"INFO",)), bytes, "INFO")
        return parse_info(text.decode("utf-8", "replace"))

    async def aclose(self) -> None:
        """Close the connection and give back the direct reader."""
        self._release()
        await self._pipe.aclose()

    async def __aenter__(self) -> AsyncCacheClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _one(self, args: Sequence[bytes | int]) -> object:
        return (await self._call(encode_command(args), 1))[0]

    async def _call(self, payload: bytes, count: int) -> list[object]:
        """The replies to *count* commands; the first error reply raised."""
        try:
            replies = await self._pipe.call(payload, count)
        except (ConnectionError, TimeoutError) as exc:
            raise CacheUnavailable(f"sleigh-cached is unreachable: {exc}") from exc
        for reply in replies:
            if isinstance(reply, hiredis.ReplyError):
                raise CacheCommandError(str(reply))
        return replies


T = TypeVar("T")


def _expect(reply: object, kind: type[T], command: str) -> T:
    """*reply* if it is a *kind*; a command error naming *command* otherwise."""
    if not isinstance(reply, kind):
        raise CacheCommandError(f"sleigh-cached answered {command} with {reply!r}")
    return reply


@overload
def from_config(
    cfg: CacheConfig, home: Path, *, asynchronous: Literal[False] = False
) -> CacheClient: ...
@overload
def from_config(
    cfg: CacheConfig, home: Path, *, asynchronous: Literal[True]
) -> AsyncCacheClient: ...
def from_config(
    cfg: CacheConfig, home: Path, *, asynchronous: bool = False
) -> CacheClient | AsyncCacheClient:
    """A client for the daemon configured by *cfg* under *home*, reading its file directly."""
    cls = AsyncCacheClient if asynchronous else CacheClient
    return cls(cfg.socket_path(home), cfg.env_path(home))
