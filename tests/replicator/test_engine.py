"""The protocol core driven by hand: strangers, replays, repair, give-up, pacing, status."""

from __future__ import annotations

import dataclasses
import gc
import hmac
import json
import random
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from sleigh.daemons.replicator.config import ReplicatorConfig
from sleigh.daemons.replicator.engine import Node
from sleigh.daemons.replicator.events import Output, PeerChanged, PeerState, Unrecoverable
from sleigh.daemons.replicator.protocol import (
    HEADER_SIZE,
    TAG_SIZE,
    CacheOp,
    Data,
    Heartbeat,
    Nak,
    Op,
    decode,
    encode_heartbeat,
    encode_nak,
)
from sleigh.daemons.replicator.receiver import _subtract
from sleigh.daemons.replicator.sim import EPOCH, LinkModel, Network

SECRET = b"sim-cluster-secret-0123456789abcdef"
CFG = ReplicatorConfig()


def _pair(config: ReplicatorConfig = CFG) -> tuple[Node, Node]:
    a = Node(config, SECRET, sender_id=0xA, now=EPOCH, rng=random.Random(1))
    b = Node(config, SECRET, sender_id=0xB, now=EPOCH, rng=random.Random(2))
    for datagram in a.tick(EPOCH).send:  # a's first heartbeat places its stream at b
        b.receive(datagram, EPOCH)
    return a, b


def _frame(node: Node, datagram: bytes) -> object:
    cfg = node.config
    return decode(datagram, SECRET, cfg.cluster_id, EPOCH, 3600, cfg.mtu_payload)


def _sequences(node: Node, datagrams: list[bytes]) -> list[int]:
    frames = [_frame(node, d) for d in datagrams]
    return [f.sequence for f in frames if isinstance(f, Data)]


def test_strangers_datagrams_are_counted_never_applied() -> None:
    a, b = _pair()
    good = a.publish(CacheOp(Op.SET, b"k", b"v"), EPOCH).send[0]
    forged = good[:-1] + bytes([good[-1] ^ 0x80])
    other_secret = Node(CFG, b"x" * 32, sender_id=0xC, now=EPOCH, rng=random.Random(3))
    foreign = other_secret.publish(CacheOp(Op.SET, b"k", b"evil"), EPOCH).send[0]
    other_cluster = (
        Node(
            dataclasses.replace(CFG, cluster_id=9),
            SECRET,
            sender_id=0xD,
            now=EPOCH,
            rng=random.Random(4),
        )
        .publish(CacheOp(Op.SET, b"k", b"evil"), EPOCH)
        .send[0]
    )
    out = Output()
    for datagram in (
        forged,
        foreign,
        good[:30],
        b"\0" * 2000,
        other_cluster,
        b"SLRP\x07" + good[5:],
    ):
        b.receive(datagram, EPOCH, out)
    b.receive(good, EPOCH + 11, out)  # outside the 10 s timestamp window
    assert out.apply == [] and out.send == []
    assert b.rejected == {
        "bad_mac": 2,
        "truncated": 1,
        "oversized": 1,
        "wrong_cluster": 1,
        "bad_version": 1,
        "stale": 1,
    }
    assert b.receive(good, EPOCH + 0.001).apply == [CacheOp(Op.SET, b"k", b"v", 0, 0xA)]


def test_a_replayed_datagram_is_applied_once() -> None:
    a, b = _pair()
    (datagram,) = a.publish(CacheOp(Op.SET, b"k", b"v"), EPOCH).send
    assert len(b.receive(datagram, EPOCH).apply) == 1
    assert b.receive(datagram, EPOCH + 5).apply == []
    assert b.peers[0xA].stream.stats.duplicates == 1


def test_a_departed_senders_datagrams_are_refused() -> None:
    a, b = _pair()
    (datagram,) = a.publish(CacheOp(Op.SET, b"k", b"v"), EPOCH).send
    out = b.receive(a.leave(EPOCH).send[0], EPOCH)
    assert PeerChanged(0xA, PeerState.ALIVE, PeerState.GONE) in out.events
    assert b.receive(datagram, EPOCH + 0.01).apply == []
    assert b.rejected["departed"] == 1


def test_own_datagrams_looped_back_are_ignored() -> None:
    a, _b = _pair()
    (datagram,) = a.publish(CacheOp(Op.SET, b"k", b"v"), EPOCH).send
    assert a.receive(datagram, EPOCH).apply == []
    assert a.own == 1 and not a.peers


