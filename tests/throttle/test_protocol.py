"""The wire format: round trips, and bad frames answered without harm."""

from __future__ import annotations

import struct

import pytest

from sleigh.daemons.throttle import protocol as p
from sleigh.daemons.throttle.errors import ProtocolError


def test_a_request_round_trips_whole_and_byte_by_byte() -> None:
    frame = p.encode_request(p.CHECK, 7, [b"ip:1.2.3.4", b"login:1.2.3.4"], [1, 3])
    whole = p.Parser().feed(frame * 2)
    assert whole == [p.Request(p.CHECK, 7, [b"ip:1.2.3.4", b"login:1.2.3.4"], [1, 3])] * 2
    parser = p.Parser()
    got = []
    for byte in frame:
        got += parser.feed(bytes([byte]))
    assert got == whole[:1] and parser.state is p.State.HEADER


def test_show_reset_ping_stats() -> None:
    frames = b"".join(
        [
            p.encode_request(p.SHOW, 1, [b"ip:a"]),
            p.encode_request(p.RESET, 2, [b"ip:a"]),
            p.encode_request(p.PING, 3, []),
            p.encode_request(p.STATS, 4, []),
        ]
    )
    got = p.Parser().feed(frames)
    assert [(r.op, r.id) for r in got if isinstance(r, p.Request)] == [
        (p.SHOW, 1),
        (p.RESET, 2),
        (p.PING, 3),
        (p.STATS, 4),
    ]


@pytest.mark.parametrize(
    "body",
    [
        b"",  # no key count
        b"\x00",  # zero keys
        b"\x01\x05ip:a",  # key without cost
        b"\x01\x04ip:a\x01\x00\x00\x00extra",
        b"\x01\x04ipab\x01\x00\x00\x00",  # no colon
        b"\x01\x04ip:\x00\x01\x00\x00\x00",  # not printable
        b"\x01\x40" + b"ip:" + b"a" * 61 + b"\x01\x00\x00\x00",  # key too long
    ],
)
def test_bad_bodies_get_an_error_and_the_stream_goes_on(body: bytes) -> None:
    bad = p.PREFIX.pack(len(body) + 5, p.CHECK, 9) + body
    good = p.encode_request(p.PING, 10, [])
    got = p.Parser().feed(bad + good)
    assert isinstance(got[0], p.BadFrame) and got[0].id == 9 and not got[0].fatal
    assert isinstance(got[1], p.Request) and got[1].id == 10


def test_unknown_op() -> None:
    got = p.Parser().feed(p.PREFIX.pack(5, 99, 1))
    assert isinstance(got[0], p.BadFrame) and "unknown op" in got[0].message


def test_an_oversized_frame_closes_the_parser() -> None:
    parser = p.Parser()
    got = parser.feed(struct.pack("<IBI", 1 << 30, p.CHECK, 3) + b"x" * 100)
    assert isinstance(got[0], p.BadFrame) and got[0].fatal
    assert parser.state is p.State.CLOSED and parser.feed(b"more") == []


def test_reply_parser() -> None:
    data = p.encode_reply(1, p.DECISION.pack(1, 255, 3, 0)) + p.encode_reply(2, b"no", p.ERROR)
    assert p.ReplyParser().feed(data) == [
        (p.OK, 1, p.DECISION.pack(1, 255, 3, 0)),
        (p.ERROR, 2, b"no"),
    ]
    with pytest.raises(ProtocolError):
        p.ReplyParser().feed(struct.pack("<IBI", 2, 0, 0))


def test_replies_split_anywhere_come_out_whole_and_in_order() -> None:
    replies = [(p.OK, n, p.DECISION.pack(n % 2, 255, n, 0)) for n in range(5)] + [
        (p.ERROR, 9, b"bad frame")
    ]
    data = b"".join(p.encode_reply(rid, body, status) for status, rid, body in replies)
    for cut in range(1, len(data)):
        parser = p.ReplyParser()
        got = parser.feed(data[:cut]) + parser.feed(data[cut:])
        assert got == replies and not parser.buffer, cut
    parser, got = p.ReplyParser(), []
    for byte in data:
        got += parser.feed(bytes([byte]))
    assert got == replies and not parser.buffer


def test_a_kept_body_makes_the_same_frame() -> None:
    keys, costs = [b"ip:1.2.3.4", b"cpu:1.2.3.4"], [1, 0]
    for op in (p.CHECK, p.PEEK, p.CHARGE):
        body = p.request_body(op, keys, costs)
        frame = p.encode_frame(op, 41, body)
        assert frame == p.encode_request(op, 41, keys, costs)
        assert p.Parser().feed(frame) == [p.Request(op, 41, keys, costs)]
