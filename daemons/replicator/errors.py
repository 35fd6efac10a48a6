"""Errors of the replicator: one root, typed subclasses.

:class:`~sleigh.daemons.replicator.protocol.WireError` and its subclasses
(a datagram dropped and counted) live beside the wire format.
"""

from __future__ import annotations

from ...errors import SleighError


class ReplicatorError(SleighError):
    """Root of every replicator error."""