def test_a_gap_inside_one_object_invalidates_just_that_key() -> None:
    cfg = dataclasses.replace(CFG, gap_policy="flush")
    a, b = _pair(cfg)
    b.receive(a.publish(CacheOp(Op.SET, b"before", b"x"), EPOCH).send[0], EPOCH)
    frags = a.publish(CacheOp(Op.SET, b"big", b"y" * 20_000), EPOCH).send
    frags += a.publish(CacheOp(Op.SET, b"after", b"z"), EPOCH).send
    out = Output()
    for i, datagram in enumerate(frags):
        if not 3 <= i <= 8:
            b.receive(datagram, EPOCH, out)
    assert [op.key for op in out.apply] == []  # "big" is incomplete, "after" waits behind it
    # The sender says it no longer holds anything before its high: nothing can be repaired.
    beat = encode_heartbeat(SECRET, cfg.cluster_id, 0xA, EPOCH, a.sender.high, a.sender.high, 0)
    b.receive(beat, EPOCH + 0.01, out)
    assert out.apply == [
        CacheOp(Op.INVALIDATE, b"big", origin=0xA),
        CacheOp(Op.SET, b"after", b"z", 0, 0xA),
    ]
    (gap,) = [e for e in out.events if isinstance(e, Unrecoverable)]
    assert (gap.keys, gap.unnamed, gap.flushed) == ((b"big",), False, False)


def test_a_gap_nobody_answers_is_given_up_after_give_up() -> None:
    cfg = dataclasses.replace(CFG, give_up=0.5)
    a, b = _pair(cfg)
    sent = [a.publish(CacheOp(Op.SET, b"k%d" % i, b"v"), EPOCH).send[0] for i in range(3)]
    b.receive(sent[0], EPOCH)
    b.receive(sent[2], EPOCH)
    now, naks = EPOCH, 0
    while now < EPOCH + 0.6:  # b's NAKs are never answered
        now = max(b.next_deadline(now), now + 0.0001)
        out = b.tick(now)
        naks += len(out.send)
        if out.apply:
            break
    assert naks >= 5
    assert out.apply == [CacheOp(Op.FLUSH, origin=0xA), CacheOp(Op.SET, b"k2", b"v", 0, 0xA)]
    assert now - EPOCH >= 0.5


def test_a_nak_made_before_the_last_repair_went_is_not_repaired_again() -> None:
    a, _b = _pair(CFG)
    for i in range(10):
        a.publish(CacheOp(Op.SET, b"k%d" % i, b"v" * 100), EPOCH)
    first = encode_nak(SECRET, CFG.cluster_id, 0xB, EPOCH + 0.001, 0xA, [(3, 4)])
    assert len(a.receive(first, EPOCH + 0.002).send) == 2
    # Another receiver asked at the same time, but its NAK comes in late (a busy sender).
    late = encode_nak(SECRET, CFG.cluster_id, 0xC, EPOCH + 0.0015, 0xA, [(3, 5)])
    assert _sequences(a, a.receive(late, EPOCH + 0.5).send) == [5]
    assert a.sender.stats.repeats_skipped == 2
    # Asked after the repair went: it was lost, so it goes again.
    after = encode_nak(SECRET, CFG.cluster_id, 0xB, EPOCH + 0.6, 0xA, [(3, 3)])
    assert _sequences(a, a.receive(after, EPOCH + 0.6).send) == [3]


def test_the_sender_repairs_once_per_holdoff_and_says_what_it_no_longer_holds() -> None:
    cfg = dataclasses.replace(CFG, retransmit_buffer=64 * 1024)
    a, _b = _pair(cfg)
    for i in range(100):
        a.publish(CacheOp(Op.SET, b"k%d" % i, b"v" * 1000), EPOCH)
    assert a.sender.held_bytes <= 64 * 1024 and a.sender.low > 1
    low, high = a.sender.low, a.sender.high
    nak = encode_nak(SECRET, cfg.cluster_id, 0xB, EPOCH, 0xA, [(high, high)])
    assert len(a.receive(nak, EPOCH + 0.01).send) == 1
    assert a.receive(nak, EPOCH + 0.0105).send == []  # within repair_holdoff
    again = encode_nak(SECRET, cfg.cluster_id, 0xB, EPOCH + 0.015, 0xA, [(high, high)])
    assert len(a.receive(again, EPOCH + 0.02).send) == 1
    old = encode_nak(SECRET, cfg.cluster_id, 0xB, EPOCH, 0xA, [(1, 2)])
    a.receive(old, EPOCH + 0.03)
    assert a.sender.stats.unavailable == 2
    beats = [_frame(a, d) for d in a.tick(EPOCH + 0.03).send]
    assert any(getattr(f, "low", None) == low for f in beats)


