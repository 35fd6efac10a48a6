"""The RESP2 request parser and reply encoders of sleigh-cached.

The parser tests run on both implementations (the ``parser_cls`` fixture): the
compiled ``sleigh.core_ext._resp.RequestParser`` and its pure-Python twin.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Iterable
from typing import Protocol

import hiredis
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from redis._parsers import Encoder
from redis.connection import PythonRespSerializer

from sleigh.daemons.cache.errors import CacheError
from sleigh.daemons.cache.protocol import (
    EMPTY_ARRAY,
    NULL_ARRAY,
    NULL_BULK,
    OK,
    PONG,
    ParserState,
    ProtocolError,
    RequestParserPy,
    RequestTooLarge,
    TooManyArguments,
    array,
    array_raw,
    bulk,
    error,
    integer,
    simple,
)

REQUEST_MAX = 1024
MAX_ARGS = 8


class Parser(Protocol):
    """What both request parsers provide."""

    @property
    def state(self) -> ParserState: ...

    @property
    def error(self) -> ProtocolError | None: ...

    @property
    def buffered(self) -> int: ...

    def feed(self, data: bytes) -> None: ...

    def commands(self) -> list[list[bytes]]: ...


class ParserFactory(Protocol):
    """A request parser class."""

    def __call__(self, *, request_max: int, max_args: int) -> Parser: ...


def load_native_parser() -> ParserFactory:
    """The compiled parser; fail if it is required, else skip, when it is missing."""
    try:
        module = importlib.import_module("sleigh.core_ext._resp")
    except ImportError as exc:
        if os.environ.get("SLEIGH_REQUIRE_EXTENSIONS") == "1":
            pytest.fail(f"SLEIGH_REQUIRE_EXTENSIONS=1 but the compiled parser is missing: {exc}")
        pytest.skip(f"compiled parser not built ({exc}); run setup.py build_ext --inplace")
    native: ParserFactory = module.RequestParser
    return native


# Module scope: hypothesis tests may not take function-scoped fixtures.
@pytest.fixture(scope="module", params=["native", "python"])
def parser_cls(request: pytest.FixtureRequest) -> ParserFactory:
    if request.param == "native":
        return load_native_parser()
    python: ParserFactory = RequestParserPy
    return python


def encode(command: Iterable[bytes]) -> bytes:
    """A request as redis-py sends it: an array of bulk strings."""
    args = list(command)
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%b\r\n" % (len(a), a) for a in args)


def parser(cls: ParserFactory, request_max: int = REQUEST_MAX, max_args: int = MAX_ARGS) -> Parser:
    return cls(request_max=request_max, max_args=max_args)


def drain(p: Parser) -> list[list[bytes]]:
    """The server's loop: call commands() until it returns nothing."""
    out: list[list[bytes]] = []
    while batch := p.commands():
        out += batch
    return out


def feed_all(p: Parser, *feeds: bytes) -> list[list[bytes]]:
    """Feed ``p`` each of ``feeds`` in turn, draining it after each."""
    out: list[list[bytes]] = []
    for data in feeds:
        p.feed(data)
        out += drain(p)
    return out


def parse(cls: ParserFactory, *feeds: bytes) -> list[list[bytes]]:
    return feed_all(parser(cls), *feeds)


def outcome(p: Parser, feeds: Iterable[bytes]) -> tuple[list[list[bytes]], str | None]:
    """Commands delivered, then the error's class and text (None if the stream is sound)."""
    out: list[list[bytes]] = []
    try:
        for data in feeds:
            p.feed(data)
            while batch := p.commands():
                out += batch
    except ProtocolError as exc:
        return out, f"{type(exc).__name__}: {exc}"
    return out, None


SET = encode([b"SET", b"k", b"v"])
STREAM = (
    SET
    + b"PING\r\n"
    + encode([b"SET", b"bin\r\n", b"\x00\r\n*1\r\n$3\r\n\x00"])
    + b"\r\n  \t\r\n"
    + b"*0\r\n*-1\r\n"
    + encode([b"GET", b""])
    + b"SET\tkey   value\n"
    + encode([b"DEL", *(b"k%d" % i for i in range(MAX_ARGS))])
)
STREAM_COMMANDS = [
    [b"SET", b"k", b"v"],
    [b"PING"],
    [b"SET", b"bin\r\n", b"\x00\r\n*1\r\n$3\r\n\x00"],
    [b"GET", b""],
    [b"SET", b"key", b"value"],
    [b"DEL", *(b"k%d" % i for i in range(MAX_ARGS))],
]


# -- request shapes -----------------------------------------------------------


