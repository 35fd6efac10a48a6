"""The receiving half of the protocol core: one :class:`Stream` per sender heard.

Sans-IO: methods take ``now`` and append to an :class:`.events.Output`.

A stream delivers its sender's DATA datagrams in sequence order, each
once: anything below the next expected sequence, or already held, is a
duplicate (this is also the replay check, with the timestamp window of
:func:`.protocol.decode` in front of it). Datagrams past a gap wait in a
bounded window (``receive_window``); fragments are joined as they are
delivered, since the fragments of one operation have consecutive numbers.

Joining: a stream is placed by its sender's first heartbeat. If this
daemon's predecessor on the host stopped cleanly while delivering it, it
resumes where that one stopped (the sequences in between are repaired or,
if the sender no longer holds them, given up as below). If the sender
started after this daemon did (give or take ``timestamp_window`` of clock
skew), every sequence from 1 is ours to receive; otherwise we join at the
present (the earliest datagram already held, or the heartbeat's highest
sequence + 1), because replaying an older sender's history could bring
back values that newer writes by other hosts replaced. Either way nothing
below the heartbeat's *low* is asked for: what the sender dropped before we
heard of it was never ours to lose.

Repair: a gap (the next sequence missing while later ones are known, from
data or a heartbeat's *high*) schedules a NAK after a random delay in
``[nak_delay_min, nak_delay_max]``. NAKs are multicast: a range another
receiver asked for, or that we asked for, is not asked again for
``nak_retry``, so one NAK usually serves every receiver. A receiver that
sees repairs come later than that (a busy sender, or itself behind) waits
one and a half times as long as they take instead (a moving average of the
time from a NAK to the repair of the first sequence it asked for; at most a
quarter of ``give_up``), so a slow round trip is not answered with the same
repairs again and again. The range at the head of the stream, which holds up
the delivery of everything behind it, waits on the quickest of the last
eight repairs instead: after a burst that kept the sender busy, the average
still remembers the burst, and a head whose repair was lost waited it out
again and again (under 20% loss between namespaces, 50 ms of a burst's
100 ms recovery was one head asked for every 20-35 ms); on a path that is
slow for good, the quickest repair is slow too.

Giving up: sequences below the sender's advertised *low*, gaps open for
``give_up``, and whatever a departed sender left missing are abandoned.
For each abandoned range the stream invalidates, at that point in the
order, the keys it can name: the operation being assembled when the gap
starts and the one whose later fragments follow it. If the range may hold
whole operations nobody heard a fragment of, their keys are unknown and
``gap_policy = flush`` issues a ``FLUSH`` (nothing left that may be wrong;
later writes apply on top), while ``keys`` leaves the rest to its TTL.
"""

from __future__ import annotations

import logging
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from .config import ReplicatorConfig
from .events import Output, Unrecoverable
from .protocol import CacheOp, Data, Heartbeat, Nak, Op

__all__ = ["NakEncoder", "Stream", "StreamStats"]

log = logging.getLogger("sleigh.replicator.receiver")

#: Signs a NAK to ``(target, ranges, now)``.
NakEncoder = Callable[[int, list[tuple[int, int]], float], bytes]

Range = tuple[int, int]

#: Sequences found within this time of each other share one "known since" entry, so a
#: long gap costs one entry a millisecond, not one per datagram (give-up may come 1 ms early).
_KNOWN_GRAIN = 0.001


@dataclass
class StreamStats:
    """What one sender's stream did at this receiver; counters since it was first heard."""

    received: int = 0  # DATA datagrams accepted (duplicates excluded)
    duplicates: int = 0
    missed: int = 0  # sequences found missing when later ones were known
    recovered: int = 0  # missing sequences that arrived later (repairs, reordering)
    beyond_window: int = 0  # datagrams dropped for being past receive_window
    naks: int = 0  # NAKs this receiver sent
    suppressed: int = 0  # other receivers' NAKs that covered what we missed
    ops: int = 0  # operations delivered
    gaps: int = 0  # unrecoverable ranges
    lost: int = 0  # sequences in them


