"""The replication wire format: round trips, every rejection, fragmentation within the MTU."""

from __future__ import annotations

import dataclasses
import hmac
import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sleigh.daemons.replicator.config import ReplicatorConfig
from sleigh.daemons.replicator.engine import Node
from sleigh.daemons.replicator.protocol import (
    DATA_OVERHEAD,
    HEADER_SIZE,
    TAG_SIZE,
    BadMac,
    BadMagic,
    BadVersion,
    CacheOp,
    Data,
    Heartbeat,
    Leave,
    Malformed,
    Nak,
    Op,
    Oversized,
    Stale,
    Truncated,
    WireError,
    WrongCluster,
    decode,
    encode_data,
    encode_heartbeat,
    encode_leave,
    encode_nak,
    fragment,
    max_nak_ranges,
    restamp,
)
from sleigh.daemons.runtime.config import ConfigError

SECRET = b"0123456789abcdef0123456789abcdef"
NOW = 1_700_000_000.0
CLUSTER = 7


def _decode(datagram: bytes, *, secret: bytes = SECRET, now: float = NOW) -> object:
    return decode(datagram, secret, CLUSTER, now, 10.0, 1200)


def _data(value: bytes = b"value", key: bytes = b"key") -> bytes:
    (frag,) = fragment(CacheOp(Op.SET, key, value, 1_700_000_100_000), 1, 1200)
    return encode_data(SECRET, CLUSTER, 42, NOW, frag)


def _resign(signed_part: bytes) -> bytes:
    return signed_part + hmac.digest(SECRET, signed_part, "sha256")[:TAG_SIZE]


def test_data_round_trip() -> None:
    frame = _decode(_data(b"hello"))
    assert frame == Data(
        42, int(NOW * 1000), 1, 0, 1, 5, Op.SET, b"key", 1_700_000_100_000, b"hello"
    )


def test_a_restamped_datagram_is_the_datagram_made_then() -> None:
    (frag,) = fragment(CacheOp(Op.SET, b"key", b"value" * 50, 1_700_000_100_000), 9, 1200)
    first = encode_data(SECRET, CLUSTER, 42, NOW, frag)
    later = restamp(SECRET, first, NOW + 5.5)
    assert later == encode_data(SECRET, CLUSTER, 42, NOW + 5.5, frag)
    decoded = _decode(first)
    assert isinstance(decoded, Data)
    assert _decode(later, now=NOW + 5.5) == dataclasses.replace(
        decoded, timestamp_ms=int((NOW + 5.5) * 1000)
    )
    with pytest.raises(Stale):
        _decode(first, now=NOW + 20)


def test_nak_heartbeat_leave_round_trip() -> None:
    nak = encode_nak(SECRET, CLUSTER, 3, NOW, 42, [(1, 5), (9, 9)])
    assert _decode(nak) == Nak(3, int(NOW * 1000), 42, ((1, 5), (9, 9)))
    beat = encode_heartbeat(SECRET, CLUSTER, 3, NOW, 100, 50, 123)
    assert _decode(beat) == Heartbeat(3, int(NOW * 1000), 100, 50, 123)
    assert _decode(encode_leave(SECRET, CLUSTER, 3, NOW, 77)) == Leave(3, int(NOW * 1000), 77)


def test_a_nak_as_large_as_allowed_fits_the_mtu() -> None:
    n = max_nak_ranges(1200)
    datagram = encode_nak(SECRET, CLUSTER, 3, NOW, 42, [(i * 3 + 1, i * 3 + 2) for i in range(n)])
    assert len(datagram) <= 1200
    assert isinstance(_decode(datagram), Nak)


def _flip_payload_bit(datagram: bytes) -> bytes:
    changed = bytearray(datagram)
    changed[HEADER_SIZE + 3] ^= 1
    return bytes(changed)


@pytest.mark.parametrize(
    ("datagram", "error", "reason"),
    [
        (b"x" * 1201, Oversized, "oversized"),
        (_data()[:HEADER_SIZE], Truncated, "truncated"),
        (b"GET / HTTP/1.0\r\n\r\n" + b"x" * 40, BadMagic, "bad_magic"),
        (_data()[:4] + b"\x02" + _data()[5:], BadVersion, "bad_version"),
        (_flip_payload_bit(_data()), BadMac, "bad_mac"),
        (_data()[:-1] + bytes([_data()[-1] ^ 1]), BadMac, "bad_mac"),
    ],
    ids=["oversized", "truncated", "magic", "version", "forged-body", "forged-tag"],
)
def test_each_kind_of_bad_datagram_is_refused(
    datagram: bytes, error: type[WireError], reason: str
) -> None:
    with pytest.raises(error) as caught:
        _decode(datagram)
    assert caught.value.reason == reason


