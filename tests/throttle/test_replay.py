"""The replay kernel: the cffi implementation and its numpy twin against a plain loop."""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sleigh.core_ext import replay
from sleigh.daemons.throttle.logfile import DTYPE

Impl = Callable[[np.ndarray, int], np.ndarray]
IMPLS = [
    pytest.param(replay.last_alive_python, id="python"),
    pytest.param(
        replay.last_alive_native,
        id="native",
        marks=pytest.mark.skipif(not replay.NATIVE, reason="compiled replay not built"),
    ),
]


def _brute(recs: np.ndarray, now: int) -> list[int]:
    last: dict[int, int] = {}
    for index, rec in enumerate(recs.tolist()):
        if max(rec[1], rec[2], rec[3]) > now:
            last[rec[4]] = index
    return sorted(last.values())


rows = st.lists(
    st.tuples(st.integers(0, 200), st.integers(0, 200), st.integers(0, 200), st.integers(0, 12)),
    max_size=300,
)


@pytest.mark.parametrize("impl", IMPLS)
@settings(max_examples=150, deadline=None)
@given(rows, st.integers(0, 200))
def test_last_alive_matches_a_plain_loop(
    impl: Impl, data: list[tuple[int, int, int, int]], now: int
) -> None:
    recs = np.zeros(len(data), dtype=DTYPE)
    for i, (tat, strike, blocked, key) in enumerate(data):
        recs[i]["tat"], recs[i]["strike"], recs[i]["blocked"] = tat, strike, blocked
        recs[i]["hash"] = (key * 0x9E3779B97F4A7C15) % 2**64
    assert impl(recs, now).tolist() == _brute(recs, now)


@pytest.mark.parametrize("impl", IMPLS)
def test_many_keys_grow_the_table(impl: Impl) -> None:
    rng = np.random.default_rng(1)
    recs = np.zeros(200_000, dtype=DTYPE)
    recs["hash"] = rng.integers(0, 50_000, len(recs)).astype(np.uint64) * 7919 + 1
    recs["tat"] = rng.integers(0, 100, len(recs))
    assert impl(recs, 50).tolist() == _brute(recs, 50)


def test_the_chosen_one_is_native_when_built() -> None:
    assert replay.last_alive is (
        replay.last_alive_native if replay.NATIVE else replay.last_alive_python
    )


def test_the_compiled_replay_is_there_when_required() -> None:
    if os.environ.get("SLEIGH_REQUIRE_EXTENSIONS") == "1":
        assert replay.NATIVE, "SLEIGH_REQUIRE_EXTENSIONS=1 but the compiled replay is missing"
