"""Replay of the throttle's state log: the last live record of each key.

:func:`last_alive` takes the log's records (a numpy structured array, see
``sleigh.daemons.throttle.logfile``) and returns the indices of the last
record still alive at *now* of each key hash, sorted. Two implementations
keep one contract, checked by the same tests: :func:`last_alive_python`
(numpy: a mask and a sort) and :func:`last_alive_native` (cffi: one pass and
a hash table, about 10x faster on 5 million records). :data:`NATIVE` says
which :func:`last_alive` is; ``SLEIGH_NO_EXTENSIONS=1`` forces the twin.
"""

from __future__ import annotations

import numpy as np

from . import compiled


def last_alive_python(recs: np.ndarray, now: int) -> np.ndarray:
    """Indices of the last record alive at *now* of each key hash, sorted (numpy twin)."""
    until = np.maximum(np.maximum(recs["tat"], recs["strike"]), recs["blocked"])
    alive = np.flatnonzero(until > now)
    backwards = alive[::-1]
    _, first = np.unique(recs["hash"][backwards], return_index=True)
    return np.sort(backwards[first])


def last_alive_native(recs: np.ndarray, now: int) -> np.ndarray:
    """The same as :func:`last_alive_python`, in C.

    :raises MemoryError: if the hash table cannot be allocated.
    """
    from ._replay import ffi, lib

    recs = np.ascontiguousarray(recs)
    out = np.empty(len(recs), dtype=np.int64)
    written = lib.sleigh_replay_last_alive(
        ffi.from_buffer("uint8_t[]", recs),
        len(recs),
        recs.dtype.itemsize,
        now,
        ffi.from_buffer("int64_t[]", out),
    )
    if written < 0:
        raise MemoryError("no memory for the replay's hash table")
    return np.sort(out[:written])


#: True when :func:`last_alive` is the compiled implementation.
NATIVE = compiled("_replay", "replay") is not None
last_alive = last_alive_native if NATIVE else last_alive_python