class Stream:
    """One sender's stream as seen by this receiver.

    :param my_start_ms: when this daemon started, to decide where to join.
    :param make_nak: signs a NAK (see :data:`NakEncoder`).
    :param resume_at: where this daemon's predecessor on the host stopped delivering
        this stream (``None``: it did not hear it, or did not stop cleanly).
    """

    def __init__(
        self,
        sender: int,
        config: ReplicatorConfig,
        rng: random.Random,
        my_start_ms: int,
        make_nak: NakEncoder,
        max_ranges: int,
        resume_at: int | None = None,
    ) -> None:
        self.sender = sender
        self._resume_at = resume_at
        self.config = config
        self.stats = StreamStats()
        self.joined = False
        self.left = False
        self.next = 0  # next sequence to deliver, once joined
        self.high = 0  # highest sequence known to exist
        self.low_avail = 0  # lowest sequence the sender still holds
        self._rng = rng
        self._my_start_ms = my_start_ms
        self._make_nak = make_nak
        self._max_ranges = max_ranges
        self._pending: dict[int, Data] = {}
        self._asm: Data | None = None  # first fragment of the operation being joined
        self._chunks: list[bytes] = []
        self._skipping = True  # until a fragment 0 starts an operation
        self._known: deque[tuple[int, float]] = deque()  # (u, t): sequences <= u known since t
        self._nak_at: float | None = None
        self._fresh = False  # sequences newly found missing since the NAK was scheduled
        self._suppressed: list[tuple[int, int, float]] = []
        self._asked: deque[tuple[int, float]] = deque()  # (first sequence NAKed, when)
        self.repair_time = 0.0  # moving average, seconds from a NAK to its first repair
        self._recent: deque[float] = deque(maxlen=8)  # the last such times

    # -- input ---------------------------------------------------------------------------
    def on_data(self, d: Data, now: float, out: Output) -> None:
        """Take one DATA datagram; deliver what is now in order."""
        seq = d.sequence
        if seq == self.next and seq > self.high and d.count == 1 and not self._pending:
            self._in_order(d, out)  # the common case, in short
            return
        if not self.joined:
            if seq not in self._pending and len(self._pending) < self.config.receive_window:
                self._pending[seq] = d
            return
        if seq < self.next or seq in self._pending:
            self.stats.duplicates += 1
            return
        if seq >= self.next + self.config.receive_window:
            self.stats.beyond_window += 1
            self._saw(seq, now, held=False)
            return
        self.stats.received += 1
        if seq <= self.high:
            self.stats.recovered += 1
            if self._asked:
                self._repaired(seq, now)
        self._pending[seq] = d
        self._saw(seq, now)
        self._deliver(out)
        self._check_gap(now)

    def _in_order(self, d: Data, out: Output) -> None:
        """A one-fragment operation that is exactly the next expected, with no gap."""
        self.stats.received += 1
        self.high = d.sequence
        self.next = d.sequence + 1
        self._known.clear()
        self._nak_at = None
        self._asm, self._chunks, self._skipping = None, [], False
        if len(d.chunk) != (d.length if d.op is Op.SET else 0):
            out.apply.append(CacheOp(Op.INVALIDATE, d.key, origin=self.sender))
            return
        out.apply.append(CacheOp(d.op, d.key, d.chunk, d.expiry_ms, self.sender))
        self.stats.ops += 1

    def on_heartbeat(self, hb: Heartbeat, now: float, out: Output) -> None:
        """Learn the sender's highest and lowest held sequences; join on the first."""
        self.low_avail = max(self.low_avail, hb.low)
        if not self.joined:
            self._join(hb, now)
        self._saw(hb.high, now, held=False)
        self._deliver(out)
        self._give_up_due(now, out)
        self._check_gap(now)

    def on_leave(self, high: int, now: float, out: Output) -> None:
        """The sender stopped: nothing missing can come any more."""
        self.left = True
        if self.joined:
            self._saw(high, now, held=False)
            self._give_up_due(now, out)

    def on_foreign_nak(self, nak: Nak, now: float) -> None:
        """Another receiver NAKed this stream: hold our own NAK for those ranges."""
        until = now + self._retry()
        overlaps = False
        self._suppressed = [s for s in self._suppressed if s[2] > now]
        for first, last in nak.ranges:
            self._suppressed.append((first, last, until))
            overlaps = overlaps or (self.joined and first <= self.high and last >= self.next)
        if overlaps:
            self.stats.suppressed += 1

    def tick(self, now: float, out: Output) -> None:
        """Run the stream's timers: give-up, then the NAK."""
        if not self.joined:
            return
        self._give_up_due(now, out)
        if self._nak_at is not None and now >= self._nak_at:
            self._send_nak(now, out)

    def deadline(self) -> float | None:
        """When :meth:`tick` next has work, or ``None``."""
        if not self.joined or not self._gap():
            return None
        times = [self._nak_at] if self._nak_at is not None else []
        for upto, since in self._known:
            if upto >= self.next:
                times.append(since + self.config.give_up)
                break
        return min(times) if times else None

    def abandon_all(self, now: float, out: Output) -> None:
        """Give up on everything missing (the sender is gone)."""
        self.left = True
        if self.joined:
            self._give_up_due(now, out)

    # -- state ---------------------------------------------------------------------------
    @property
    def lag(self) -> int:
        """Sequences known to exist but not delivered yet."""
        return max(0, self.high - self.next + 1) if self.joined else len(self._pending)

    def lag_seconds(self, now: float) -> float:
        """How long the oldest missing sequence has been known missing."""
        if not self.joined or not self._gap():
            return 0.0
        for upto, since in self._known:
            if upto >= self.next:
                return now - since
        return 0.0

    # -- joining and delivery ------------------------------------------------------------
    def _join(self, hb: Heartbeat, now: float) -> None:
        skew_ms = int(self.config.timestamp_window * 1000)
        if self._resume_at is not None:
            # Our predecessor delivered up to here: what it missed since is ours to repair
            # or to report lost, and what it delivered is never delivered again.
            start = self._resume_at
        elif hb.started_ms >= self._my_start_ms - skew_ms:
            start = 1
        else:
            start = min([hb.high + 1, *self._pending])
        if self._resume_at is None:
            # What the sender dropped before we first heard of it was never ours to lose.
            start = max(start, hb.low)
        self._pending = {s: d for s, d in self._pending.items() if s >= start}
        self.joined = True
        self.next = start
        self.high = max([start - 1, *self._pending])
        self.stats.received += len(self._pending)
        self.stats.missed += self.high - start + 1 - len(self._pending)  # gaps among them
        if self.high >= start:
            self._known.append((self.high, now))

    def _saw(self, seq: int, now: float, held: bool = True) -> None:
        """Sequence *seq* exists (*held*: this receiver holds it; else it is missing too)."""
        if seq > self.high:
            missed = seq - max(self.high, self.next - 1) - held
            if missed > 0:
                self.stats.missed += missed
                self._fresh = True
            self.high = seq
            known = self._known
            if known and now - known[-1][1] < _KNOWN_GRAIN:  # one entry per grain: bounded
                known[-1] = (seq, known[-1][1])
            else:
                known.append((seq, now))

    def _gap(self) -> bool:
        return self.next <= self.high and self.next not in self._pending

    def _deliver(self, out: Output) -> None:
        pending = self._pending
        while self.next in pending:
            self._consume(pending.pop(self.next), out)
            self.next += 1
        known = self._known
        while known and known[0][0] < self.next:
            known.popleft()

    def _consume(self, d: Data, out: Output) -> None:
        if d.index == 0:
            self._asm, self._chunks, self._skipping = d, [d.chunk], False
        elif self._skipping:
            return
        else:
            head = self._asm
            if head is None or d.key != head.key or d.first != head.sequence:
                self._drop_assembly()
                return
            self._chunks.append(d.chunk)
        if d.index == d.count - 1:
            self._complete(out)

    def _complete(self, out: Output) -> None:
        head = self._asm
        assert head is not None
        value = b"".join(self._chunks) if head.op is Op.SET else b""
        self._drop_assembly(skip=False)
        if len(value) != (head.length if head.op is Op.SET else 0):
            log.warning(
                "sender %016x: operation at %d has a wrong length", self.sender, head.sequence
            )
            out.apply.append(CacheOp(Op.INVALIDATE, head.key, origin=self.sender))
            return
        out.apply.append(CacheOp(head.op, head.key, value, head.expiry_ms, self.sender))
        self.stats.ops += 1

    def _drop_assembly(self, skip: bool = True) -> None:
        self._asm, self._chunks, self._skipping = None, [], skip

    def _check_gap(self, now: float) -> None:
        if not self._gap():
            self._nak_at = None
        elif self._nak_at is None or self._fresh:
            # A new loss is asked for soon, not after the retry of older ones.
            soon = now + self._jitter()
            self._nak_at = soon if self._nak_at is None else min(self._nak_at, soon)
        self._fresh = False

    def _repaired(self, seq: int, now: float) -> None:
        """*seq*, missing, came: time the oldest NAK that began with it."""
        asked = self._asked
        while asked and asked[0][0] < seq:  # delivered or given up on without a sample
            asked.popleft()
        if not asked or asked[0][0] != seq:
            return
        took = now - asked[0][1]
        while asked and asked[0][0] == seq:
            asked.popleft()
        self.repair_time = took if not self.repair_time else 0.875 * self.repair_time + took / 8
        self._recent.append(took)

    def _retry(self, head: bool = False) -> float:
        """How long a NAKed range waits for its repair (see the module's docstring);
        *head*: the range that holds up delivery, which waits on the quickest recent repair."""
        cfg = self.config
        taken = min(self._recent) if head and self._recent else self.repair_time
        return min(max(cfg.nak_retry, 1.5 * taken), cfg.give_up / 4)

    def _jitter(self) -> float:
        return self._rng.uniform(self.config.nak_delay_min, self.config.nak_delay_max)

    # -- NAKs ----------------------------------------------------------------------------
    def _missing(self, upto: int) -> list[Range]:
        """Missing inclusive ranges from ``next`` to *upto*."""
        ranges: list[Range] = []
        cur = self.next
        for seq in sorted(s for s in self._pending if s <= upto):
            if seq > cur:
                ranges.append((cur, seq - 1))
            cur = seq + 1
        if cur <= upto:
            ranges.append((cur, upto))
        return ranges

    def _send_nak(self, now: float, out: Output) -> None:
        self._suppressed = [s for s in self._suppressed if s[2] > now and s[1] >= self.next]
        limit = min(self.high, self.next + self.config.receive_window - 1)
        ranges = _subtract(self._missing(limit), self._suppressed, self._max_ranges)
        if ranges:
            out.send.append(self._make_nak(self.sender, ranges, now))
            self.stats.naks += 1
            until = now + self._retry()
            # The head waits less: the rest waits behind it anyway.
            head = now + self._retry(head=True) if ranges[0][0] == self.next else until
            self._asked.append((ranges[0][0], now))
            waits = [head] + [until] * (len(ranges) - 1)
            self._suppressed.extend((a, b, t) for (a, b), t in zip(ranges, waits, strict=True))
            self._nak_at = min(until, head) + self._jitter()
        elif self._suppressed:
            self._nak_at = min(s[2] for s in self._suppressed) + self._jitter()
        else:
            self._nak_at = now + self._retry()

    # -- giving up -----------------------------------------------------------------------
    def _give_up_due(self, now: float, out: Output) -> None:
        upto = self.high if self.left else self.low_avail - 1
        deadline = now - self.config.give_up
        for known_upto, since in self._known:
            if since > deadline:
                break
            upto = max(upto, known_upto)
        if upto >= self.next and self._gap():
            self._abandon(min(upto, self.high), out)
            self._check_gap(now)

    def _abandon(self, upto: int, out: Output) -> None:
        lost = self._missing(upto)
        if not lost:
            return
        keys: list[bytes] = []
        unnamed = flushed = False
        for first, last in lost:
            while self.next < first:  # held datagrams before the range go first, in order
                self._consume(self._pending.pop(self.next), out)
                self.next += 1
            named, complete = self._named(first, last)
            self._drop_assembly()
            if not complete and self.config.gap_policy == "flush":
                out.apply.append(CacheOp(Op.FLUSH, origin=self.sender))
                flushed = True
            out.apply.extend(CacheOp(Op.INVALIDATE, k, origin=self.sender) for k in named)
            keys.extend(k for k in named if k not in keys)
            unnamed = unnamed or not complete
            self.stats.gaps += 1
            self.stats.lost += last - first + 1
            self.next = last + 1
        self._deliver(out)
        event = Unrecoverable(self.sender, lost[0][0], lost[-1][1], tuple(keys), unnamed, flushed)
        log.info(
            "sender %016x: sequences %d-%d unrecoverable (%d keys invalidated%s)",
            self.sender,
            event.first,
            event.last,
            len(keys),
            ", cache flushed" if flushed else "",
        )
        out.events.append(event)

    def _named(self, first: int, last: int) -> tuple[list[bytes], bool]:
        """Keys of operations overlapping ``first..last``, and whether they cover it all."""
        spans: list[tuple[int, int, bytes]] = []
        head = self._asm
        if head is not None and head.last >= first:
            spans.append((head.first, head.last, head.key))
        after = self._pending.get(last + 1)
        if after is not None and after.first <= last:
            spans.append((after.first, after.last, after.key))
        covered = first
        for a, b, _key in sorted(spans):
            if a <= covered:
                covered = max(covered, b + 1)
        return list(dict.fromkeys(key for _a, _b, key in spans)), covered > last


def _subtract(ranges: list[Range], cover: list[tuple[int, int, float]], limit: int) -> list[Range]:
    """The first *limit* parts of *ranges* outside every ``(first, last, _)`` of *cover*.

    *ranges* are ascending and disjoint; *cover* may overlap and come in any order.
    """
    merged: list[list[int]] = []
    for first, last, _until in sorted(cover):
        if merged and first <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], last)
        else:
            merged.append([first, last])
    result: list[Range] = []
    j = 0
    for a, b in ranges:
        while j < len(merged) and merged[j][1] < a:
            j += 1
        cur, k = a, j
        while k < len(merged) and merged[k][0] <= b and cur <= b:
            if merged[k][0] > cur:
                result.append((cur, merged[k][0] - 1))
            cur = max(cur, merged[k][1] + 1)
            k += 1
        if cur <= b:
            result.append((cur, b))
        if len(result) >= limit:
            return result[:limit]
    return result
