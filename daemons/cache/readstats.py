"""Counting direct reads, which happen in other processes, for the daemon's INFO.

Each reading process keeps its hit and miss counts in memory and, at most
once a second (on the reader's slow path) and when it closes, writes them
to ``<env>/readers/<pid>``: 16 bytes, two little-endian counters. The
daemon adds the files up for ``INFO``; the file of a process that is gone
is folded into a running total and removed. A read costs one integer
increment more; no lock, no syscall.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("sleigh.cache.readstats")

DIRECTORY = "readers"
_RECORD = struct.Struct("<QQ")


class Publisher:
    """The reading side: publishes this process's counts under *env_path*."""

    def __init__(self, env_path: Path) -> None:
        self.directory = env_path / DIRECTORY
        self._fd: int | None = None
        self._pid = 0

    def publish(self, hits: int, misses: int) -> None:
        """Write the counts (best effort: counting never fails a read)."""
        pid = os.getpid()
        try:
            if self._fd is None or self._pid != pid:
                self._open(pid)
            assert self._fd is not None
            os.pwrite(self._fd, _RECORD.pack(hits, misses), 0)
        except OSError as exc:
            log.debug("cannot publish direct-read counts in %s: %s", self.directory, exc)

    def _open(self, pid: int) -> None:
        if self._fd is not None and self._pid == pid:
            return
        # A forked child inherits the parent's descriptor; it is not ours to write.
        self._fd = None
        self.directory.mkdir(mode=0o770, exist_ok=True)
        path = self.directory / str(pid)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o660)
        self._pid = pid

    def close(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._fd = None


@dataclass
class Totals:
    """The daemon's side: counts of processes that are gone, and the latest sum."""

    retired_hits: int = 0
    retired_misses: int = 0

    def collect(self, env_path: Path) -> tuple[int, int, int]:
        """``(hits, misses, processes reading now)`` over every reader, gone or alive."""
        hits, misses, live = self.retired_hits, self.retired_misses, 0
        directory = env_path / DIRECTORY
        try:
            entries = list(directory.iterdir())
        except FileNotFoundError:
            return hits, misses, 0
        for path in entries:
            counts = _read(path)
            if counts is None:
                continue
            if _alive(path.name):
                hits, misses, live = hits + counts[0], misses + counts[1], live + 1
                continue
            self.retired_hits += counts[0]
            self.retired_misses += counts[1]
            hits, misses = hits + counts[0], misses + counts[1]
            with contextlib.suppress(OSError):
                path.unlink()
        return hits, misses, live


def _read(path: Path) -> tuple[int, int] | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if len(data) != _RECORD.size or not path.name.isdigit():
        return None
    hits, misses = _RECORD.unpack(data)
    return int(hits), int(misses)


def _alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
