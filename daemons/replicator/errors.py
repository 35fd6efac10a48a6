"""Errors of the replicator: one root, typed subclasses.

:class:`WireError` and its subclasses name why a datagram was dropped;
:func:`~sleigh.daemons.replicator.protocol.decode` raises them and the
engine counts them by :attr:`WireError.reason` (``sleigh replication
status`` shows the counts). They are re-exported by ``protocol``.
"""

from __future__ import annotations

from ...errors import SleighError


class ReplicatorError(SleighError):
    """Root of every replicator error."""


class WireError(ReplicatorError):
    """A datagram that is dropped and counted under :attr:`reason`, never applied."""

    reason = "malformed"


class Oversized(WireError):
    reason = "oversized"


class Truncated(WireError):
    reason = "truncated"


class BadMagic(WireError):
    reason = "bad_magic"


class BadVersion(WireError):
    reason = "bad_version"


class WrongCluster(WireError):
    reason = "wrong_cluster"


class BadMac(WireError):
    reason = "bad_mac"


class Stale(WireError):
    reason = "stale"


class Malformed(WireError):
    reason = "malformed"
