"""Group commit: writes that arrive together share one LMDB transaction.

A future resolves only after its transaction committed: "OK" means the
write is in the file. Two writers keep that contract:

* :class:`InlineWriter` (``sync = none``): a commit without fsync takes
  microseconds, so it runs in the event loop, once per loop iteration, over
  every write the iteration received. No thread, no lock, no GIL hand-off.
* :class:`Writer` (``sync = data | full``): a commit waits for fsync, so a
  thread owns the write transactions; writes queue while the previous
  group commits, and the next group takes everything queued. py-lmdb
  releases the GIL while LMDB commits, so the loop goes on serving reads.

Both sweep expired entries (``sweep_batch`` per transaction, every
``sweep_interval``) and evict past the high-water mark between groups, so
housekeeping never holds the writer for long.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from .errors import ShuttingDown, StoreError
from .ops import Op
from .store import Store

log = logging.getLogger("sleigh.cache.writer")

#: Called in the writer thread after each commit with the ops and their results.
CommitHook = Callable[[Sequence[Op], Sequence[object]], None]
#: Called in the loop once the writes it waits for have their results.
Waiter = Callable[[], None]


class Ticket:
    """One write's result, for a caller that looks instead of awaiting: half
    the cost of a future on the path of every pipelined write."""

    __slots__ = ("done", "result")

    def __init__(self) -> None:
        self.done = False
        self.result: object = None

    def settle(self, result: object) -> None:
        self.result = result
        self.done = True


Target = asyncio.Future[object] | Ticket


class _Group:
    """What both writers share: applying a group, counting, the commit hook."""

    def __init__(
        self,
        store: Store,
        loop: asyncio.AbstractEventLoop,
        *,
        max_batch: int = 10_000,
        sweep_interval: float = 1.0,
        sweep_batch: int = 1000,
        on_commit: CommitHook | None = None,
    ) -> None:
        self.store = store
        self.loop = loop
        self.max_batch = max_batch
        self.sweep_interval = sweep_interval
        self.sweep_batch = sweep_batch
        self.on_commit = on_commit
        self._closing = False
        self.commits = 0
        self.writes = 0
        self.largest_group = 0
        self.commit_seconds = 0.0

    def submit(self, op: Op, waiter: Waiter | None = None) -> asyncio.Future[object]:
        """Queue *op*; the future's result is the op's result (or a CommandError instance).

        :param waiter: called in the loop right after the group's futures got
            their results (once per group however many of its writes it waits
            for): cheaper than a done callback per future.
        """
        future: asyncio.Future[object] = self.loop.create_future()
        self._enqueue(op, future, waiter)
        return future

    def submit_ticket(self, op: Op, waiter: Waiter) -> Ticket:
        """Queue *op*; its result lands in the ticket, then *waiter* is called."""
        ticket = Ticket()
        self._enqueue(op, ticket, waiter)
        return ticket

    def _enqueue(self, op: Op, target: Target, waiter: Waiter | None) -> None:
        raise NotImplementedError

    def _apply(self, ops: list[Op]) -> Sequence[object]:
        started = time.perf_counter()
        try:
            results = self.store.apply(ops)
        except Exception as exc:  # the LMDB layer failed: every write in the group fails
            log.exception("commit of %d writes failed", len(ops))
            return [StoreError(f"ERR the cache could not commit: {exc}")] * len(ops)
        self.commits += 1
        self.writes += len(ops)
        self.largest_group = max(self.largest_group, len(ops))
        self.commit_seconds += time.perf_counter() - started
        if self.on_commit is not None:
            try:
                self.on_commit(ops, results)
            except Exception:
                log.exception("commit hook failed")
        return results

    def _housekeeping(self) -> None:
        try:
            self.store.sweep(self.sweep_batch)
            if self.store.over_high_water():
                self.store.evict(self.store.low_water)
        except Exception:
            log.exception("sweeping the cache failed")


class InlineWriter(_Group):
    """Commits in the event loop, once per loop iteration (``sync = none``)."""

    def __init__(self, store: Store, loop: asyncio.AbstractEventLoop, **options: Any) -> None:
        super().__init__(store, loop, **options)
        self._queue: list[tuple[Op, Target, Waiter | None]] = []
        self._scheduled = False
        self._timer: asyncio.TimerHandle | None = None

    @property
    def pending(self) -> int:
        return len(self._queue)

    def start(self) -> None:
        self._timer = self.loop.call_later(self.sweep_interval, self._sweep)

    def _enqueue(self, op: Op, target: Target, waiter: Waiter | None) -> None:
        if self._closing:
            _refuse(self.loop, target, waiter)
            return
        self._queue.append((op, target, waiter))
        if not self._scheduled:
            self._scheduled = True
            self.loop.call_soon(self._commit)

    def _commit(self) -> None:
        self._scheduled = False
        batch = self._queue[: self.max_batch]
        del self._queue[: self.max_batch]
        if self._queue:
            self._scheduled = True
            self.loop.call_soon(self._commit)
        if batch:
            _resolve(batch, self._apply([op for op, _, _ in batch]))

    def _sweep(self) -> None:
        self._housekeeping()
        if not self._closing:
            self._timer = self.loop.call_later(self.sweep_interval, self._sweep)

    async def close(self) -> None:
        """Commit everything queued; refuse what comes after."""
        self._closing = True
        if self._timer is not None:
            self._timer.cancel()
        while self._queue:
            self._commit()


class Writer(_Group):
    """Commits in a thread of its own (``sync = data | full``)."""

    def __init__(self, store: Store, loop: asyncio.AbstractEventLoop, **options: Any) -> None:
        super().__init__(store, loop, **options)
        self._queue: deque[tuple[Op, Target, Waiter | None]] = deque()
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="cache-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def pending(self) -> int:
        return len(self._queue)

    def _enqueue(self, op: Op, target: Target, waiter: Waiter | None) -> None:
        if self._closing:
            _refuse(self.loop, target, waiter)
            return
        with self._cond:
            self._queue.append((op, target, waiter))
            if len(self._queue) == 1:
                self._cond.notify()

    async def close(self) -> None:
        """Commit everything queued, then stop the thread."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        await asyncio.get_running_loop().run_in_executor(None, self._thread.join)
        # Let the last results reach their futures before the caller goes on.
        await asyncio.sleep(0)

    # -- the thread ----------------------------------------------------------

    def _run(self) -> None:
        next_sweep = time.monotonic() + self.sweep_interval
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    wait = next_sweep - time.monotonic()
                    if wait <= 0:
                        break
                    self._cond.wait(wait)
                batch = [
                    self._queue.popleft() for _ in range(min(len(self._queue), self.max_batch))
                ]
                done = self._closing and not self._queue
            if batch:
                self._commit(batch)
            if time.monotonic() >= next_sweep:
                self._housekeeping()
                next_sweep = time.monotonic() + self.sweep_interval
            if done:
                return

    def _commit(self, batch: list[tuple[Op, Target, Waiter | None]]) -> None:
        results = self._apply([op for op, _, _ in batch])
        self.loop.call_soon_threadsafe(_resolve, batch, results)


def make_writer(
    store: Store, loop: asyncio.AbstractEventLoop, *, sync: str, **options: Any
) -> InlineWriter | Writer:
    """The writer that fits the sync policy (see the module's docstring)."""
    return (
        InlineWriter(store, loop, **options) if sync == "none" else Writer(store, loop, **options)
    )


def _resolve(batch: Sequence[tuple[Op, Target, Waiter | None]], results: Sequence[object]) -> None:
    waiters: dict[Waiter, None] = {}
    for (_, target, waiter), result in zip(batch, results, strict=True):
        if isinstance(target, Ticket):
            target.settle(result)
        elif not target.done():
            target.set_result(result)
        if waiter is not None:
            waiters[waiter] = None
    for waiter in waiters:
        waiter()


def _refuse(loop: asyncio.AbstractEventLoop, target: Target, waiter: Waiter | None) -> None:
    if isinstance(target, Ticket):
        target.settle(ShuttingDown())
    else:
        target.set_result(ShuttingDown())
    if waiter is not None:
        loop.call_soon(waiter)