def test_wrong_cluster_and_wrong_secret() -> None:
    (frag,) = fragment(CacheOp(Op.DELETE, b"k"), 1, 1200)
    other_cluster = encode_data(SECRET, CLUSTER + 1, 42, NOW, frag)
    with pytest.raises(WrongCluster):
        _decode(other_cluster)
    with pytest.raises(BadMac):
        _decode(_data(), secret=b"another secret of 32 bytes......")


def test_stale_in_both_directions() -> None:
    with pytest.raises(Stale):
        _decode(_data(), now=NOW + 10.5)
    with pytest.raises(Stale):
        _decode(_data(), now=NOW - 10.5)
    assert isinstance(_decode(_data(), now=NOW + 9.5), Data)


def test_well_signed_nonsense_is_malformed() -> None:
    unknown_type = _resign(_data()[:5] + b"\x09" + _data()[6:-TAG_SIZE])
    with pytest.raises(Malformed):
        _decode(unknown_type)
    header = encode_heartbeat(SECRET, CLUSTER, 3, NOW, 1, 1, 1)[:HEADER_SIZE]
    with pytest.raises(Malformed):
        _decode(_resign(header + b"\x00" * 5))
    nak = encode_nak(SECRET, CLUSTER, 3, NOW, 42, [(5, 1)])
    with pytest.raises(Malformed):
        _decode(nak)
    data_head = _data()[: HEADER_SIZE + 8]  # a DATA body cut after its sequence
    with pytest.raises(Malformed):
        _decode(_resign(data_head))
    bad_index = bytearray(_data()[:-TAG_SIZE])
    struct.pack_into(">I", bad_index, HEADER_SIZE + 8, 5)  # index 5 of 1
    with pytest.raises(Malformed):
        _decode(_resign(bytes(bad_index)))


@settings(max_examples=60, deadline=None)
@given(
    size=st.integers(0, 70_000),
    key=st.binary(min_size=1, max_size=511),
    mtu=st.integers(600, 9000),
)
def test_fragments_never_exceed_the_mtu_and_join_back(size: int, key: bytes, mtu: int) -> None:
    value = random.Random(size).randbytes(size)
    frags = fragment(CacheOp(Op.SET, key, value, 5), 10, mtu)
    datagrams = [encode_data(SECRET, CLUSTER, 42, NOW, f) for f in frags]
    assert all(len(d) <= mtu for d in datagrams)
    decoded = [decode(d, SECRET, CLUSTER, NOW, 1.0, mtu) for d in datagrams]
    assert all(isinstance(f, Data) for f in decoded)
    parts = [f for f in decoded if isinstance(f, Data)]
    assert [f.sequence for f in parts] == list(range(10, 10 + len(frags)))
    assert all(f.first == 10 and f.last == 9 + len(frags) and f.key == key for f in parts)
    assert b"".join(f.chunk for f in parts) == value


def test_a_full_mtu_fragment_is_exactly_the_mtu() -> None:
    frags = fragment(CacheOp(Op.SET, b"k", b"v" * 5000), 1, 1200)
    assert len(encode_data(SECRET, CLUSTER, 1, NOW, frags[0])) == 1200
    assert DATA_OVERHEAD + 1 + len(frags[0].chunk) == 1200


def test_a_key_too_long_for_the_mtu_is_refused() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        fragment(CacheOp(Op.SET, b"k" * 600, b"v"), 1, 600)


def test_objects_over_max_object_go_as_invalidations() -> None:
    cfg = ReplicatorConfig(max_object=1000)
    node = Node(cfg, SECRET, sender_id=5, now=NOW, rng=random.Random(1))
    (datagram,) = node.publish(CacheOp(Op.SET, b"big", b"x" * 1001), NOW).send
    frame = decode(datagram, SECRET, cfg.cluster_id, NOW, 1.0, 1200)
    assert isinstance(frame, Data)
    assert (frame.op, frame.key, frame.chunk) == (Op.INVALIDATE, b"big", b"")
    assert node.sender.stats.too_large == 1


def test_config_refuses_contradictions_naming_the_keys() -> None:
    with pytest.raises(ConfigError, match="nak_delay_min"):
        ReplicatorConfig(nak_delay_min=0.1, nak_delay_max=0.01)
    with pytest.raises(ConfigError, match="timestamp_window"):
        ReplicatorConfig(timestamp_window=60, peer_gone=30)
    with pytest.raises(ConfigError, match="not a multicast"):
        ReplicatorConfig(group="10.0.0.1")
    assert dataclasses.replace(ReplicatorConfig(), port=5000).port == 5000
