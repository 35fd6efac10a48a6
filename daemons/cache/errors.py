"""Errors of the cache daemon and its clients.

Each class carries the RESP error text the daemon answers with, so a
handler raises and the server replies; nothing here ever closes a
connection except :class:`~sleigh.daemons.cache.protocol.ProtocolError`.
"""

from __future__ import annotations

from ...errors import SleighError


class CacheError(SleighError):
    """Root of every cache error."""


class CommandError(CacheError):
    """A command the daemon refuses; ``str(exc)`` is the RESP error text."""


class UnknownCommand(CommandError):
    def __init__(self, name: str) -> None:
        super().__init__(f"ERR unknown command '{name}'")


class WrongArity(CommandError):
    def __init__(self, name: str) -> None:
        super().__init__(f"ERR wrong number of arguments for '{name.lower()}' command")


class SyntaxErr(CommandError):
    def __init__(self, detail: str = "syntax error") -> None:
        super().__init__(f"ERR {detail}")


class NotAnInteger(CommandError):
    def __init__(self) -> None:
        super().__init__("ERR value is not an integer or out of range")


class KeyTooLong(CommandError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"ERR key is longer than cache.key_max ({limit} bytes)")


class EmptyKey(CommandError):
    def __init__(self) -> None:
        super().__init__("ERR empty keys are not allowed")


class ValueTooLarge(CommandError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"ERR value is larger than cache.value_max ({limit} bytes)")


class StoreFull(CommandError):
    """The write does not fit even after eviction."""

    def __init__(self) -> None:
        super().__init__(
            "OOM the cache is full and nothing more can be evicted; try a smaller value"
        )


class ShuttingDown(CommandError):
    def __init__(self) -> None:
        super().__init__("ERR the cache is shutting down")


class StoreError(CacheError):
    """The LMDB environment failed in a way the daemon cannot answer around."""
