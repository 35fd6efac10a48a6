"""RESP2 for ``sleigh-cached``: the request parser and the reply encoders, sans-IO.

This module knows bytes and lists of bytes, never sockets: the server feeds
it what it reads and writes what the encoders return.

Requests (client to daemon) come in two shapes; the first byte decides::

    array ("multibulk"), what redis-cli, redis-py and redis-benchmark send:

        *<count>\\r\\n                        count <= 0 ("*0", "*-1"): skipped
        $<len>\\r\\n<len bytes>\\r\\n           repeated count times; bytes are
        ...                                 binary-safe (CR, LF, NUL allowed)

        *3\\r\\n $3\\r\\n SET\\r\\n $1\\r\\n k\\r\\n $1\\r\\n v\\r\\n     (spaces for reading)

    inline (any first byte but "*"), what a person types into telnet/nc:

        SET k v\\r\\n         split on ASCII whitespace; "\\n" alone ends it too;
                             a blank line is skipped; no quoting

Replies (daemon to client), one type byte then the payload::

    +<text>\\r\\n                     simple string      +OK\\r\\n
    -<CODE> <text>\\r\\n              error              -ERR unknown command 'X'\\r\\n
    :<n>\\r\\n                        integer            :42\\r\\n
    $<len>\\r\\n<bytes>\\r\\n           bulk string        $1\\r\\nv\\r\\n   ($-1\\r\\n: null)
    *<count>\\r\\n<count replies>     array, may nest    *2\\r\\n$1\\r\\na\\r\\n$-1\\r\\n

Limits are checked as the headers arrive, before anything is buffered:
``*<count>`` over ``max_args + 1`` elements (the name plus ``max_args``
arguments) raises :class:`TooManyArguments`; a ``$<len>`` that would take the
request over ``request_max`` bytes on the wire, or an inline line that reaches
``request_max`` bytes without its newline, raises :class:`RequestTooLarge`.

The parser's states (:class:`ParserState`)::

    IDLE --"*"--> ARG_HEADER --"$n"--> ARG_DATA --n bytes, CRLF--> ARG_HEADER ... --> IDLE
    IDLE --other--> INLINE (until "\\n") --> IDLE
    any --ProtocolError--> BROKEN (for good)
"""

from __future__ import annotations

import enum
import re

from .errors import CacheError

__all__ = [
    "EMPTY_ARRAY",
    "NULL",
    "NULL_ARRAY",
    "NULL_BULK",
    "OK",
    "PONG",
    "ParserState",
    "ProtocolError",
    "RequestParser",
    "RequestTooLarge",
    "TooManyArguments",
    "array",
    "array_raw",
    "bulk",
    "error",
    "integer",
    "simple",
]


class ProtocolError(CacheError):
    """The request stream is broken: reply ``error(str(exc))`` and close the connection.

    ``str(exc)`` starts with redis's wording (``Protocol error: ...``).
    """


class RequestTooLarge(ProtocolError):
    """One request (a command with its arguments) is over ``request_max`` bytes."""


class TooManyArguments(ProtocolError):
    """One command has more than ``max_args`` arguments after its name."""


class ParserState(enum.Enum):
    """Where :class:`RequestParser` stands in the byte stream."""

    #: Between requests: the next byte starts an array ("*") or an inline line.
    IDLE = "idle"
    #: Inside an inline line whose "\\n" has not arrived yet.
    INLINE = "inline"
    #: Inside an array, expecting the ``$<len>\\r\\n`` of the next argument.
    ARG_HEADER = "arg_header"
    #: Inside an array, expecting ``<len>`` bytes of an argument and ``\\r\\n``.
    ARG_DATA = "arg_data"
    #: A :class:`ProtocolError` was raised; the parser is dead.
    BROKEN = "broken"


#: The longest header line: type byte, sign, 19 digits, CRLF.
_HEADER_MAX = 23
#: The shortest wire form of one argument: ``$0\r\n\r\n``.
_MIN_ARG = 6
#: A length as redis's ``string2ll`` takes it: no "+", no leading zeros, no spaces.
_INTEGER = re.compile(rb"0|-?[1-9][0-9]{0,18}")
#: An array header with the first argument's header: ``*<count>\r\n$<len>\r\n``.
_FIRST_HEADERS = re.compile(rb"\*([1-9][0-9]{0,18})\r\n\$(0|[1-9][0-9]{0,18})\r\n")
#: The CRLF ending an argument and the next argument's header: ``\r\n$<len>\r\n``.
_NEXT_HEADER = re.compile(rb"\r\n\$(0|[1-9][0-9]{0,18})\r\n")