def test_array_request(parser_cls: ParserFactory) -> None:
    assert parse(parser_cls, SET) == [[b"SET", b"k", b"v"]]


def test_inline_requests_split_on_spaces_and_tabs(parser_cls: ParserFactory) -> None:
    assert parse(parser_cls, b"PING\r\nSET  k\tv\r\nGET k\n") == [
        [b"PING"],
        [b"SET", b"k", b"v"],
        [b"GET", b"k"],
    ]


def test_blank_inline_lines_are_skipped(parser_cls: ParserFactory) -> None:
    assert parse(parser_cls, b"\r\n\n   \r\n\t\nPING\r\n") == [[b"PING"]]


def test_pipelined_mix_in_one_feed(parser_cls: ParserFactory) -> None:
    assert parse(parser_cls, STREAM) == STREAM_COMMANDS


def test_empty_and_null_arrays_are_skipped(parser_cls: ParserFactory) -> None:
    assert parse(parser_cls, b"*0\r\n*-1\r\n*-7\r\n" + SET) == [[b"SET", b"k", b"v"]]


def test_binary_safe_and_empty_arguments(parser_cls: ParserFactory) -> None:
    value = bytes(range(256)) + b"\r\n\r\n\x00"
    assert parse(parser_cls, encode([b"SET", b"", value])) == [[b"SET", b"", value]]


def test_requests_packed_by_redis_py(parser_cls: ParserFactory) -> None:
    # redis-py's own request encoder, cutting values over 6000 bytes into their own chunk.
    encoder = Encoder("utf-8", "strict", False)
    packer = PythonRespSerializer(6000, encoder.encode)
    big = bytes(range(256)) * 40
    chunks: list[bytes] = [
        *packer.pack("SET", "clé", big, "EX", 10),
        *packer.pack("MGET", "a", "b"),
    ]
    assert len(chunks) > 2  # the big value came apart from its headers
    assert feed_all(parser(parser_cls, request_max=20_000), *chunks) == [
        [b"SET", "clé".encode(), big, b"EX", b"10"],
        [b"MGET", b"a", b"b"],
    ]


def test_command_name_is_kept_as_sent(parser_cls: ParserFactory) -> None:
    assert parse(parser_cls, encode([b"gEt", b"k"]), b"get k\r\n") == [
        [b"gEt", b"k"],
        [b"get", b"k"],
    ]


@pytest.mark.parametrize("split", range(len(STREAM) + 1))
def test_split_at_every_byte(parser_cls: ParserFactory, split: int) -> None:
    assert parse(parser_cls, STREAM[:split], STREAM[split:]) == STREAM_COMMANDS


def test_byte_by_byte(parser_cls: ParserFactory) -> None:
    p = parser(parser_cls)
    assert feed_all(p, *(STREAM[i : i + 1] for i in range(len(STREAM)))) == STREAM_COMMANDS
    assert p.buffered == 0
    assert p.state is ParserState.IDLE


def test_large_argument_in_many_chunks(parser_cls: ParserFactory) -> None:
    value = b"x" * 100_000
    data = encode([b"SET", b"k", value])
    p = parser(parser_cls, request_max=200_000)
    got: list[list[bytes]] = []
    for i in range(0, len(data), 4096):
        p.feed(data[i : i + 4096])
        got += drain(p)
        if not got:
            assert p.buffered == i + len(data[i : i + 4096])
    assert got == [[b"SET", b"k", value]]
    assert p.buffered == 0


def test_buffered_counts_a_partial_request(parser_cls: ParserFactory) -> None:
    p = parser(parser_cls)
    p.feed(b"*2\r\n$3\r\nGET\r\n$5\r\nab")
    assert p.commands() == []
    assert p.buffered == len(b"*2\r\n$3\r\nGET\r\n$5\r\nab")
    assert p.state is ParserState.ARG_DATA
    p.feed(b"cde\r\n")
    assert p.commands() == [[b"GET", b"abcde"]]
    assert p.buffered == 0


def test_commands_without_new_data_returns_nothing(parser_cls: ParserFactory) -> None:
    p = parser(parser_cls)
    assert p.commands() == []
    p.feed(b"")
    assert p.commands() == []


# -- limits -------------------------------------------------------------------


def test_huge_multibulk_count_is_rejected_at_once(parser_cls: ParserFactory) -> None:
    p = parser(parser_cls)
    p.feed(b"*100000000\r\n")
    with pytest.raises(TooManyArguments, match="invalid multibulk length"):
        p.commands()


