"""The daemon's fast path answers every CHECK as the general parser and handler do."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sleigh.daemons.throttle import fastpath
from sleigh.daemons.throttle import protocol as p
from sleigh.daemons.throttle.gcra import ALLOW, DENY, Table
from sleigh.daemons.throttle.handlers import HANDLERS, Context
from sleigh.daemons.throttle.logfile import LogWriter, open_log
from sleigh.daemons.throttle.rules import Rule, rules_hash

RULES = {
    "ip": Rule("ip", 100, 3),
    "big": Rule("big", 10**13, 2),  # a huge cost overflows int64 nanoseconds
    "login": Rule("login", 1000, 2, penalty_strikes=2, penalty_window=2000, penalty_for=9000),
}
KEYS = [b"ip:a", b"ip:b", b"login:a", b"big:a", b"nokind:a", b"ip:a b", b"ip:" + b"x" * 60]
COSTS = st.sampled_from([0, 1, 2, 3, 4, 0xFFFFFFFF])
Run = Callable[[Table, bytes, int, list[bytes]], tuple[int, int, int]]
RUNS = [
    pytest.param(fastpath.run_python, id="python"),
    pytest.param(
        fastpath.run_native,
        id="native",
        marks=pytest.mark.skipif(not fastpath.NATIVE, reason="compiled fast path not built"),
    ),
]


def _general(ctx: Context, frames: bytes, now: int) -> list[bytes]:
    out = []
    for item in p.Parser().feed(frames):
        if isinstance(item, p.BadFrame):
            out.append(p.encode_reply(item.id, item.message.encode(), p.ERROR))
            continue
        try:
            out.append(p.encode_reply(item.id, HANDLERS[item.op](ctx, item, now)))
        except Exception as exc:
            out.append(p.encode_reply(item.id, str(exc).encode(), p.ERROR))
    return out


def _context(tmp: Path) -> Context:
    open_log(tmp / "s.log", rules_hash(RULES), 0)
    writer = LogWriter(tmp / "s.log")
    return Context(Table(RULES, writer.append), writer, RULES, "test")


requests = st.lists(
    st.tuples(
        st.lists(st.tuples(st.sampled_from(KEYS), COSTS), min_size=1, max_size=3),
        st.integers(0, 400),
    ),
    min_size=1,
    max_size=25,
)


@pytest.mark.parametrize("run", RUNS)
@settings(max_examples=100, deadline=None)
@given(reqs=requests)
def test_fast_path_equals_the_general_path(
    run: Run, reqs: list[tuple[list[tuple[bytes, int]], int]]
) -> None:
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        fast, general = _context(Path(a)), _context(Path(b))
        now = 0
        for rid, (pairs, gap) in enumerate(reqs):
            now += gap
            frame = p.encode_request(p.CHECK, rid, [k for k, _ in pairs], [c for _, c in pairs])
            out: list[bytes] = []
            used, _, _ = run(fast.table, frame, now, out)
            if used < len(frame):
                out += _general(fast, frame[used:], now)
            assert out == _general(general, frame, now)
        assert fast.table.states == general.table.states
        fast.writer.close()
        general.writer.close()
        assert Path(a, "s.log").read_bytes()[96:] == Path(b, "s.log").read_bytes()[96:]


def _mangled(draw: st.DrawFn) -> bytes:
    """A byte stream a client could send: CHECKs (one or two keys), some with a byte
    changed, cut short, or their length or key count wrong, other frames, noise."""
    parts = []
    for rid in range(draw(st.integers(0, 6))):
        keys = draw(st.lists(st.sampled_from(KEYS), min_size=1, max_size=2))
        frame = bytearray(p.encode_request(p.CHECK, rid, keys, [1] * len(keys)))
        # (mostly whole: the fast path stops at the first frame it leaves to the other)
        how = draw(st.sampled_from(["whole"] * 4 + ["byte", "cut", "noise", "ping"]))
        if how == "byte":
            frame[draw(st.integers(0, len(frame) - 1))] = draw(st.integers(0, 255))
        elif how == "cut":
            frame = frame[: draw(st.integers(0, len(frame) - 1))]
        elif how == "noise":
            frame = bytearray(draw(st.binary(max_size=40)))
        elif how == "ping":
            frame = bytearray(p.encode_request(p.PING, rid, []))
        parts.append(bytes(frame))
    if draw(st.booleans()):  # a frame still arriving: the stream ends inside it
        last = p.encode_request(p.CHECK, 99, [draw(st.sampled_from(KEYS))], [1])
        parts.append(last[: draw(st.integers(1, len(last) - 1))])
    return b"".join(parts)


@pytest.mark.parametrize("run", RUNS)
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_the_fast_path_reads_any_bytes_as_the_general_parser_does(
    run: Run, data: st.DataObject
) -> None:
    """Untrusted bytes: whatever the fast path takes, it answers as the general path
    would, and what it leaves the general path answers; nothing else is raised."""
    stream = data.draw(st.composite(_mangled)())
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        fast, general = _context(Path(a)), _context(Path(b))
        out: list[bytes] = []
        used, _, _ = run(fast.table, stream, 1000, out)
        assert 0 <= used <= len(stream)
        out += _general(fast, stream[used:], 1000)
        assert out == _general(general, stream, 1000)
        assert fast.table.states == general.table.states
        fast.writer.close()
        general.writer.close()


def test_the_compiled_fast_path_is_there_when_required() -> None:
    if os.environ.get("SLEIGH_REQUIRE_EXTENSIONS") == "1":
        assert fastpath.NATIVE, "SLEIGH_REQUIRE_EXTENSIONS=1 but the compiled fast path is missing"


native_only = pytest.mark.skipif(not fastpath.NATIVE, reason="compiled fast path not built")


def _checks(now: int) -> bytes:
    """One-key and two-key CHECKs of new and known keys; one denied."""
    frames = [
        p.encode_request(p.CHECK, 1, [b"ip:a"], [1]),
        p.encode_request(p.CHECK, 2, [b"ip:b", b"login:a"], [2, 1]),
        p.encode_request(p.CHECK, 3, [b"ip:a"], [3]),
        p.encode_request(p.CHECK, 4, [b"ip:a"], [0xFFFFFFFF]),
    ]
    return b"".join(frames)


@native_only
def test_the_compiled_path_writes_the_log_writers_records_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Admissions are recorded without a call to ``append`` (denials go through
    ``Table.deny``, which calls it), and the log's bytes are the twin's."""
    calls: list[int] = []
    append = LogWriter.append

    def counted(self: LogWriter, event: int, *args: int | bytes) -> None:
        calls.append(event)
        append(self, event, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(LogWriter, "append", counted)
    (tmp_path / "n").mkdir()
    (tmp_path / "p").mkdir()
    native, python = _context(tmp_path / "n"), _context(tmp_path / "p")
    frames = _checks(1000)
    assert fastpath.run_python(python.table, frames, 1000, [])[0] == len(frames)
    events = [python.writer.buffer[i + 44] for i in range(0, len(python.writer.buffer), 96)]
    assert calls == events and ALLOW in events and DENY in events
    calls.clear()
    assert fastpath.run_native(native.table, frames, 1000, [])[0] == len(frames)
    assert calls == [event for event in events if event != ALLOW]
    assert native.writer.buffer == python.writer.buffer


@native_only
def test_the_compiled_path_calls_any_other_sink() -> None:
    got: list[list[tuple[object, ...]]] = []
    for run in (fastpath.run_native, fastpath.run_python):
        calls: list[tuple[object, ...]] = []
        table = Table(RULES, lambda *args, calls=calls: calls.append(args))
        run(table, _checks(1000), 1000, [])
        got.append(calls)
    assert got[0] == got[1] and len(got[0]) == 5  # 3 admitted keys, 2 denials
