from typing import Protocol

import cffi

class _Lib(Protocol):
    SLEIGH_MMSG_MAX: int
    def sleigh_recv_batch(self, fd: int, buf: object, slot: int, max: int, lens: object) -> int: ...
    def sleigh_send_batch(self, fd: int, buf: object, lens: object, count: int) -> int: ...

ffi: cffi.FFI
lib: _Lib