def test_huge_bulk_length_is_rejected_at_once(parser_cls: ParserFactory) -> None:
    p = parser(parser_cls)
    p.feed(b"*2\r\n$3\r\nGET\r\n")
    assert p.commands() == []
    assert p.buffered < 32
    p.feed(b"$2000000000\r\n")
    with pytest.raises(RequestTooLarge, match="invalid bulk length"):
        p.commands()
    assert p.buffered == 0


def test_count_that_cannot_fit_request_max_is_rejected_at_once(parser_cls: ParserFactory) -> None:
    p = parser(parser_cls, request_max=1024, max_args=1000)
    p.feed(b"*500\r\n")  # 500 arguments take at least 3000 bytes
    with pytest.raises(RequestTooLarge):
        p.commands()


def test_max_args_boundary_array(parser_cls: ParserFactory) -> None:
    ok = [b"DEL", *(b"k" for _ in range(MAX_ARGS))]
    assert parse(parser_cls, encode(ok)) == [ok]
    with pytest.raises(TooManyArguments):
        parse(parser_cls, encode([*ok, b"k"]))


def test_max_args_boundary_inline(parser_cls: ParserFactory) -> None:
    ok = b"DEL" + b" k" * MAX_ARGS
    assert parse(parser_cls, ok + b"\r\n") == [ok.split()]
    with pytest.raises(TooManyArguments):
        parse(parser_cls, ok + b" k\r\n")


@pytest.mark.parametrize("split", [False, True])
def test_request_max_boundary_array(parser_cls: ParserFactory, split: bool) -> None:
    overhead = len(encode([b"SET", b"k", b"v" * 100])) - 100  # a 3-digit length, as below
    exact = encode([b"SET", b"k", b"v" * (REQUEST_MAX - overhead)])
    over = encode([b"SET", b"k", b"v" * (REQUEST_MAX - overhead + 1)])
    assert len(exact) == REQUEST_MAX

    def feeds(data: bytes) -> list[bytes]:
        return [data[:5], data[5:]] if split else [data]

    assert len(parse(parser_cls, *feeds(exact))[0][2]) == REQUEST_MAX - overhead
    with pytest.raises(RequestTooLarge):
        parse(parser_cls, *feeds(over))


def test_request_max_boundary_inline(parser_cls: ParserFactory) -> None:
    line = b"GET " + b"k" * (REQUEST_MAX - 6) + b"\r\n"
    assert len(line) == REQUEST_MAX
    assert parse(parser_cls, line) == [line.split()]
    with pytest.raises(RequestTooLarge, match="too big inline request"):
        parse(parser_cls, b"x" + line)


def test_endless_inline_line_is_rejected_at_request_max(parser_cls: ParserFactory) -> None:
    p = parser(parser_cls)
    fed = 0
    while fed + 100 < REQUEST_MAX:
        p.feed(b"a" * 100)
        fed += 100
        assert p.commands() == []
        assert p.buffered == fed
    p.feed(b"a" * 100)
    with pytest.raises(RequestTooLarge, match="too big inline request"):
        p.commands()


@pytest.mark.parametrize("chunks", [1, 2])
def test_inline_line_without_newline_at_exactly_request_max(
    parser_cls: ParserFactory, chunks: int
) -> None:
    p = parser(parser_cls)
    p.feed(b"a" * (REQUEST_MAX - 1))
    assert p.commands() == []
    fresh = parser(parser_cls)
    data = b"a" * REQUEST_MAX
    if chunks == 1:
        fresh.feed(data)
    else:
        fresh.feed(data[:10])
        assert fresh.commands() == []
        fresh.feed(data[10:])
    with pytest.raises(RequestTooLarge):
        fresh.commands()


def test_endless_header_line_is_rejected(parser_cls: ParserFactory) -> None:
    p = parser(parser_cls)
    p.feed(b"*" + b"1" * 40)
    with pytest.raises(ProtocolError, match="invalid multibulk length"):
        p.commands()


# -- garbage ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"*1\r\n:1\r\n", "expected '$', got ':'"),
        (b"*1\r\n+OK\r\n", "expected '$', got '+'"),
        (b"*1\r\n*1\r\n$1\r\na\r\n", "expected '$', got '*'"),
        (b"*1\r\n\x00", "expected '$', got '\\x00'"),
        (b"*1\r\n$-1\r\n", "invalid bulk length"),
        (b"*1\r\n$-2\r\n", "invalid bulk length"),
        (b"*1\r\n$x\r\n", "invalid bulk length"),
        (b"*1\r\n$\r\n", "invalid bulk length"),
        (b"*1\r\n$03\r\nabc\r\n", "invalid bulk length"),
        (b"*1\r\n$+3\r\nabc\r\n", "invalid bulk length"),
        (b"*1\r\n$ 3\r\nabc\r\n", "invalid bulk length"),
        (b"*abc\r\n", "invalid multibulk length"),
        (b"*\r\n", "invalid multibulk length"),
        (b"*1_0\r\n", "invalid multibulk length"),
        (b"*1\r\n$3\r\nabcXY", "expected '\\r\\n' after bulk data"),
    ],
)
def test_malformed_requests(parser_cls: ParserFactory, data: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=re.escape(message)) as caught:
        parse(parser_cls, data)
    assert str(caught.value).startswith("Protocol error: ")
    assert isinstance(caught.value, CacheError)