def _shown(byte: int) -> str:
    """One byte as redis's ``%c`` would show it, but never a CR or LF."""
    return chr(byte) if 0x20 <= byte < 0x7F else f"\\x{byte:02x}"


def _length(line: bytes, what: str) -> int:
    if _INTEGER.fullmatch(line) is None:
        raise ProtocolError(f"Protocol error: invalid {what} length")
    return int(line)


def _scan_arrays(
    buf: bytes, pos: int, out: list[list[bytes]], max_count: int, request_max: int
) -> int:
    """Take whole, well-formed arrays from ``buf[pos:]`` into ``out``; return the new position.

    The fast path. It stops, consuming nothing of it, at the first request it
    cannot take whole (inline, incomplete, malformed, skipped or over a
    limit), which the state machine then takes step by step; so it never
    raises and never decides an error. One regex match checks the CRLF that
    ends an argument together with the header of the next one.
    """
    end = len(buf)
    first = _FIRST_HEADERS.match
    following = _NEXT_HEADER.match
    while pos < end:
        m = first(buf, pos)
        if m is None:
            break
        count = int(m[1])
        if count > max_count:
            break
        start = m.end()
        stop = start + int(m[2])
        args = [buf[start:stop]]
        for _ in range(count - 1):
            # A length past the buffer (even near 2**63) is for the state machine.
            m = following(buf, stop) if stop <= end else None
            if m is None:
                break
            start = m.end()
            stop = start + int(m[1])
            args.append(buf[start:stop])
        else:
            if buf[stop : stop + 2] == b"\r\n" and stop + 2 - pos <= request_max:
                out.append(args)
                pos = stop + 2
                continue
        break
    return pos


