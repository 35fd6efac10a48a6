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
from sleigh.daemons.throttle.gcra import Table
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


def test_the_compiled_fast_path_is_there_when_required() -> None:
    if os.environ.get("SLEIGH_REQUIRE_EXTENSIONS") == "1":
        assert fastpath.NATIVE, "SLEIGH_REQUIRE_EXTENSIONS=1 but the compiled fast path is missing"
