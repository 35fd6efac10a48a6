"""The daemon around the protocol core: sockets, the feed, the cache, timers.

Everything the :class:`~.engine.Node` decides happens in the event loop:
local writes arrive from ``sleigh-cached``'s feed (a ZeroMQ SUB whose fd
the loop watches), datagrams from the receive thread in batches, and one
timer runs :meth:`Node.tick` at :meth:`Node.next_deadline`. Every
:class:`~.events.Output` is handled the same way: datagrams go out on the
send socket, operations queue for the applier task (one pipelined batch in
flight to the local cache at a time, in order), events are logged and
counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections import deque
from pathlib import Path
from typing import cast

import zmq

from ...core_ext.mmsg import BatchSocket
from ..cache import feed
from ..cache.feed import Write
from ..cache.replica import ReplicaUnavailable, ReplicaWriter
from .engine import Node
from .events import Output, Unrecoverable
from .net import kernel_drops, open_receive_path
from .protocol import CacheOp, Op

log = logging.getLogger("sleigh.replicator.server")

#: Writes applied to the local cache per pipelined batch, at most.
APPLY_BATCH = 2000
#: Writes waiting for the local cache before the oldest are dropped (and counted).
APPLY_QUEUE_MAX = 1_000_000
#: Prefix of the key the daemon writes to see its feed subscription work.
PROBE_PREFIX = b"\x00sleigh-mcastd:probe:"

_FEED_TO_OP = {
    feed.SET: Op.SET,
    feed.DELETE: Op.DELETE,
    feed.EXPIRE: Op.EXPIRE,
    feed.FLUSH: Op.FLUSH,
}


def to_write(op: CacheOp) -> Write | None:
    """The cache write that applies *op* (``None``: nothing to do)."""
    kind = op.op
    if kind == Op.SET:
        return Write(feed.SET, op.key, op.value, op.expiry_ms)
    if kind in (Op.DELETE, Op.INVALIDATE):
        return Write(feed.DELETE, op.key, None, 0)
    if kind == Op.EXPIRE:
        # An expiry removed (0) is never published: the cache has no PERSIST.
        return Write(feed.EXPIRE, op.key, None, op.expiry_ms) if op.expiry_ms else None
    return Write(feed.FLUSH, b"", None, 0)


class Counters:
    """What the daemon itself counts, beside the node's protocol counters."""

    def __init__(self) -> None:
        self.feed_messages = 0
        self.feed_writes = 0
        self.feed_gaps = 0  # feed messages the cache dropped before we read them
        self.feed_errors = 0
        self.applied = 0
        self.apply_refused = 0
        self.apply_dropped = 0
        self.apply_failures = 0
        self.send_errors = 0
        self.unrecoverable = 0
        self.batches = 0


