"""cffi out-of-line build of :mod:`sleigh.core_ext._replay` (``setup.py``'s ``cffi_modules``)."""

from __future__ import annotations

from pathlib import Path

from cffi import FFI

HERE = Path(__file__).parent

ffibuilder = FFI()
ffibuilder.cdef(
    "int64_t sleigh_replay_last_alive(const uint8_t *recs, int64_t count,"
    " int64_t record_size, int64_t now, int64_t *out);"
)
ffibuilder.set_source(
    "sleigh.core_ext._replay",
    '#include "replay.h"',
    sources=["sleigh/core_ext/replay.c"],
    include_dirs=["sleigh/core_ext"],
    extra_compile_args=["-O2", "-std=c99"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
