"""Errors of the throttle daemon and its clients."""

from __future__ import annotations

from ...errors import SleighError


class ThrottleError(SleighError):
    """Root of every throttle error."""


class RulesError(ThrottleError):
    """A rules file or rule is wrong; the message names the rule and the field."""


class ProtocolError(ThrottleError):
    """A malformed or oversized frame; the daemon answers it with an error reply."""


class LogError(ThrottleError):
    """The state log cannot be read or written (not a throttle log, another version)."""


class ClientError(ThrottleError):
    """A client could not get an answer: no daemon, a timeout, a broken connection."""


class LateReply(ClientError):
    """The daemon did not answer within the client's timeout; the connection is still up
    (its answer, if it comes, is dropped)."""


class ServerError(ClientError):
    """The daemon answered with an error (the message is the daemon's)."""
