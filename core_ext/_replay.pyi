from typing import Protocol

import cffi

class _Lib(Protocol):
    def sleigh_replay_last_alive(
        self, recs: object, count: int, record_size: int, now: int, out: object
    ) -> int: ...

ffi: cffi.FFI
lib: _Lib
