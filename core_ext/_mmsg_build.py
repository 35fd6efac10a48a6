"""cffi out-of-line build of :mod:`sleigh.core_ext._mmsg` (``setup.py``'s ``cffi_modules``)."""

from __future__ import annotations

from cffi import FFI

ffibuilder = FFI()
ffibuilder.cdef(
    "#define SLEIGH_MMSG_MAX 256\n"
    "int sleigh_recv_batch(int fd, uint8_t *buf, int slot, int max, int32_t *lens);\n"
    "int sleigh_send_batch(int fd, const uint8_t *buf, const int32_t *lens, int count);"
)
ffibuilder.set_source(
    "sleigh.core_ext._mmsg",
    '#include "mmsg.h"',
    sources=["sleigh/core_ext/mmsg.c"],
    include_dirs=["sleigh/core_ext"],
    extra_compile_args=["-O2", "-std=c99"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