class Replicator:
    """One running daemon: node, sockets, feed, applier, timer.

    :param feed_path: the cache's ipc feed socket (``None``: publish nothing).
    :param cache_socket: the cache's RESP socket, for applying peers' writes.
    """

    def __init__(
        self,
        node: Node,
        send_sock: socket.socket,
        recv_sock: socket.socket,
        *,
        feed_path: Path | None,
        cache_socket: Path,
        mtu_payload: int,
        receive_path: str = "reader",
    ) -> None:
        self.node = node
        self.loop = asyncio.get_running_loop()
        self.send_sock = send_sock
        self._batches = BatchSocket(send_sock, mtu_payload)
        self.counters = Counters()
        self.replica = ReplicaWriter(cache_socket)
        self.feed_path = feed_path
        self.accepting = True  # local writes are taken from the feed
        self.last_repair = 0.0
        self._feed_seq: int | None = None
        self._probe = PROBE_PREFIX + b"%016x" % node.sender_id
        self._probe_seen = asyncio.Event()
        self._pending_send: deque[bytes] = deque()
        self._apply_queue: deque[Write] = deque()
        self._apply_wake = asyncio.Event()
        self._applied_all = asyncio.Event()  # set while nothing waits to be applied
        self._applier: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._closed = False
        #: After :meth:`close`: everything received was applied to the local cache.
        self.applied_all = False
        self._zmq = zmq.Context(io_threads=1)
        self._sub: zmq.Socket[bytes] | None = None
        self.receiver = open_receive_path(
            receive_path, recv_sock, self.loop, self.on_datagrams, mtu_payload + 1
        )

    # -- start and stop ------------------------------------------------------------------
    def start(self) -> None:
        if self.feed_path is not None:
            sub = self._zmq.socket(zmq.SUB)
            sub.setsockopt(zmq.SUBSCRIBE, b"")
            sub.setsockopt(zmq.RCVHWM, 1_000_000)
            sub.setsockopt(zmq.LINGER, 0)
            sub.connect(f"ipc://{self.feed_path}")
            self._sub = sub
            self.loop.add_reader(cast(int, sub.getsockopt(zmq.FD)), self.on_feed)
        self._applier = asyncio.create_task(self._apply_loop(), name="mcastd-apply")
        self.receiver.start()
        self._arm(time.time())

    async def wait_feed(self, within: float) -> bool:
        """Write a probe key until it comes back on the feed: the subscription works."""
        if self._sub is None:
            return False
        deadline = time.monotonic() + within
        payload = b"*3\r\n$3\r\nSET\r\n$%d\r\n%b\r\n$1\r\n1\r\n" % (len(self._probe), self._probe)
        while time.monotonic() < deadline:
            with_cache = await _raw_command(self.replica.socket_path, payload)
            if with_cache:
                try:
                    await asyncio.wait_for(self._probe_seen.wait(), 0.1)
                except TimeoutError:
                    self.on_feed()
                    continue
                self._queue_writes([Write(feed.DELETE, self._probe, None, 0)])
                return True
            await asyncio.sleep(0.1)
        return self._probe_seen.is_set()

    async def drain(self, within: float) -> None:
        """Stop taking local writes; send what is queued and answer NAKs for a moment."""
        self.accepting = False
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            self.tick()
            quiet = time.time() - self.last_repair
            if self.node.drained() and not self._pending_send and quiet >= min(0.1, within):
                break
            await asyncio.sleep(0.005)
        self.handle(self.node.leave(time.time()))

    async def close(self, within: float) -> None:
        """Stop receiving, apply what was received (bounded), close everything."""
        self.receiver.stop()
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        sub, self._sub = self._sub, None
        if sub is not None:
            self.loop.remove_reader(cast(int, sub.getsockopt(zmq.FD)))
            sub.close(0)
        self._zmq.term()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._applied_all.wait(), within)
        self.applied_all = self._applied_all.is_set() and not self._apply_queue
        if self._applier is not None:
            self._applier.cancel()
        await self.replica.close()
        self.receiver.sock.close()
        self.send_sock.close()

    # -- inputs --------------------------------------------------------------------------
    def on_feed(self) -> None:
        """The SUB's fd is readable (edge-triggered): read every message there is."""
        sub = self._sub
        if sub is None:
            return
        ops: list[CacheOp] = []
        while True:
            try:
                frame = sub.recv(zmq.NOBLOCK)
            except zmq.Again:
                break
            self._feed_message(frame, ops)
        if ops:
            self.handle(self.node.publish_many(ops, time.time()))

    def _feed_message(self, frame: bytes, ops: list[CacheOp]) -> None:
        c = self.counters
        try:
            message = feed.decode(frame)
        except feed.FeedError as exc:
            c.feed_errors += 1
            log.warning("unreadable message on the cache's feed: %s", exc)
            return
        c.feed_messages += 1
        last = self._feed_seq
        if last is not None and message.seq > last + 1:
            c.feed_gaps += 1
            log.warning("the cache's feed skipped from %d to %d", last, message.seq)
        elif last is not None and message.seq <= last:
            log.info("the cache restarted (its feed began again at %d)", message.seq)
        self._feed_seq = message.seq
        accepting, probe, to_op = self.accepting, PROBE_PREFIX, _FEED_TO_OP
        for kind, key, value, expires_ms in message.writes:
            if key.startswith(probe):
                self._probe_seen.set()
            elif accepting:
                ops.append(CacheOp(to_op[kind], key, value or b"", expires_ms))
                c.feed_writes += 1

    def on_datagrams(self, batch: list[tuple[bytes, float]]) -> None:
        """A batch from the receive thread."""
        self.counters.batches += 1
        out = Output()
        receive = self.node.receive
        repairs = self.node.sender.stats.repairs
        for data, when in batch:
            receive(data, when, out)
        if self.node.sender.stats.repairs != repairs:
            self.last_repair = time.time()
        self.handle(out)

    def tick(self) -> None:
        self._timer = None
        # Timers decide on everything received: a NAK for a datagram already here is waste.
        self.receiver.poll()
        self.handle(self.node.tick(time.time()))
        self.on_feed()  # the SUB's fd is edge-triggered: never let a message sit

    # -- outputs -------------------------------------------------------------------------
    def handle(self, out: Output) -> None:
        if out.send:
            self._send(out.send)
        if out.apply:
            self._queue_writes([w for w in map(to_write, out.apply) if w is not None])
        for event in out.events:
            if isinstance(event, Unrecoverable):
                self.counters.unrecoverable += 1
                log.warning(
                    "unrecoverable gap from %016x: sequences %d-%d; invalidated %d keys%s",
                    event.sender,
                    event.first,
                    event.last,
                    len(event.keys),
                    ", flushed the cache" if event.flushed else "",
                )
        self._arm(time.time())

    def _send(self, datagrams: list[bytes]) -> None:
        pending = self._pending_send
        if pending:
            pending.extend(datagrams)
            return
        left = self._send_some(datagrams)
        if left:
            pending.extend(left)
            self.loop.add_writer(self.send_sock.fileno(), self._send_pending)

    def _send_some(self, datagrams: list[bytes]) -> list[bytes]:
        """Send what the socket takes now; what is left (the send buffer is full)."""
        send_batch = self._batches.send_batch
        while datagrams:
            try:
                sent = send_batch(datagrams)
            except OSError as exc:  # the first could not go: count it, go on with the rest
                self.counters.send_errors += 1
                log.debug("send failed: %s", exc)
                sent = 1
            if sent == 0:
                return datagrams
            datagrams = datagrams[sent:]
        return datagrams

    def _send_pending(self) -> None:
        pending = self._pending_send
        left = self._send_some(list(pending))
        pending.clear()
        pending.extend(left)
        if not pending:
            self.loop.remove_writer(self.send_sock.fileno())

    def _arm(self, now: float) -> None:
        if self._closed:
            return
        at = self.node.next_deadline(now)
        if self._timer is not None:
            if self._timer_at <= at:
                return
            self._timer.cancel()
        self._timer_at = at
        self._timer = self.loop.call_later(max(0.0, at - now), self.tick)

    # -- applying peers' writes ------------------------------------------------------------
    def _queue_writes(self, writes: list[Write]) -> None:
        room = APPLY_QUEUE_MAX - len(self._apply_queue)
        if len(writes) > room:
            dropped = len(writes) - max(room, 0)
            writes = writes[: max(room, 0)]
            self.counters.apply_dropped += dropped
            log.error("the local cache is not keeping up: dropped %d replicated writes", dropped)
        self._apply_queue.extend(writes)
        self._applied_all.clear()
        self._apply_wake.set()

    async def _apply_loop(self) -> None:
        queue = self._apply_queue
        while True:
            if not queue:
                self._applied_all.set()
            await self._apply_wake.wait()
            self._apply_wake.clear()
            while queue:
                batch = [queue[i] for i in range(min(len(queue), APPLY_BATCH))]
                try:
                    refused = await self.replica.apply(batch)
                except ReplicaUnavailable as exc:
                    self.counters.apply_failures += 1
                    log.warning("%s; retrying", exc)
                    await asyncio.sleep(0.5)
                    continue
                for _ in batch:
                    queue.popleft()
                self.counters.applied += len(batch) - refused
                self.counters.apply_refused += refused

    # -- status --------------------------------------------------------------------------
    def snapshot(self) -> dict[str, object]:
        c = self.counters
        data = self.node.snapshot(time.time())
        data["daemon"] = {
            **vars(c),
            "apply_queue": len(self._apply_queue),
            "send_queue": len(self._pending_send),
            "datagrams_received": self.receiver.datagrams,
            "receive_wakeups": self.receiver.wakeups,
            "kernel_rcvbuf_errors": kernel_drops(),
            "feed": str(self.feed_path) if self.feed_path else "off",
        }
        return data


async def _raw_command(path: Path, payload: bytes) -> bool:
    """Send one RESP command to the cache on a connection of its own; whether it said OK."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(str(path)), 1.0)
    except (OSError, TimeoutError):
        return False
    try:
        writer.write(payload)
        reply = await asyncio.wait_for(reader.readline(), 1.0)
        return reply.startswith(b"+OK")
    except (OSError, TimeoutError):
        return False
    finally:
        writer.close()
