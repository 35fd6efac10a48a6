"""Stubs for the compiled throttle fast path; its contract: ``sleigh.daemons.throttle.fastpath``."""

from sleigh.daemons.throttle.gcra import Table

__all__ = ["run"]

def run(table: Table, data: bytes, now: int, out: list[bytes]) -> tuple[int, int, int]: ...