class RequestParser:
    """Bytes in, commands out: one parser per connection.

    Contract with the server::

        parser.feed(data)
        try:
            while batch := parser.commands():
                for command in batch:
                    ...                      # dispatch, write the reply
        except ProtocolError as exc:
            write(error(str(exc)))           # then close the connection

    :meth:`commands` parses everything fed so far. When the stream breaks
    after some complete commands, that call returns those commands, the
    parser turns :attr:`~ParserState.BROKEN` and keeps the error
    (:attr:`error`); the *next* call raises it, with or without more data
    fed, so the loop above answers the good commands, then the error. When
    nothing complete precedes the break, the call raises at once. A server
    that calls :meth:`commands` once per read must instead check
    :attr:`error` after answering the batch, or the error reply waits for
    the client's next write. A broken
    parser is never reused: every later :meth:`commands` raises the same
    error again and :meth:`feed` discards its data.

    :param request_max: the most bytes one request may take on the wire.
    :param max_args: the most arguments one command may have after its name.
    :raises ValueError: if a limit is below 1.
    """

    __slots__ = (
        "_args",
        "_buf",
        "_bulk_len",
        "_chunked",
        "_chunks",
        "_error",
        "_max_args",
        "_need",
        "_pos",
        "_remaining",
        "_request_max",
        "_scan",
        "_size",
        "_state",
    )

    def __init__(self, *, request_max: int, max_args: int) -> None:
        if request_max < 1 or max_args < 1:
            raise ValueError("request_max and max_args must be at least 1")
        self._request_max = request_max
        self._max_args = max_args
        self._buf = b""  # joined input; parsed up to _pos
        self._pos = 0
        self._chunks: list[bytes] = []  # fed since the last join
        self._chunked = 0  # total length of _chunks
        self._need = 1  # bytes past _pos without which no step can progress
        self._state = ParserState.IDLE
        self._args: list[bytes] = []  # arguments of the array being read
        self._remaining = 0  # arguments of that array still to read
        self._bulk_len = 0  # ARG_DATA: length of the argument being read
        self._size = 0  # wire bytes of the array being read, so far
        self._scan = 0  # INLINE: bytes past _pos known to hold no "\n"
        self._error: ProtocolError | None = None

    @property
    def state(self) -> ParserState:
        """The parser's state (after the last :meth:`commands`)."""
        return self._state

    @property
    def error(self) -> ProtocolError | None:
        """The error that broke the stream, once it has; :meth:`commands` raises it."""
        return self._error

    @property
    def buffered(self) -> int:
        """Bytes held for requests not yet complete (on-the-wire count)."""
        held = len(self._buf) - self._pos + self._chunked
        if self._state is ParserState.ARG_HEADER or self._state is ParserState.ARG_DATA:
            held += self._size
        return held

    def feed(self, data: bytes) -> None:
        """Hold ``data`` for the next :meth:`commands`; cheap, parses nothing.

        :param data: bytes read from the connection (any bytes-like object).
        """
        if data and self._error is None:
            if type(data) is not bytes:
                data = bytes(data)
            self._chunks.append(data)
            self._chunked += len(data)

    def commands(self) -> list[list[bytes]]:
        """Every command completed by the data fed since the last call, in order.

        Each command is a non-empty list: the name as sent, then the arguments.

        :raises RequestTooLarge: a request is (or is announced) over ``request_max``.
        :raises TooManyArguments: a command announces more than ``max_args`` arguments.
        :raises ProtocolError: the stream is malformed, or broke at an earlier call.
        """
        if self._error is not None:
            raise self._error
        out: list[list[bytes]] = []
        try:
            if self._take(out):
                self._parse(out)
        except ProtocolError as exc:
            self._fail(exc)
            if not out:
                raise
        return out

    def _take(self, out: list[list[bytes]]) -> bool:
        """Move the chunks fed into the buffer; whether the state machine can progress.

        Whole arrays in a single chunk between requests, the usual case, are
        taken straight from the chunk into ``out``.
        """
        chunks = self._chunks
        if not chunks:
            return False
        if len(chunks) == 1 and not self._buf and self._state is ParserState.IDLE:
            buf = chunks[0]
            pos = _scan_arrays(buf, 0, out, self._max_args + 1, self._request_max)
            self._chunks = []
            self._chunked = 0
            if pos == len(buf):
                return False
            self._buf = buf
            self._pos = pos
            return True
        return self._ready()

    def _ready(self) -> bool:
        """Whether the new chunks can let a step progress; if so, join them to the buffer."""
        held = len(self._buf) - self._pos + self._chunked
        if self._state is ParserState.INLINE and not any(b"\n" in c for c in self._chunks):
            if held >= self._request_max:
                raise self._inline_too_large()
            return False
        if held < self._need:
            return False
        rest = self._buf[self._pos :]
        chunks = self._chunks
        self._buf = chunks[0] if not rest and len(chunks) == 1 else b"".join([rest, *chunks])
        self._pos = 0
        self._chunks = []
        self._chunked = 0
        return True

    def _parse(self, out: list[list[bytes]]) -> None:
        buf = self._buf
        progressed = True
        while progressed:
            state = self._state
            if state is ParserState.IDLE:
                pos = _scan_arrays(buf, self._pos, out, self._max_args + 1, self._request_max)
                self._pos = pos
                if pos >= len(buf):
                    break
                if buf[pos] == 42:  # "*"
                    progressed = self._step_array_header(buf)
                else:
                    progressed = self._step_inline(buf, out)
            elif state is ParserState.ARG_HEADER:
                progressed = self._step_arg_header(buf)
            elif state is ParserState.ARG_DATA:
                progressed = self._step_arg_data(buf, out)
            else:
                progressed = self._step_inline(buf, out)
        if self._pos >= len(buf):
            self._buf = b""
            self._pos = 0

    def _header(self, buf: bytes, what: str) -> bytes | None:
        """The digits of the ``*``/``$`` header line at ``_pos``, or None until its CRLF arrives."""
        pos = self._pos
        nl = buf.find(b"\r\n", pos + 1, pos + _HEADER_MAX)
        if nl >= 0:
            return buf[pos + 1 : nl]
        if len(buf) - pos >= _HEADER_MAX:
            raise ProtocolError(f"Protocol error: invalid {what} length")
        return None

    def _step_array_header(self, buf: bytes) -> bool:
        line = self._header(buf, "multibulk")
        if line is None:
            return False
        count = _length(line, "multibulk")
        size = len(line) + 3
        self._pos += size
        if count <= 0:
            return True
        if count - 1 > self._max_args:
            raise TooManyArguments(
                f"Protocol error: invalid multibulk length: {count - 1} arguments,"
                f" more than cache.max_args ({self._max_args})"
            )
        if size + count * _MIN_ARG > self._request_max:
            raise self._too_large("multibulk")
        self._state = ParserState.ARG_HEADER
        self._remaining = count
        self._args = []
        self._size = size
        return True

    def _step_arg_header(self, buf: bytes) -> bool:
        pos = self._pos
        if pos >= len(buf):
            return False
        if buf[pos] != 36:  # "$"
            raise ProtocolError(f"Protocol error: expected '$', got '{_shown(buf[pos])}'")
        line = self._header(buf, "bulk")
        if line is None:
            return False
        length = _length(line, "bulk")
        if length < 0:
            raise ProtocolError("Protocol error: invalid bulk length")
        size = len(line) + 3
        # A lower bound of the whole request: what came, this argument, the rest at their least.
        if self._size + size + length + 2 + (self._remaining - 1) * _MIN_ARG > self._request_max:
            raise self._too_large("bulk")
        self._size += size
        self._pos = pos + size
        self._bulk_len = length
        self._need = length + 2
        self._state = ParserState.ARG_DATA
        return True

    def _step_arg_data(self, buf: bytes, out: list[list[bytes]]) -> bool:
        start = self._pos
        stop = start + self._bulk_len
        if stop + 2 > len(buf):
            return False
        if buf[stop : stop + 2] != b"\r\n":
            raise ProtocolError("Protocol error: expected '\\r\\n' after bulk data")
        self._args.append(buf[start:stop])
        self._pos = stop + 2
        self._size += self._bulk_len + 2
        self._need = 1
        self._remaining -= 1
        if self._remaining:
            self._state = ParserState.ARG_HEADER
        else:
            out.append(self._args)
            self._args = []
            self._state = ParserState.IDLE
        return True

    def _step_inline(self, buf: bytes, out: list[list[bytes]]) -> bool:
        pos = self._pos
        nl = buf.find(b"\n", pos + self._scan)
        if nl < 0 or nl - pos >= self._request_max:
            self._scan = len(buf) - pos
            if self._scan >= self._request_max:
                raise self._inline_too_large()
            self._state = ParserState.INLINE
            return False
        args = buf[pos:nl].split()
        self._pos = nl + 1
        self._scan = 0
        self._state = ParserState.IDLE
        if len(args) - 1 > self._max_args:
            raise TooManyArguments(
                f"Protocol error: {len(args) - 1} arguments in an inline request,"
                f" more than cache.max_args ({self._max_args})"
            )
        if args:
            out.append(args)
        return True

    def _too_large(self, what: str) -> RequestTooLarge:
        return RequestTooLarge(
            f"Protocol error: invalid {what} length: the request would be over"
            f" cache.request_max ({self._request_max} bytes)"
        )

    def _inline_too_large(self) -> RequestTooLarge:
        return RequestTooLarge(
            "Protocol error: too big inline request: no newline within"
            f" cache.request_max ({self._request_max} bytes)"
        )

    def _fail(self, exc: ProtocolError) -> None:
        self._error = exc
        self._state = ParserState.BROKEN
        self._buf = b""
        self._pos = 0
        self._chunks = []
        self._chunked = 0
        self._args = []
        self._size = 0


