"""A seeded simulated multicast network with a virtual clock, for tests and the benchmark.

Each :class:`SimHost` is a :class:`.engine.Node` plus a dictionary standing
for its cache. The :class:`Network` moves datagrams between hosts through
an event queue, losing, duplicating, delaying and reordering them as its
:class:`LinkModel` says, with one :class:`random.Random` seeded once: the
same seed gives the same run, to the datagram. Nothing here sleeps or
reads a clock.

    net = Network(ReplicatorConfig(), seed=1, link=LinkModel(loss=0.2))
    a, b = net.add_host("a"), net.add_host("b")
    net.write("a", CacheOp(Op.SET, b"k", b"v"))
    net.run(0.5)
    assert b.cache == a.cache
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from .config import ReplicatorConfig
from .engine import Node
from .events import Event, Output
from .protocol import CacheOp, Op

__all__ = ["LinkModel", "Network", "SimHost", "Trial", "convergence_trial"]

#: A virtual epoch (2023-11-14), so timestamps look like real ones.
EPOCH = 1_700_000_000.0


@dataclass(frozen=True)
class LinkModel:
    """How the network treats each datagram.

    :param loss: chance each receiver independently misses a datagram.
    :param sender_loss: chance a datagram is lost for every receiver (at the sender).
    :param duplicate: chance a receiver gets a datagram twice.
    :param reorder: chance a datagram is held back by ``reorder_delay`` extra.
    :param delay: one-way delay; ``jitter`` adds up to that much more, uniformly.
    """

    loss: float = 0.0
    sender_loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    delay: float = 0.0002
    jitter: float = 0.0
    reorder_delay: float = 0.003


@dataclass
class SimHost:
    """One simulated daemon and its cache (key -> (value, expiry ms))."""

    name: str
    node: Node
    cache: dict[bytes, tuple[bytes, int]] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    applied: int = 0

    def apply(self, op: CacheOp) -> None:
        """Do *op* to the cache, as ``sleigh-cached`` would."""
        self.applied += 1
        if op.op is Op.SET:
            self.cache[op.key] = (op.value, op.expiry_ms)
        elif op.op in (Op.DELETE, Op.INVALIDATE):
            self.cache.pop(op.key, None)
        elif op.op is Op.EXPIRE:
            if op.key in self.cache:
                self.cache[op.key] = (self.cache[op.key][0], op.expiry_ms)
        elif op.op is Op.FLUSH:
            self.cache.clear()


_Action = Callable[[], None]


class Network:
    """Hosts on one multicast group, a virtual clock and an event queue.

    :param mtu_check: raise ``AssertionError`` on any datagram over ``mtu_payload``.
    """

    def __init__(
        self,
        config: ReplicatorConfig,
        *,
        seed: int,
        link: LinkModel | None = None,
        secret: bytes = b"sim-cluster-secret-0123456789abcdef",
        start: float = EPOCH,
    ) -> None:
        self.config = config
        self.link = link or LinkModel()
        self.secret = secret
        self.now = start
        self.hosts: dict[str, SimHost] = {}
        self.blocked: set[tuple[str, str]] = set()
        self.rng = random.Random(seed)
        self.datagrams = 0  # datagrams put on the wire
        self.largest = 0  # largest datagram seen
        self.last_data_sent = start  # when the last DATA datagram (new or repair) went out
        self.last_write = start  # when a host last took a local write
        self._queue: list[tuple[float, int, _Action]] = []
        self._order = 0
        self._tick_at: dict[str, float] = {}

    # -- set-up --------------------------------------------------------------------------
    def add_host(
        self, name: str, sender_id: int | None = None, resume: dict[int, int] | None = None
    ) -> SimHost:
        """Start a daemon called *name* now (a new sender id: a new stream), resuming the
        streams in *resume* (a predecessor's :meth:`~.engine.Node.positions`)."""
        sid = sender_id if sender_id is not None else self.rng.getrandbits(64) | 1
        node = Node(
            self.config,
            self.secret,
            sender_id=sid,
            now=self.now,
            rng=random.Random(self.rng.getrandbits(32)),
            resume=resume,
        )
        host = self.hosts[name] = SimHost(name, node)
        self._tick_at.pop(name, None)
        self._schedule_tick(host)
        return host

    def remove_host(self, name: str, *, leave: bool = True) -> None:
        """Stop *name*: with *leave*, it says LEAVE first (a clean stop), else it just dies."""
        host = self.hosts.pop(name)
        if leave:
            self._handle(host, host.node.leave(self.now))

    def block(self, src: str, dst: str) -> None:
        """Drop everything *src* sends to *dst* until :meth:`unblock`."""
        self.blocked.add((src, dst))

    def unblock(self, src: str, dst: str) -> None:
        self.blocked.discard((src, dst))

    def partition(self, side_a: list[str], side_b: list[str]) -> None:
        """Cut every path between the two sides, both ways."""
        for a in side_a:
            for b in side_b:
                self.block(a, b)
                self.block(b, a)

    def heal(self) -> None:
        self.blocked.clear()

    # -- traffic -------------------------------------------------------------------------
    def write(self, name: str, op: CacheOp) -> None:
        """A local client writes *op* on host *name* now."""
        host = self.hosts[name]
        host.apply(op)
        self.last_write = self.now
        self._handle(host, host.node.publish(op, self.now))

    def inject(self, name: str, datagram: bytes) -> Output:
        """Hand *datagram* (from a stranger) to host *name* now; return what it did."""
        host = self.hosts[name]
        out = host.node.receive(datagram, self.now)
        self._handle(host, out)
        return out

    def run(self, duration: float) -> None:
        """Advance the virtual clock by *duration*, processing every event on the way."""
        self.run_until(self.now + duration)

    def run_until(self, until: float) -> None:
        while self._queue and self._queue[0][0] <= until:
            when, _order, action = heapq.heappop(self._queue)
            self.now = max(self.now, when)
            action()
        self.now = max(self.now, until)

    def run_until_true(self, predicate: Callable[[], bool], limit: float, step: float) -> float:
        """Run until *predicate* holds (checked every *step*) or *limit* passes.

        :returns: the virtual time it took (``limit`` if it never held).
        """
        start = self.now
        while not predicate():
            if self.now - start >= limit:
                return limit
            self.run(step)
        return self.now - start

    # -- internals -----------------------------------------------------------------------
    def _at(self, when: float, action: _Action) -> None:
        self._order += 1
        heapq.heappush(self._queue, (when, self._order, action))

    def _handle(self, host: SimHost, out: Output) -> None:
        for op in out.apply:
            host.apply(op)
        host.events.extend(out.events)
        for datagram in out.send:
            self._multicast(host, datagram)
        if host.name in self.hosts:
            self._schedule_tick(host)

    def _schedule_tick(self, host: SimHost) -> None:
        when = host.node.next_deadline(self.now)
        scheduled = self._tick_at.get(host.name)
        if scheduled is not None and scheduled <= when and scheduled >= self.now:
            return
        self._tick_at[host.name] = when

        def tick() -> None:
            if self.hosts.get(host.name) is not host or self._tick_at.get(host.name) != when:
                return
            del self._tick_at[host.name]
            self._handle(host, host.node.tick(self.now))

        self._at(when, tick)

    def _multicast(self, src: SimHost, datagram: bytes) -> None:
        size = len(datagram)
        assert size <= self.config.mtu_payload, f"{size}-byte datagram over the MTU"
        self.largest = max(self.largest, size)
        self.datagrams += 1
        if datagram[5] == 1:  # DATA
            self.last_data_sent = self.now
        link, rng = self.link, self.rng
        if rng.random() < link.sender_loss:
            return
        for dst in list(self.hosts.values()):
            if dst is src or (src.name, dst.name) in self.blocked or rng.random() < link.loss:
                continue
            copies = 2 if rng.random() < link.duplicate else 1
            for _ in range(copies):
                delay = link.delay + rng.uniform(0, link.jitter)
                if rng.random() < link.reorder:
                    delay += link.reorder_delay
                self._at(self.now + delay, self._deliverer(dst, datagram))

    def _deliverer(self, dst: SimHost, datagram: bytes) -> _Action:
        def deliver() -> None:
            if self.hosts.get(dst.name) is dst:
                self._handle(dst, dst.node.receive(datagram, self.now))

        return deliver


@dataclass(frozen=True)
class Trial:
    """One :func:`convergence_trial`: how long after the last write every cache agreed."""

    converged_after: float  # virtual seconds from the last write; inf if it never did
    writes: int
    datagrams: int  # on the wire, every kind, repairs included
    repairs: int
    naks: int  # NAKs the writer received
    unrecoverable: int  # gaps reported by all receivers


def convergence_trial(
    config: ReplicatorConfig,
    link: LinkModel,
    *,
    seed: int,
    hosts: int = 3,
    writes: int = 1000,
    rate: float = 10_000.0,
    value_size: int = 1000,
    limit: float = 5.0,
) -> Trial:
    """One host writes *writes* values of *value_size* bytes at *rate* a second; the rest follow.

    :returns: when, after the last write, every receiver's cache equalled the writer's.
    """
    net = Network(config, seed=seed, link=link)
    members = [net.add_host(f"h{i}") for i in range(hosts)]
    net.run(0.05)
    rng = random.Random(seed)
    for i in range(writes):
        if i:
            net.run(1.0 / rate)
        net.write("h0", CacheOp(Op.SET, b"key:%d" % (i % 5000), rng.randbytes(value_size)))
    writer = members[0]
    start = net.last_write
    took = net.run_until_true(lambda: all(h.cache == writer.cache for h in members), limit, 0.0001)
    sender = writer.node.sender.stats
    gaps = sum(p.stream.stats.gaps for h in members for p in h.node.peers.values())
    return Trial(
        net.now - start if took < limit else float("inf"),
        writes,
        net.datagrams,
        sender.repairs,
        sender.naks,
        gaps,
    )
