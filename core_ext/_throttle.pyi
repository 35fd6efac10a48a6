"""Stubs for the compiled throttle fast path; its contract: ``sleigh.daemons.throttle.fastpath``."""

from collections.abc import Callable

from sleigh.daemons.throttle.gcra import Table

__all__ = ["run"]

def run(
    table: Table,
    data: bytes,
    now: int,
    out: list[bytes],
    many: Callable[[Table, bytes, int, int, int, int, int], bytes | None],
) -> tuple[int, int, int]: ...