def test_a_repair_is_stamped_when_it_goes_and_nothing_held_is_tracked_by_the_gc() -> None:
    a, _b = _pair(CFG)
    for i in range(50):
        a.publish(CacheOp(Op.SET, b"k%d" % i, b"v" * 500), EPOCH)
    nak = encode_nak(SECRET, CFG.cluster_id, 0xB, EPOCH + 3, 0xA, [(7, 7)])
    (repair,) = a.receive(nak, EPOCH + 3).send
    frame = _frame(a, repair)
    assert isinstance(frame, Data) and (frame.sequence, frame.key) == (7, b"k6")
    assert frame.timestamp_ms == int((EPOCH + 3) * 1000)
    held = a.sender._held
    assert len(held) == 50 and not any(gc.is_tracked(v) for v in held.values())


def _heartbeats(node: Node, datagrams: list[bytes]) -> int:
    return sum(isinstance(_frame(node, d), Heartbeat) for d in datagrams)


def test_a_steady_stream_is_not_doubled_by_heartbeats_and_its_end_is_still_announced() -> None:
    a, _b = _pair(CFG)
    step, beats, now = 0.0015, 0, EPOCH  # 667 writes a second, one datagram each
    for i in range(200):
        now = EPOCH + i * step
        a.publish(CacheOp(Op.SET, b"k%d" % i, b"v" * 100), now)
        beats += _heartbeats(a, a.tick(now + step * 0.9).send)  # just before the next write
    # Only the first datagram, with no stream to judge yet, is followed by one
    # (heartbeat_min after each datagram would have made 200).
    assert beats == 1
    # The stream stops: its last datagram is announced within twice its gap.
    assert _heartbeats(a, a.tick(now + 2 * step + 1e-6).send) == 1


def test_after_a_burst_the_first_heartbeat_goes_at_heartbeat_min() -> None:
    a, _b = _pair(CFG)
    a.publish_many([CacheOp(Op.SET, b"k%d" % i, b"v" * 100) for i in range(20)], EPOCH + 1)
    assert _heartbeats(a, a.tick(EPOCH + 1 + CFG.heartbeat_min * 0.9).send) == 0
    assert _heartbeats(a, a.tick(EPOCH + 1 + CFG.heartbeat_min).send) == 1


def test_pacing_keeps_to_rate_and_burst() -> None:
    cfg = dataclasses.replace(CFG, rate=100_000, burst=10_000)
    a, _b = _pair(cfg)
    first = []
    for i in range(200):
        first += a.publish(CacheOp(Op.SET, b"k%d" % i, b"v" * 1000), EPOCH).send
    assert 0 < sum(map(len, first)) <= 10_000
    sent, now = sum(map(len, first)), EPOCH
    while now < EPOCH + 1.0:
        now = a.sender.next_due(now) or EPOCH + 1.0
        sent += sum(len(d) for d in a.sender.due(now) if isinstance(_frame(a, d), Data))
    assert sent <= 10_000 + 100_000 * 1.0 + 1200
    assert sent >= 100_000 * 0.9
    assert a.sender.backlog > 0


def test_membership_goes_silent_then_gone() -> None:
    cfg = dataclasses.replace(CFG, peer_silent=0.2, peer_gone=0.5, timestamp_window=0.3)
    net = Network(cfg, seed=1, link=LinkModel())
    a, b = net.add_host("a"), net.add_host("b")
    net.run(0.1)
    net.remove_host("a", leave=False)
    net.run(1.0)
    seen = [
        e.after for e in b.events if isinstance(e, PeerChanged) and e.sender == a.node.sender_id
    ]
    assert seen == [PeerState.JOINED, PeerState.ALIVE, PeerState.SILENT, PeerState.GONE]
    assert not b.node.peers


