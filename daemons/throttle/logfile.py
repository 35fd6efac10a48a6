"""The state log: fixed-size binary records, appended before each reply.

File layout (little-endian; the header is one record long)::

    header  magic "SLTHLOG\\0" | u16 version | u16 record size | u32 0
            | 32 bytes SHA-256 of the rules in force | i64 created (ns) | 40 bytes 0
    record  i64 now | i64 tat | i64 strike | i64 blocked | u64 key hash
            | u32 cost | u8 event | u8 key length | u16 0 | 48 bytes key (NUL padded)

Every field is a timestamp in nanoseconds since the epoch, so a record says
how long it matters: until ``max(tat, strike, blocked)``. Per key that
instant never moves back (a reset record carries the instant of the state
it cancels), so replay keeps the records still alive and, of those, the
last one per key. A torn record at the end (a crash mid-write) is ignored, and a
record no writer writes (a corrupt sector) is left out with a warning.

Records are written with ``os.write`` (in the page cache when the reply
goes out: a ``kill -9`` loses nothing) and ``fdatasync``'ed on an interval
(an OS crash loses at most that interval). One writer per file: never put
it on NFS.
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...core_ext.replay import last_alive
from .errors import LogError
from .gcra import ALLOW, RESET, SNAPSHOT, State

log = logging.getLogger("sleigh.throttle.log")

MAGIC = b"SLTHLOG\0"
VERSION = 1
RECORD = struct.Struct("<qqqqQIBBH48s")
HEADER = struct.Struct("<8sHHI32sq40x")
KEY_MAX = 48
assert RECORD.size == HEADER.size == 96

DTYPE = np.dtype(
    [
        ("now", "<i8"),
        ("tat", "<i8"),
        ("strike", "<i8"),
        ("blocked", "<i8"),
        ("hash", "<u8"),
        ("cost", "<u4"),
        ("event", "u1"),
        ("klen", "u1"),
        ("pad", "<u2"),
        ("key", "S48"),
    ]
)
assert DTYPE.itemsize == RECORD.size


@dataclass(frozen=True)
class Header:
    version: int
    rules_hash: bytes
    created: int


def read_header(path: Path) -> Header:
    """The header of the log at *path*.

    :raises LogError: if the file is not a throttle log of this version.
    """
    with path.open("rb") as fh:
        raw = fh.read(HEADER.size)
    if len(raw) < HEADER.size:
        raise LogError(f"{path}: too short for a throttle log header; move it aside")
    magic, version, size, _, digest, created = HEADER.unpack(raw)
    if magic != MAGIC:
        raise LogError(f"{path}: not a throttle log (bad magic); move it aside")
    if version != VERSION or size != RECORD.size:
        raise LogError(
            f"{path}: log version {version} (record {size} B); this daemon reads {VERSION}"
        )
    return Header(version, digest, created)


def records(path: Path) -> np.ndarray:
    """Every whole record in the log at *path* (a torn tail is left out), mapped, not read."""
    read_header(path)
    count = (path.stat().st_size - HEADER.size) // RECORD.size
    if count == 0:
        return np.zeros(0, dtype=DTYPE)
    return np.memmap(path, dtype=DTYPE, mode="r", offset=HEADER.size, shape=(count,))


def live_states(path: Path, now: int) -> dict[bytes, State]:
    """Replay: each key's last state still alive at *now*."""
    recs = _written(path, records(path))
    last = recs[last_alive(recs, now)]
    last = last[last["event"] != RESET]
    states: dict[bytes, State] = {}
    for key, klen, tat, strike, blocked, digest in zip(
        last["key"].tolist(),
        last["klen"].tolist(),
        last["tat"].tolist(),
        last["strike"].tolist(),
        last["blocked"].tolist(),
        last["hash"].tolist(),
        strict=True,
    ):
        states[key[:klen]] = [tat, strike, blocked, digest]
    return states


def _written(path: Path, recs: np.ndarray) -> np.ndarray:
    """*recs* less those no writer writes (an event it does not know, a key length over
    ``KEY_MAX`` or none, padding not zero: a corrupt sector, a stray write), which are
    left out with a warning rather than replayed as limits on keys nobody has."""
    ok = (
        (recs["event"] >= ALLOW)
        & (recs["event"] <= SNAPSHOT)
        & (recs["klen"] >= 1)
        & (recs["klen"] <= KEY_MAX)
        & (recs["pad"] == 0)
    )
    bad = len(recs) - int(np.count_nonzero(ok))
    if not bad:
        return recs
    log.warning("%s: %d records are not ones a writer writes (corrupt?): left out", path, bad)
    kept: np.ndarray = recs[ok]
    return kept


def write_snapshot(path: Path, states: dict[bytes, State], rules_hash: bytes, now: int) -> None:
    """Write a log holding one snapshot record per state, atomically (temp file, rename)."""
    data = header_bytes(rules_hash, now) + snapshot_records(states.items(), now)
    install(write_beside(path, data), path)


def header_bytes(rules_hash: bytes, now: int) -> bytes:
    """A log's header, naming the rules in force."""
    return HEADER.pack(MAGIC, VERSION, RECORD.size, 0, rules_hash, now)