# -- replies ----------------------------------------------------------------
# The encoders live in replies.py; this module re-exports them, so the
# protocol is one import for the server and the handlers.

# -- implementation ---------------------------------------------------------
# The compiled parser (sleigh.core_ext._resp) replaces the class above unless
# SLEIGH_NO_EXTENSIONS is set, by the rule of sleigh.core_ext (read once, at
# import), or it is not built. It keeps the same contract, checked by the same
# tests; the class above stays importable as RequestParserPy.
import logging  # noqa: E402
import os  # noqa: E402

from ...core_ext import _extensions_disabled  # noqa: E402
from .replies import (  # noqa: E402
    EMPTY_ARRAY,
    NULL,
    NULL_ARRAY,
    NULL_BULK,
    OK,
    PONG,
    array,
    array_raw,
    bulk,
    error,
    integer,
    simple,
)

__all__ += ["NATIVE_PARSER", "RequestParserPy"]

#: The pure-Python parser, whichever :class:`RequestParser` is.
RequestParserPy = RequestParser
#: True when :class:`RequestParser` is the compiled parser.
NATIVE_PARSER: bool

if _extensions_disabled(os.environ):
    NATIVE_PARSER = False
else:
    try:
        from ...core_ext._resp import RequestParser  # type: ignore[assignment]
    except ImportError as _exc:
        logging.getLogger("sleigh.cache.protocol").debug(
            "compiled request parser unavailable, using the Python twin: %s", _exc
        )
        NATIVE_PARSER = False
    else:
        NATIVE_PARSER = True