def test_snapshot_is_plain_json() -> None:
    net = Network(CFG, seed=2, link=LinkModel(loss=0.1))
    a, b = net.add_host("a"), net.add_host("b")
    net.run(0.05)
    for i in range(50):
        net.write("a", CacheOp(Op.SET, b"k%d" % i, b"v" * 100))
    net.run(0.2)
    snap = json.loads(json.dumps(b.node.snapshot(net.now)))
    (peer,) = snap["peers"]
    assert peer["sender"] == f"{a.node.sender_id:016x}" and peer["state"] == "alive"
    assert peer["ops"] == 50 and peer["lag"] == 0
    assert set(peer) >= {"lag_seconds", "missed", "recovered", "naks", "gaps", "lost"}
    assert snap["sent"]["heartbeats"] > 0 and snap["rejected"] == {}


def _resign(body: bytes) -> bytes:
    return body + hmac.digest(SECRET, body, "sha256")[:TAG_SIZE]


@settings(max_examples=200, deadline=None)
@given(
    junk=st.binary(max_size=1300),
    kind=st.sampled_from([1, 2, 3, 4, 9]),
    signed=st.booleans(),
    later=st.floats(0, 5),
)
def test_no_datagram_makes_the_node_raise(
    junk: bytes, kind: int, signed: bool, later: float
) -> None:
    """Random bytes, and random bodies under a valid header and MAC, are dropped or applied."""
    _a, b = _pair()
    header = encode_heartbeat(SECRET, CFG.cluster_id, 0xA, EPOCH, 0, 0, 0)[:HEADER_SIZE]
    datagram = _resign(header[:5] + bytes([kind]) + header[6:] + junk) if signed else junk
    out = b.receive(datagram, EPOCH + 0.001)
    out.extend(b.tick(EPOCH + later))
    out.extend(b.tick(b.next_deadline(EPOCH + later)))
    assert all(len(d) <= CFG.mtu_payload for d in out.send)
    json.dumps(b.snapshot(EPOCH + later))


def test_a_nak_for_an_absurd_range_costs_only_what_is_held() -> None:
    a, _b = _pair()
    for i in range(10):
        a.publish(CacheOp(Op.SET, b"k%d" % i, b"v"), EPOCH)
    nak = encode_nak(SECRET, CFG.cluster_id, 0xB, EPOCH, 0xA, [(1, 2**64 - 1)])
    assert len(a.receive(nak, EPOCH + 0.01).send) == 10


def test_data_heard_before_the_first_heartbeat_waits_for_it() -> None:
    a = Node(CFG, SECRET, sender_id=0xA, now=EPOCH, rng=random.Random(1))
    b = Node(CFG, SECRET, sender_id=0xB, now=EPOCH, rng=random.Random(2))
    beat = a.tick(EPOCH).send
    sent = [a.publish(CacheOp(Op.SET, b"k%d" % i, b"v"), EPOCH).send[0] for i in range(3)]
    out = Output()
    for datagram in sent[1:]:
        b.receive(datagram, EPOCH, out)
    assert out.apply == [] and b.peers[0xA].state is PeerState.JOINED
    for datagram in beat:
        b.receive(datagram, EPOCH + 0.001, out)
    assert out.apply == []  # 1 is missing: the stream started after b did, so 1 is b's
    b.receive(sent[0], EPOCH + 0.002, out)
    assert [op.key for op in out.apply] == [b"k0", b"k1", b"k2"]


def test_past_the_receive_window_datagrams_are_dropped_then_repaired() -> None:
    cfg = dataclasses.replace(CFG, receive_window=64)
    net = Network(cfg, seed=3, link=LinkModel())
    a, b = net.add_host("a"), net.add_host("b")
    net.run(0.05)
    net.block("a", "b")
    net.write("a", CacheOp(Op.SET, b"first", b"v"))
    net.unblock("a", "b")
    for i in range(200):
        net.write("a", CacheOp(Op.SET, b"k%d" % i, b"v" * 100))
    net.run(0.5)
    assert b.cache == a.cache
    stream = b.node.peers[a.node.sender_id].stream
    assert stream.stats.beyond_window > 0 and stream.stats.gaps == 0


