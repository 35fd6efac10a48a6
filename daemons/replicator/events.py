"""What the protocol core hands back to the daemon: datagrams, cache operations, events.

Every call into :class:`.engine.Node` returns one :class:`Output`. The
daemon sends ``send`` (each a whole datagram, never over ``mtu_payload``)
to the group, applies ``apply`` to the local cache *in order* and marked
as replicated (so ``sleigh-cached`` does not publish it again), and logs
or counts ``events``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from .protocol import CacheOp

__all__ = [
    "Event",
    "Output",
    "PeerChanged",
    "PeerState",
    "Unrecoverable",
]


class PeerState(enum.Enum):
    """A peer, as known from what it sends (heartbeats at least)."""

    JOINED = "joined"  # heard of for the first time; its stream not yet placed
    ALIVE = "alive"  # heard from within peer_silent
    SILENT = "silent"  # nothing for peer_silent
    GONE = "gone"  # nothing for peer_gone, or it said LEAVE: its stream is forgotten


@dataclass(frozen=True, slots=True)
class PeerChanged:
    """Peer *sender* went from *before* (``None``: unknown) to *after*."""

    sender: int
    before: PeerState | None
    after: PeerState


@dataclass(frozen=True, slots=True)
class Unrecoverable:
    """Sequences *first* to *last* of *sender* will never arrive.

    :param keys: keys named by fragments heard of the lost operations; an
        ``INVALIDATE`` of each is in the same :class:`Output`.
    :param unnamed: some lost datagrams belong to operations nobody heard
        a fragment of (their keys are unknown).
    :param flushed: a ``FLUSH`` was issued for them (``gap_policy = flush``).
    """

    sender: int
    first: int
    last: int
    keys: tuple[bytes, ...]
    unnamed: bool
    flushed: bool


Event = PeerChanged | Unrecoverable


@dataclass(slots=True)
class Output:
    """Datagrams to send, operations to apply in order, events to log."""

    send: list[bytes] = field(default_factory=list)
    apply: list[CacheOp] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    def extend(self, other: Output) -> None:
        """Append *other*'s items after this one's."""
        self.send.extend(other.send)
        self.apply.extend(other.apply)
        self.events.extend(other.events)
