"""The compiled request parser against its pure-Python twin, and how one is chosen.

``test_protocol.py`` runs its whole parser suite on both implementations; this
module drives both with the same random streams, cut into the same random
chunks and read with the same calls, and requires every observation to agree:
the commands, the exception's class and text, ``state``, ``buffered`` and
``error`` after every call.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sleigh.daemons.cache import protocol
from sleigh.daemons.cache.protocol import ProtocolError, RequestParserPy
from tests.cache.test_protocol import (
    _ARGS,
    _GARBAGE,
    _INLINE_WORD,
    Parser,
    ParserFactory,
    encode,
    load_native_parser,
    parser,
)

#: One parser call: ("feed", data), ("commands", None).
Step = tuple[str, bytes | None]
#: What one call let the caller observe.
Seen = tuple[object, ...]


@pytest.fixture(scope="module")
def native_cls() -> ParserFactory:
    return load_native_parser()


def describe(exc: BaseException | None) -> str | None:
    return None if exc is None else f"{type(exc).__name__}: {exc}"


def observe(p: Parser, steps: list[Step], wrap: Callable[[bytes], object] = bytes) -> list[Seen]:
    """Run ``steps`` on ``p``; what each call returned or raised, and the state after it."""
    seen: list[Seen] = []
    for op, data in steps:
        if op == "feed":
            assert data is not None
            p.feed(wrap(data))  # type: ignore[arg-type]
            result: object = None
        else:
            try:
                result = p.commands()
            except ProtocolError as exc:
                result = ("raised", describe(exc), exc is p.error)
        seen.append((op, result, p.state, p.buffered, describe(p.error)))
    return seen


def both(native_cls: ParserFactory, request_max: int, max_args: int, steps: list[Step]) -> None:
    """The native parser observes what the twin observes, step by step."""
    expected = observe(parser(RequestParserPy, request_max, max_args), steps)
    assert observe(parser(native_cls, request_max, max_args), steps) == expected


_HUGE = st.sampled_from(
    [
        b"*9999999999999999999\r\n",
        b"$9999999999999999999\r\n",
        b"*-9999999999999999999\r\n",
        b"$-9999999999999999999\r\n",
        b"$18446744073709551615\r\n",
        b"*99999999999999999999\r\n",
        b"$9223372036854775807\r\n",
        b"*1\r\n$9223372036854775807\r\n",
        b"*2\r\n$3\r\nGET\r\n$4611686018427387904\r\n",
    ]
)
#: Header lines around the longest allowed (20 characters between the type byte and CRLF).
_LONG_HEADER = st.tuples(
    st.sampled_from([b"*", b"$", b"*-", b"$-", b"*1\r\n$", b"*2\r\n$1\r\nx\r\n$"]),
    st.integers(15, 24),
    st.sampled_from([b"", b"\r\n", b"\r", b"\n"]),
).map(lambda t: t[0] + b"1" * t[1] + t[2])
_INLINE = st.tuples(
    st.lists(st.one_of(_INLINE_WORD, st.sampled_from([b" ", b"\t", b"\r", b"\x0b"]))),
    st.sampled_from([b"\r\n", b"\n", b"", b"\r"]),
).map(lambda t: b" ".join(t[0]) + t[1])
_PIECE = st.one_of(_ARGS.map(encode), _INLINE, _GARBAGE, _HUGE, _LONG_HEADER)
_LIMITS = st.tuples(
    st.sampled_from([1, 2, 7, 16, 40, 64, 300, 10_000, 2**62 - 1, 2**62, 2**70]),
    st.sampled_from([1, 2, 4, 10, 2**62, 2**70]),
)


@st.composite
def scripts(draw: st.DrawFn) -> list[Step]:
    """A stream of pieces, cut anywhere, each chunk followed by zero to three commands()."""
    data = b"".join(draw(st.lists(_PIECE, max_size=12)))
    cuts = sorted(set(draw(st.lists(st.integers(0, max(len(data), 1)), max_size=10))))
    steps: list[Step] = []
    for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True):
        steps.append(("feed", data[a:b]))
        steps += [("commands", None)] * draw(st.integers(0, 3))
    steps += [("commands", None)] * draw(st.integers(0, 2))
    steps += [("feed", draw(_PIECE)), ("commands", None)]
    return steps


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(limits=_LIMITS, steps=scripts())
def test_native_and_python_agree_on_every_call(
    native_cls: ParserFactory, limits: tuple[int, int], steps: list[Step]
) -> None:
    both(native_cls, *limits, steps)


@settings(max_examples=200, deadline=None)
@given(steps=scripts(), wrap=st.sampled_from([bytearray, memoryview]))
def test_bytes_like_feeds(
    native_cls: ParserFactory, steps: list[Step], wrap: Callable[[bytes], object]
) -> None:
    expected = observe(parser(RequestParserPy, 64, 4), steps)
    assert observe(parser(native_cls, 64, 4), steps, wrap) == expected


def test_large_request_in_small_reads(native_cls: ParserFactory) -> None:
    value = bytes(range(256)) * 4096  # 1 MiB
    data = encode([b"SET", b"k", value]) + b"PING\r\n" + encode([b"GET", b"k"])
    steps: list[Step] = []
    for i in range(0, len(data), 1000):
        steps += [("feed", data[i : i + 1000]), ("commands", None)]
    both(native_cls, 2 * 1024 * 1024, 8, steps)
    p = parser(native_cls, 2 * 1024 * 1024, 8)
    got: list[list[bytes]] = []
    for _, chunk in steps[::2]:
        assert chunk is not None
        p.feed(chunk)
        got += p.commands()
    assert got == [[b"SET", b"k", value], [b"PING"], [b"GET", b"k"]]


@pytest.mark.parametrize("seed", range(4))
def test_long_pipelined_stream_in_uneven_reads(native_cls: ParserFactory, seed: int) -> None:
    # Hundreds of KiB through the native buffer: grown, compacted and freed many times.
    rng = random.Random(seed)
    pieces = []
    for i in range(3000):
        kind = rng.random()
        if kind < 0.6:
            pieces.append(encode([b"GET", b"product:%d" % i]))
        elif kind < 0.9:
            pieces.append(b"SET k%d %s\r\n" % (i, b"v" * rng.randrange(50)))
        else:
            pieces.append(encode([b"SET", b"k", rng.randbytes(rng.randrange(20_000))]))
    data = b"".join(pieces)
    steps: list[Step] = []
    pos = 0
    while pos < len(data):
        size = rng.choice([1, 7, 100, 1500, 4000, 9000, 70_000])
        steps.append(("feed", data[pos : pos + size]))
        pos += size
        if rng.random() < 0.7:
            steps.append(("commands", None))
    steps += [("commands", None), ("feed", b"*1\r\n:1\r\n"), ("commands", None)]
    both(native_cls, 64 * 1024, 8, steps)


@pytest.mark.parametrize(
    ("request_max", "max_args", "data"),
    [
        (2**70, 2**70, b"*1\r\n$9999999999999999999\r\nabc"),
        (2**61, 2**70, b"*9999999999999999999\r\n"),
        (2**61, 2**61, b"*9999999999999999999\r\n"),
        (2**70, 2**70, b"*3\r\n$3\r\nSET\r\n$18446744073709551615\r\n"),
        (1024, 8, b"*1\r\n$9999999999999999999\r\n"),
        (1024, 8, b"*9\r\n$1\r\na\r\n"),
        (1024, 8, b"*10\r\n"),
    ],
)
def test_huge_headers(
    native_cls: ParserFactory, request_max: int, max_args: int, data: bytes
) -> None:
    both(native_cls, request_max, max_args, [("feed", data), ("commands", None)])


@pytest.mark.parametrize("impl", ["native", "python"])
def test_huge_bulk_length_in_a_longer_array(native_cls: ParserFactory, impl: str) -> None:
    cls = native_cls if impl == "native" else RequestParserPy
    p = parser(cls, 1024, 8)
    p.feed(b"*2\r\n$9223372036854775800\r\n")
    with pytest.raises(ProtocolError, match="invalid bulk length"):
        p.commands()


@pytest.mark.parametrize("impl", ["native", "python"])
def test_constructor(native_cls: ParserFactory, impl: str) -> None:
    cls: Callable[..., object] = native_cls if impl == "native" else RequestParserPy
    with pytest.raises(TypeError):
        cls(1024, 8)
    with pytest.raises(TypeError):
        cls(request_max=1024)
    for bad in ({"request_max": 0, "max_args": 1}, {"request_max": 1, "max_args": -5}):
        with pytest.raises(ValueError, match="must be at least 1"):
            cls(**bad)


def test_state_members_are_the_protocol_enum(native_cls: ParserFactory) -> None:
    p = parser(native_cls)
    states = [p.state]
    p.feed(b"GET")
    assert p.commands() == []
    states.append(p.state)
    assert states == [protocol.ParserState.IDLE, protocol.ParserState.INLINE]
    assert all(type(s) is protocol.ParserState for s in states)


# -- which implementation protocol.RequestParser is ----------------------------------------

_REPORT = (
    "from sleigh.daemons.cache import protocol as p; "
    "print(p.NATIVE_PARSER, p.RequestParser.__module__, p.RequestParserPy.__module__)"
)


def run_python(code: str, **env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if k != "SLEIGH_NO_EXTENSIONS"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.strip()


def test_native_is_chosen_when_built(native_cls: ParserFactory) -> None:
    assert run_python(_REPORT) == ("True sleigh.core_ext._resp sleigh.daemons.cache.protocol")


@pytest.mark.parametrize(("value", "native"), [("1", False), ("yes", False), ("0", True)])
def test_no_extensions_forces_the_twin(native_cls: ParserFactory, value: str, native: bool) -> None:
    module = "sleigh.core_ext._resp" if native else "sleigh.daemons.cache.protocol"
    assert run_python(_REPORT, SLEIGH_NO_EXTENSIONS=value) == (
        f"{native} {module} sleigh.daemons.cache.protocol"
    )


def test_importing_the_compiled_module_first(native_cls: ParserFactory) -> None:
    code = "import sleigh.core_ext._resp; " + _REPORT
    assert run_python(code) == "True sleigh.core_ext._resp sleigh.daemons.cache.protocol"


def test_this_process_agrees_with_the_environment() -> None:
    disabled = os.environ.get("SLEIGH_NO_EXTENSIONS", "") not in ("", "0")
    if disabled:
        assert protocol.RequestParser is RequestParserPy
        assert protocol.NATIVE_PARSER is False
    else:
        assert protocol.NATIVE_PARSER is (protocol.RequestParser is not RequestParserPy)