@settings(max_examples=200, deadline=None)
@given(
    frames=st.lists(
        st.tuples(
            st.integers(1, 40),  # sequence
            st.integers(0, 5),  # fragment index
            st.sampled_from([1, 2, 3, 2**32 - 1]),  # fragment count
            st.integers(0, 3000),  # value length
            st.integers(0, 6),  # operation
            st.binary(max_size=8),  # key
            st.binary(max_size=40),  # chunk
        ),
        max_size=30,
    ),
    beat=st.tuples(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1)),
)
def test_well_signed_but_inconsistent_data_never_breaks_a_stream(
    frames: list[tuple[int, int, int, int, int, bytes, bytes]], beat: tuple[int, int]
) -> None:
    """A member with a bug sends nonsense: it is dropped or invalidated, and nothing raises."""
    _a, b = _pair()
    head = struct.Struct(">4sBBHIQQQIIIBHQ")
    out = Output()
    b.receive(encode_heartbeat(SECRET, CFG.cluster_id, 0xA, EPOCH, *beat, 0), EPOCH, out)
    for seq, index, count, length, op, key, chunk in frames:
        fixed = head.pack(
            b"SLRP",
            1,
            1,
            0,
            CFG.cluster_id,
            0xA,
            int(EPOCH * 1000),
            seq,
            index,
            count,
            length,
            op,
            len(key),
            0,
        )
        b.receive(_resign(fixed + key + chunk), EPOCH, out)
    for step in (0.01, 1.0, 3.0):
        out.extend(b.tick(EPOCH + step))
    assert all(op.op in Op for op in out.apply)
    json.dumps(b.snapshot(EPOCH + 3))


@settings(max_examples=200, deadline=None)
@given(
    missing=st.sets(st.integers(1, 60)),
    cover=st.lists(st.tuples(st.integers(1, 60), st.integers(0, 10)), max_size=8),
    limit=st.integers(1, 10),
)
def test_suppressed_ranges_are_subtracted_exactly(
    missing: set[int], cover: list[tuple[int, int]], limit: int
) -> None:
    ranges: list[tuple[int, int]] = []
    for seq in sorted(missing):
        if ranges and ranges[-1][1] == seq - 1:
            ranges[-1] = (ranges[-1][0], seq)
        else:
            ranges.append((seq, seq))
    spans = [(first, first + width, 0.0) for first, width in cover]
    covered = {s for first, last, _ in spans for s in range(first, last + 1)}
    want: list[tuple[int, int]] = []
    for seq in sorted(missing - covered):
        if want and want[-1][1] == seq - 1:
            want[-1] = (want[-1][0], seq)
        else:
            want.append((seq, seq))
    assert _subtract(ranges, spans, limit) == want[:limit]


def test_a_long_gap_keeps_little_state_per_datagram() -> None:
    a, b = _pair()
    a.publish(CacheOp(Op.SET, b"lost", b"v"), EPOCH)  # sequence 1 never reaches b
    out = Output()
    for i in range(5000):
        now = EPOCH + i * 0.0001  # 10,000 datagrams a second for half a second
        (datagram,) = a.publish(CacheOp(Op.SET, b"k%d" % i, b"v"), now).send
        b.receive(datagram, now, out)
    stream = b.peers[0xA].stream
    assert stream.lag == 5001 and out.apply == []
    assert len(stream._known) <= 501  # one entry per millisecond, not per datagram


def _naks(node: Node, datagrams: list[bytes]) -> list[list[tuple[int, int]]]:
    frames = [_frame(node, d) for d in datagrams]
    return [list(f.ranges) for f in frames if isinstance(f, Nak)]


def test_the_gap_that_holds_up_delivery_waits_on_the_quickest_recent_repair() -> None:
    """After repairs that took 30 ms and one that took 2 ms (a sender busy, then not),
    the head of the stream is asked for again within a few ms; gaps behind it wait
    on the average."""
    a, b = _pair()
    now = EPOCH
    sent = [a.publish(CacheOp(Op.SET, b"k%d" % i, b"v"), now).send[0] for i in range(40)]
    for gap, took in enumerate([0.03] * 7 + [0.002]):
        lost = 4 * gap + 1  # the head: everything before it was delivered
        for seq in range(lost + 1, lost + 4):
            b.receive(sent[seq - 1], now)
        now += 0.002  # past the NAK's random delay
        assert _naks(b, b.tick(now).send) == [[(lost, lost)]]
        now += took
        b.receive(sent[lost - 1], now)  # its repair
    stream = b.peers[0xA].stream
    assert 0.015 < stream.repair_time < 0.03
    # The head (33) and a gap behind it (35) go missing.
    for seq in (34, 36, 37):
        b.receive(sent[seq - 1], now)
    now += 0.002
    assert _naks(b, b.tick(now).send) == [[(33, 33), (35, 35)]]
    now += 0.0045  # 1.5 x 2 ms, and the largest random delay
    assert _naks(b, b.tick(now).send) == [[(33, 33)]]