def test_commands_before_the_bad_one_come_first(parser_cls: ParserFactory) -> None:
    p = parser(parser_cls)
    p.feed(SET + b"PING\r\n" + b"*1\r\n:1\r\n" + SET)
    assert p.commands() == [[b"SET", b"k", b"v"], [b"PING"]]
    assert p.state is ParserState.BROKEN
    assert isinstance(p.error, ProtocolError)
    with pytest.raises(ProtocolError, match="expected '\\$'") as first:
        p.commands()
    with pytest.raises(ProtocolError) as again:
        p.commands()
    assert again.value is first.value is p.error


def test_broken_parser_discards_what_is_fed(parser_cls: ParserFactory) -> None:
    p = parser(parser_cls)
    p.feed(b"*1\r\n:1\r\n")
    with pytest.raises(ProtocolError):
        p.commands()
    p.feed(SET)
    assert p.buffered == 0
    with pytest.raises(ProtocolError):
        p.commands()


def test_bad_request_split_fails_the_same_way(parser_cls: ParserFactory) -> None:
    data = SET + b"*2\r\n$3\r\nGET\r\n$1\r\nkXY" + SET
    whole = outcome(parser(parser_cls), [data])
    assert whole == ([[b"SET", b"k", b"v"]], "ProtocolError: " + _CRLF_MESSAGE)
    assert outcome(parser(parser_cls), [data[i : i + 1] for i in range(len(data))]) == whole


_CRLF_MESSAGE = "Protocol error: expected '\\r\\n' after bulk data"


def test_limits_must_be_positive(parser_cls: ParserFactory) -> None:
    with pytest.raises(ValueError):
        parser_cls(request_max=0, max_args=1)
    with pytest.raises(ValueError):
        parser_cls(request_max=1, max_args=0)


# -- properties ---------------------------------------------------------------

_ARGS = st.lists(st.binary(max_size=40), min_size=1, max_size=6)
_INLINE_WORD = st.binary(min_size=1, max_size=12).filter(lambda b: b.split() == [b])


@st.composite
def request_streams(draw: st.DrawFn) -> tuple[bytes, list[list[bytes]]]:
    """Requests (arrays and inline) concatenated, with the commands they carry."""
    data = b""
    commands: list[list[bytes]] = []
    for _ in range(draw(st.integers(0, 8))):
        if draw(st.booleans()):
            command = draw(_ARGS)
            data += encode(command)
        else:
            command = draw(st.lists(_INLINE_WORD, min_size=1, max_size=6))
            if command[0].startswith(b"*"):
                command[0] = b"X" + command[0]
            data += b" ".join(command) + draw(st.sampled_from([b"\r\n", b"\n"]))
        commands.append(command)
    return data, commands


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


@settings(max_examples=300, deadline=None)
@given(stream=request_streams(), cuts=st.lists(st.integers(0, 10_000), max_size=12))
def test_round_trip(
    parser_cls: ParserFactory, stream: tuple[bytes, list[list[bytes]]], cuts: list[int]
) -> None:
    data, commands = stream
    p = parser(parser_cls, request_max=10_000, max_args=10)
    assert feed_all(p, *split(data, cuts)) == commands
    assert p.buffered == 0


_TOKENS = st.sampled_from(
    [
        *b"* $ \r\n \r \n 0 1 2 3 9 -1 - + : abc \x00 99999999999 *9\r\n $70\r\n".split(b" "),
        *(b" ", b"\t", b"*2\r\n", b"$3\r\n", b"*1\r\n$1\r\n"),
    ]
)
_GARBAGE = st.lists(st.one_of(_TOKENS, st.binary(max_size=8), _ARGS.map(encode)), max_size=60).map(
    b"".join
)