def snapshot_records(items: Iterable[tuple[bytes, State]], now: int) -> bytes:
    """One snapshot record per ``(key, state)``."""
    pack, out = RECORD.pack, bytearray()
    for key, (tat, strike, blocked, digest) in items:
        out += pack(now, tat, strike, blocked, digest, 0, SNAPSHOT, len(key), 0, key)
    return bytes(out)


def write_beside(path: Path, data: bytes | bytearray) -> Path:
    """Write (and fsync) *data* as a new log beside *path*, not yet in its place; its name.
    (The writing releases the GIL: it can run in a worker thread.)"""
    temp = path.with_name(path.name + ".new")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o640)
    try:
        _write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    return temp


def install(temp: Path, path: Path, durably: bool = True) -> None:
    """Put the log *temp* in the place of *path* (which becomes ``.1``); *durably*: and
    sync the directory (else call :func:`sync_directory` soon)."""
    if path.exists():
        os.replace(path, path.with_name(path.name + ".1"))
    os.replace(temp, path)
    if durably:
        sync_directory(path)


def sync_directory(path: Path) -> None:
    """fsync the directory holding *path*: the renames in it survive an OS crash."""
    dirfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dirfd)
    finally:
        os.close(dirfd)


def append_tail(source: Path, start: int, target: Path) -> int:
    """Copy what *source* holds from byte *start* on to the end of *target*; bytes copied."""
    with open(source, "rb") as old:
        old.seek(start)
        tail = old.read()
    fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
    try:
        _write_all(fd, tail)
    finally:
        os.close(fd)
    return len(tail)


def _write_all(fd: int, data: bytes | bytearray) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class LogWriter:
    """Appends records to the log; :meth:`flush` before replying, :meth:`sync` on a timer.

    :param path: the log file; it must exist (see :func:`write_snapshot`).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        self.buffer = bytearray()
        self.size = os.fstat(self.fd).st_size
        self.dirty = False
        self.records = 0

    def append(
        self,
        event: int,
        key: bytes,
        digest: int,
        now: int,
        tat: int,
        strike: int,
        blocked: int,
        cost: int,
    ) -> None:
        """Queue one record (a :data:`~.gcra.Sink`)."""
        self.buffer += RECORD.pack(
            now, tat, strike, blocked, digest, min(cost, 0xFFFFFFFF), event, len(key), 0, key
        )

    def flush(self) -> None:
        """Write what is queued (to the page cache: it survives the process)."""
        if not self.buffer:
            return
        written = len(self.buffer)
        while self.buffer:
            del self.buffer[: os.write(self.fd, self.buffer)]
        self.size += written
        self.records += written // RECORD.size
        self.dirty = True

    def sync(self) -> None:
        """``fdatasync`` what was written."""
        self.flush()
        if self.dirty:
            os.fdatasync(self.fd)
            self.dirty = False

    async def sync_aside(self) -> None:
        """``fdatasync`` what was written, in a worker thread: the event loop answers
        meanwhile. (A second of appends under load is about 1 MB; syncing it took about
        1 ms on this project's test machine, and a busy disk can take far longer, past
        the web tier's few-millisecond wait.) The thread syncs a duplicate of the
        descriptor, so a compaction that closes this writer meanwhile cannot pull it
        away."""
        self.flush()
        if not self.dirty:
            return
        self.dirty = False  # appends from now on wait for the next sync
        try:
            await asyncio.to_thread(_sync_and_close, os.dup(self.fd))
        except BaseException:
            self.dirty = True
            raise

    def close(self) -> None:
        """Write, sync and close."""
        try:
            self.sync()
        finally:
            os.close(self.fd)


def _sync_and_close(fd: int) -> None:
    try:
        os.fdatasync(fd)
    finally:
        os.close(fd)


def open_log(path: Path, rules_hash: bytes, now: int | None = None) -> dict[bytes, State]:
    """Replay the log at *path* (if any), drop what expired, compact; the live states.

    :raises LogError: if the file is not a throttle log this daemon can read.
    """
    now = time.time_ns() if now is None else now
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    states: dict[bytes, State] = {}
    if path.exists():
        header = read_header(path)
        states = live_states(path, now)
        if header.rules_hash != rules_hash:
            log.info("the log was written under other rules; its states are kept as they are")
    replayed = time.perf_counter() - started
    write_snapshot(path, states, rules_hash, now)
    log.info(
        "replayed %s in %.3fs: %d live keys (compacted in %.3fs)",
        path,
        replayed,
        len(states),
        time.perf_counter() - started - replayed,
    )
    return states


def iter_events(path: Path, since: int) -> Iterator[tuple[int, bytes, int, int]]:
    """``(event, key, now, cost)`` of every record written at or after *since*."""
    recs = records(path)
    recs = recs[recs["now"] >= since]
    for event, key, klen, now, cost in zip(
        recs["event"].tolist(),
        recs["key"].tolist(),
        recs["klen"].tolist(),
        recs["now"].tolist(),
        recs["cost"].tolist(),
        strict=True,
    ):
        yield event, key[:klen], now, cost
