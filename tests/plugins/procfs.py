"""What a process holds, from ``/proc``: for the tests that a stream of bad input
leaks no file descriptor and no memory (DESIGN.md's rule for every daemon)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

#: How much a daemon's resident memory may grow under a stream of bad input
#: (allocator noise; a leak of a few hundred bytes a request exceeds it).
RSS_SLACK_KIB = 4096


def open_fds(pid: int) -> int:
    """File descriptors process *pid* has open."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_kib(pid: int) -> int:
    """Resident memory of process *pid* (all its threads), KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


@dataclass(frozen=True)
class Held:
    """A process's descriptors and resident memory at one moment."""

    pid: int
    fds: int
    rss: int

    @classmethod
    def now(cls, pid: int) -> Held:
        return cls(pid, open_fds(pid), rss_kib(pid))

    def assert_kept(self, fd_slack: int = 0) -> None:
        """Fail if *pid* now holds more descriptors (beyond *fd_slack*: a pool that may
        still open a connection or two), or ``RSS_SLACK_KIB`` more memory."""
        later = Held.now(self.pid)
        grown = f"descriptors grew from {self.fds} to {later.fds}"
        assert later.fds <= self.fds + fd_slack, grown
        grew = later.rss - self.rss
        assert grew < RSS_SLACK_KIB, f"memory grew by {grew} KiB under a stream of bad input"


def assert_steady(
    pids: Sequence[int], feed: Callable[[int], None], first: int, then: int, fd_slack: int = 0
) -> None:
    """*feed* the processes *pids* *first* bad inputs (their pools, buffers and caches
    reach their size), note what each holds, feed *then* more, and fail if any of
    them now holds more (:meth:`Held.assert_kept`)."""
    feed(first)
    held = [Held.now(pid) for pid in pids]
    feed(then)
    for each in held:
        each.assert_kept(fd_slack)