@settings(max_examples=500, deadline=None)
@given(data=_GARBAGE, cuts=st.lists(st.integers(0, 10_000), max_size=8))
def test_fuzz_only_protocol_errors_and_the_split_does_not_matter(
    parser_cls: ParserFactory, data: bytes, cuts: list[int]
) -> None:
    whole = outcome(parser(parser_cls, request_max=64, max_args=4), [data])
    assert outcome(parser(parser_cls, request_max=64, max_args=4), split(data, cuts)) == whole
    for command in whole[0]:
        assert command
        assert all(type(arg) is bytes for arg in command)


@settings(max_examples=100, deadline=None)
@given(data=_GARBAGE)
def test_a_fresh_parser_after_an_error_works(parser_cls: ParserFactory, data: bytes) -> None:
    broken = parser(parser_cls)
    broken.feed(b"*1\r\n:1\r\n" + data)
    with pytest.raises(ProtocolError):
        broken.commands()
    broken.feed(SET)
    with pytest.raises(ProtocolError):
        broken.commands()
    assert parse(parser_cls, SET) == [[b"SET", b"k", b"v"]]


# -- replies ------------------------------------------------------------------


def read_reply(data: bytes) -> object:
    reader = hiredis.Reader()
    reader.feed(data)
    reply = reader.gets()
    assert reader.gets() is False, "exactly one reply"
    return reply


def test_constants() -> None:
    assert (OK, PONG, NULL_BULK, NULL_ARRAY, EMPTY_ARRAY) == (
        b"+OK\r\n",
        b"+PONG\r\n",
        b"$-1\r\n",
        b"*-1\r\n",
        b"*0\r\n",
    )
    assert read_reply(NULL_BULK) is None
    assert read_reply(NULL_ARRAY) is None
    assert read_reply(EMPTY_ARRAY) == []


def test_simple() -> None:
    assert simple("OK") == OK
    assert simple("QUEUED café") == "+QUEUED café\r\n".encode()
    assert read_reply(simple("PONG")) == b"PONG"
    for bad in ("a\rb", "a\nb"):
        with pytest.raises(ValueError):
            simple(bad)


@pytest.mark.parametrize(
    ("text", "wire"),
    [
        ("WRONGTYPE Operation against a key", b"-WRONGTYPE Operation against a key\r\n"),
        ("ERR syntax error", b"-ERR syntax error\r\n"),
        ("OOM", b"-OOM\r\n"),
        ("Protocol error: bad", b"-ERR Protocol error: bad\r\n"),
        ("unknown command 'x'", b"-ERR unknown command 'x'\r\n"),
        ("Err lower", b"-ERR Err lower\r\n"),
        ("ERR2 digits", b"-ERR ERR2 digits\r\n"),
        ("ERR line\r\nbreak", b"-ERR line  break\r\n"),
        ("", b"-ERR\r\n"),
    ],
)
def test_error(text: str, wire: bytes) -> None:
    assert error(text) == wire
    reply = read_reply(wire)
    assert isinstance(reply, hiredis.ReplyError)


def test_integer() -> None:
    assert integer(0) == b":0\r\n"
    assert integer(-42) == b":-42\r\n"
    assert read_reply(integer(2**62)) == 2**62


def test_bulk() -> None:
    assert bulk(b"") == b"$0\r\n\r\n"
    assert bulk(None) == NULL_BULK
    assert bulk(b"a\r\nb") == b"$4\r\na\r\nb\r\n"
    assert bulk(bytearray(b"xyz")) == b"$3\r\nxyz\r\n"
    assert bulk(memoryview(b"0123456789")[2:5]) == b"$3\r\n234\r\n"
    assert read_reply(bulk(b"\x00\r\n")) == b"\x00\r\n"


def test_array() -> None:
    assert array([]) == EMPTY_ARRAY
    assert array([b"a", None, b""]) == b"*3\r\n$1\r\na\r\n$-1\r\n$0\r\n\r\n"
    assert read_reply(array([b"a", None, b""])) == [b"a", None, b""]


def test_array_raw_nests() -> None:
    scan = array_raw([bulk(b"17"), array([b"k1", b"k2"])])
    assert scan == b"*2\r\n$2\r\n17\r\n*2\r\n$2\r\nk1\r\n$2\r\nk2\r\n"
    info = array_raw([array_raw([bulk(b"get"), integer(2), array_raw([simple("readonly")])])])
    assert read_reply(info) == [[b"get", 2, [b"readonly"]]]
    assert array_raw([]) == EMPTY_ARRAY


@settings(max_examples=200, deadline=None)
@given(items=st.lists(st.one_of(st.none(), st.binary(max_size=50)), max_size=20))
def test_array_is_read_back_by_hiredis(items: list[bytes | None]) -> None:
    assert read_reply(array(items)) == items
    assert read_reply(array_raw([bulk(x) for x in items])) == items
