"""Counters of the search daemon: requests, errors, a latency histogram, queries/s.

One :class:`Stats` is shared by the worker threads: each records the
requests it answered under a lock (a few hundred nanoseconds, next to a
query's tens of microseconds at least); :meth:`Stats.snapshot` copies
under the same lock.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import deque
from typing import Any, Final

__all__ = ["BUCKETS_US", "Stats"]

#: Upper bounds of the latency histogram's buckets, in microseconds (the last is open).
BUCKETS_US: Final = (
    100,
    250,
    500,
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    1_000_000,
)
_WINDOW: Final = 10.0


class Stats:
    """What the daemon did since it started."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.started = clock()
        self.requests = 0
        self.errors = 0
        self.refused_busy = 0
        self.by_op: dict[str, int] = {}
        self.histogram = [0] * (len(BUCKETS_US) + 1)
        self._recent: deque[tuple[float, int]] = deque()

    def record(self, op: str, micros: int, ok: bool) -> None:
        """One request answered after *micros* microseconds."""
        now = self._clock()
        with self._lock:
            self.requests += 1
            self.by_op[op] = self.by_op.get(op, 0) + 1
            if not ok:
                self.errors += 1
            self.histogram[bisect.bisect_left(BUCKETS_US, micros)] += 1
            recent = self._recent
            if recent and now - recent[-1][0] < 0.1:
                recent[-1] = (recent[-1][0], recent[-1][1] + 1)
            else:
                recent.append((now, 1))
            while recent and now - recent[0][0] > _WINDOW:
                recent.popleft()

    def busy(self) -> None:
        """One request refused because the daemon was stopping or had no index."""
        with self._lock:
            self.refused_busy += 1

    def snapshot(self) -> dict[str, Any]:
        """The counters as plain data, with queries/s and latency quantiles."""
        now = self._clock()
        with self._lock:
            histogram = list(self.histogram)
            recent = sum(n for at, n in self._recent if now - at <= _WINDOW)
            out: dict[str, Any] = {
                "uptime_s": round(now - self.started, 3),
                "requests": self.requests,
                "errors": self.errors,
                "refused_busy": self.refused_busy,
                "by_op": dict(self.by_op),
            }
        window = min(_WINDOW, max(now - self.started, 1e-3))
        out["qps_10s"] = round(recent / window, 1)
        out["qps_total"] = round(out["requests"] / max(out["uptime_s"], 1e-3), 1)
        out["latency_us"] = {
            "buckets": [*BUCKETS_US, None],
            "counts": histogram,
            "p50": quantile(histogram, 0.50),
            "p99": quantile(histogram, 0.99),
        }
        return out


def quantile(histogram: list[int], q: float) -> int | None:
    """The upper bound of the bucket holding quantile *q* (``None``: no data or past the last)."""
    total = sum(histogram)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for i, count in enumerate(histogram):
        seen += count
        if seen >= rank:
            return BUCKETS_US[i] if i < len(BUCKETS_US) else None
    return None
