"""The protocol core of ``sleigh-mcastd``: one :class:`Node` per daemon, sans-IO.

The daemon owns the socket, the clock and the cache; the node owns every
protocol decision. The daemon's loop is, in outline::

    node = Node(cfg, secret, sender_id=secrets.randbits(64) or 1, now=time.time(),
                rng=random.Random())
    on a local write:   out = node.publish(op, time.time())   (or, for several,
                        node.publish_many(ops, time.time()))
    on a datagram:      out = node.receive(datagram, time.time())   (or, for a batch,
                        node.receive(datagram, when, out) into one Output)
    at node.next_deadline():  out = node.tick(time.time())
    each time:          send out.send to the group; apply out.apply in order
                        (marked replicated); log out.events
    to stop:            drain with tick() until node.drained() or drain_timeout,
                        then send node.leave(time.time()).send

``now`` is seconds since the epoch (``time.time()``): datagrams carry it
as their timestamp, and the same value drives the node's timers, so a
step of the wall clock moves them too (a step back delays them by as much;
run NTP, which slews).

A node is a sender (:class:`.sender.Sender`) and a receiver of every other
member's stream (:class:`.receiver.Stream`), and it keeps the membership:
a peer is *joined* when first heard, *alive* once its stream is placed,
*silent* after ``peer_silent`` without a datagram, *gone* after
``peer_gone`` or a LEAVE; a gone peer's stream is forgotten (whatever was
missing is given up), and its id is refused for ``timestamp_window`` so a
replayed datagram cannot start it again (counted as ``departed``). A
replay of a live sender's datagram is a duplicate (counted per peer) and
one older than the window is ``stale``. A restarted daemon has a new
sender id, hence a new stream.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from .config import ReplicatorConfig
from .events import Output, PeerChanged, PeerState
from .protocol import (
    CacheOp,
    Data,
    Frame,
    Heartbeat,
    Leave,
    Nak,
    WireError,
    decode,
    encode_nak,
    max_nak_ranges,
)
from .receiver import Stream
from .sender import Sender

__all__ = ["Node", "Peer"]

log = logging.getLogger("sleigh.replicator.engine")


@dataclass
class Peer:
    """A member heard from, and its stream at this node."""

    stream: Stream
    state: PeerState
    first_heard: float
    last_heard: float


class Node:
    """Sender, receivers and membership of one daemon.

    :param secret: the cluster secret (at least 16 bytes).
    :param sender_id: this daemon's random non-zero 64-bit id.
    :param now: the daemon's start time, seconds since the epoch.
    :param rng: the only source of randomness (NAK delays).
    :param resume: per sender, the next sequence this host's previous daemon would have
        delivered (:meth:`positions` when it stopped).
    """

    def __init__(
        self,
        config: ReplicatorConfig,
        secret: bytes,
        *,
        sender_id: int,
        now: float,
        rng: random.Random,
        resume: Mapping[int, int] | None = None,
    ) -> None:
        if len(secret) < 16:
            raise ValueError("the cluster secret must be at least 16 bytes")
        self.config = config
        self.sender_id = sender_id
        self.started = now
        self.sender = Sender(config, secret, sender_id, now)
        self.peers: dict[int, Peer] = {}
        #: Datagrams dropped, by reason (:attr:`.protocol.WireError.reason`, or ``departed``:
        #: from a sender that said LEAVE or went silent for ``peer_gone``).
        self.rejected: Counter[str] = Counter()
        self.own = 0  # our own datagrams looped back by the kernel
        self._secret = secret
        self._rng = rng
        self._departed: dict[int, float] = {}
        self._max_ranges = max_nak_ranges(config.mtu_payload)
        self._resume = dict(resume or {})

    # -- the daemon's calls --------------------------------------------------------------
    def publish(self, op: CacheOp, now: float) -> Output:
        """Send one local write to the group (paced: the rest goes from :meth:`tick`)."""
        return Output(send=self.sender.publish(op, now))

    def publish_many(self, ops: list[CacheOp], now: float) -> Output:
        """Send local writes in order, as :meth:`publish` of each, signing in one pass.

        A write whose key cannot fit a datagram is left out, counted
        (``unsendable``) and logged; the others go.
        """
        sender = self.sender
        enqueue = sender.enqueue
        for op in ops:
            try:
                enqueue(op)
            except ValueError as exc:
                sender.stats.unsendable += 1
                log.warning("not replicated: %s", exc)
        return Output(send=sender.due(now))

    def receive(self, datagram: bytes, now: float, out: Output | None = None) -> Output:
        """Take one datagram from the group; bad ones are counted in :attr:`rejected`."""
        out = Output() if out is None else out
        cfg = self.config
        try:
            frame = decode(
                datagram, self._secret, cfg.cluster_id, now, cfg.timestamp_window, cfg.mtu_payload
            )
        except WireError as exc:
            self.rejected[exc.reason] += 1
            log.debug("dropped a datagram: %s", exc)
            return out
        peer = self.peers.get(frame.sender)
        if type(frame) is Data and peer is not None and peer.state is PeerState.ALIVE:
            peer.last_heard = now  # the common case, in short
            peer.stream.on_data(frame, now, out)
            return out
        if frame.sender == self.sender_id:
            self.own += 1
            return out
        if frame.sender in self._departed:  # a straggler or a replay from a sender that left
            self.rejected["departed"] += 1
            return out
        self._dispatch(frame, now, out)
        return out

    def tick(self, now: float) -> Output:
        """Run every timer due at *now*: pacing, heartbeats, NAKs, give-ups, membership."""
        out = Output(send=self.sender.due(now))
        out.send.extend(self.sender.heartbeat(now))
        for peer in list(self.peers.values()):
            peer.stream.tick(now, out)
        self._membership(now, out)
        return out

    def next_deadline(self, now: float) -> float:
        """The latest time :meth:`tick` must be called next (it may be called earlier)."""
        times = [self.sender.next_heartbeat()]
        due = self.sender.next_due(now)
        if due is not None:
            times.append(due)
        for peer in self.peers.values():
            deadline = peer.stream.deadline()
            if deadline is not None:
                times.append(deadline)
            times.append(peer.last_heard + self._next_threshold(peer))
        if self._departed:
            times.append(min(self._departed.values()))
        return max(now, min(times))

    def drained(self) -> bool:
        """Nothing is left to send (new data or repairs)."""
        return self.sender.idle

    def positions(self) -> dict[int, int]:
        """Per sender whose stream is placed, the next sequence to deliver: where a daemon
        started after this one on the host resumes (see *resume*)."""
        return {
            sender: peer.stream.next
            for sender, peer in self.peers.items()
            if peer.stream.joined and not peer.stream.left
        }

    def leave(self, now: float) -> Output:
        """The LEAVE datagram; send it last, after draining."""
        return Output(send=[self.sender.leave(now)])

    # -- dispatch ------------------------------------------------------------------------
    def _dispatch(self, frame: Frame, now: float, out: Output) -> None:
        if isinstance(frame, Nak):
            if frame.target == self.sender_id:
                out.send.extend(self.sender.on_nak(frame, now))
            elif (target := self.peers.get(frame.target)) is not None:
                target.stream.on_foreign_nak(frame, now)
            self._touch(frame.sender, now, out)
            return
        peer = self._touch(frame.sender, now, out)
        stream = peer.stream
        if isinstance(frame, Data):
            stream.on_data(frame, now, out)
        elif isinstance(frame, Heartbeat):
            stream.on_heartbeat(frame, now, out)
            if peer.state is PeerState.JOINED:
                self._set_state(peer, PeerState.ALIVE, out)
        elif isinstance(frame, Leave):
            stream.on_leave(frame.high, now, out)
            self._forget(peer, now, out)

    def _touch(self, sender: int, now: float, out: Output) -> Peer:
        peer = self.peers.get(sender)
        if peer is None:
            stream = Stream(
                sender,
                self.config,
                self._rng,
                int(self.started * 1000),
                self._encode_nak,
                self._max_ranges,
                self._resume.pop(sender, None),
            )
            peer = self.peers[sender] = Peer(stream, PeerState.JOINED, now, now)
            out.events.append(PeerChanged(sender, None, PeerState.JOINED))
            log.info("peer %016x joined", sender)
        peer.last_heard = now
        if peer.state is PeerState.SILENT:
            self._set_state(peer, PeerState.ALIVE, out)
        return peer

    def _encode_nak(self, target: int, ranges: list[tuple[int, int]], now: float) -> bytes:
        cfg = self.config
        return encode_nak(self._secret, cfg.cluster_id, self.sender_id, now, target, ranges)

    # -- membership ----------------------------------------------------------------------
    def _membership(self, now: float, out: Output) -> None:
        cfg = self.config
        for peer in list(self.peers.values()):
            quiet = now - peer.last_heard
            if quiet >= cfg.peer_gone:
                peer.stream.abandon_all(now, out)
                self._forget(peer, now, out)
            elif quiet >= cfg.peer_silent and peer.state is not PeerState.SILENT:
                self._set_state(peer, PeerState.SILENT, out)
        expired = [s for s, until in self._departed.items() if until <= now]
        for sender in expired:
            del self._departed[sender]

    def _next_threshold(self, peer: Peer) -> float:
        if peer.state is PeerState.SILENT:
            return self.config.peer_gone
        return self.config.peer_silent

    def _set_state(self, peer: Peer, state: PeerState, out: Output) -> None:
        out.events.append(PeerChanged(peer.stream.sender, peer.state, state))
        log.info("peer %016x: %s -> %s", peer.stream.sender, peer.state.value, state.value)
        peer.state = state

    def _forget(self, peer: Peer, now: float, out: Output) -> None:
        self._set_state(peer, PeerState.GONE, out)
        del self.peers[peer.stream.sender]
        self._departed[peer.stream.sender] = now + self.config.timestamp_window

    # -- status --------------------------------------------------------------------------
    def snapshot(self, now: float) -> dict[str, object]:
        """Every counter, as plain JSON types, for ``sleigh replication status``."""
        peers = [
            {
                "sender": f"{sender:016x}",
                "state": peer.state.value,
                "since": peer.first_heard,
                "last_heard": round(now - peer.last_heard, 3),
                "high": peer.stream.high,
                "delivered": max(0, peer.stream.next - 1),
                "lag": peer.stream.lag,
                "lag_seconds": round(peer.stream.lag_seconds(now), 3),
                "repair_ms": round(peer.stream.repair_time * 1000, 3),
                **asdict(peer.stream.stats),
            }
            for sender, peer in sorted(self.peers.items())
        ]
        return {
            "sender": f"{self.sender_id:016x}",
            "sent": {
                **asdict(self.sender.stats),
                "high": self.sender.high,
                "low": self.sender.low,
                "held_bytes": self.sender.held_bytes,
                "backlog_bytes": self.sender.backlog,
            },
            "peers": peers,
            "rejected": dict(sorted(self.rejected.items())),
            "own": self.own,
        }
