# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""The RESP2 request parser of ``sleigh-cached``, compiled: the fast twin.

The contract (grammar, limits, error messages, the state after an error) is
written once, in the docstring of ``sleigh.daemons.cache.protocol``, whose
pure-Python ``RequestParser`` is the twin: for every stream of bytes, cut into
any chunks, this parser returns the same commands, raises the same exceptions
with the same messages at the same calls, and shows the same ``state``,
``buffered`` and ``error`` after each call.

How it is fast:

* one state machine in C over a ``const char*``: ``memchr`` finds CRLF and
  newlines, lengths are parsed by a C loop (at most 19 digits, which always
  fit an ``unsigned long long``), limits are compared in C without overflow;
* the bytes a single ``feed`` brings between two ``commands`` calls, the
  usual case, are parsed in place; only what is left of an incomplete request
  is copied, into a growing buffer that is parsed from a consumed offset and
  compacted only when its dead prefix is at least as long as its live data, so
  a large request arriving in many small reads is copied O(1) times per byte.

Every limit is exact for any ``int``: a ``request_max`` of ``2**62`` or more
is compared as Python integers (slow, and in practice never used); a
``max_args`` over ``10**19`` is capped there, above any count a header can
carry. Unlike the twin, the limits must be integers (``operator.index``).
"""

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_Free, PyMem_Realloc
from libc.string cimport memchr, memcpy, memmove

from operator import index as _index

__all__ = ["RequestParser"]

cdef enum:
    S_IDLE = 0
    S_INLINE = 1
    S_ARG_HEADER = 2
    S_ARG_DATA = 3
    S_BROKEN = 4

cdef enum:
    HEADER_MAX = 23        # type byte, sign, 19 digits, CRLF
    MIN_ARG = 6            # "$0\r\n\r\n"
    KEEP_MAX = 65536       # an empty buffer larger than this is freed
    BUF_MIN = 4096

# Limits from here up are compared as Python integers (exact).
cdef unsigned long long BIG = 1ULL << 62
# Larger than any count or length a header can carry (19 digits).
cdef unsigned long long ARGS_CAP = 10000000000000000000ULL

# Loaded from sleigh.daemons.cache.protocol on first use: that module imports
# this one at its end, so importing it here at module level would be circular.
cdef object ParserState = None
cdef object ProtocolError = None
cdef object RequestTooLarge = None
cdef object TooManyArguments = None
cdef tuple _STATES = ()


cdef int _load() except -1:
    global ParserState, ProtocolError, RequestTooLarge, TooManyArguments, _STATES
    from ..daemons.cache import protocol

    ProtocolError = protocol.ProtocolError
    RequestTooLarge = protocol.RequestTooLarge
    TooManyArguments = protocol.TooManyArguments
    ParserState = protocol.ParserState
    _STATES = (
        ParserState.IDLE,
        ParserState.INLINE,
        ParserState.ARG_HEADER,
        ParserState.ARG_DATA,
        ParserState.BROKEN,
    )
    return 0


cdef inline bint _is_space(char c) noexcept:
    # bytes.split()'s whitespace: space, \t, \n, \v, \f, \r
    return c == 32 or 9 <= c <= 13


cdef int _parse_length(const char* p, Py_ssize_t n, bint* neg,
                       unsigned long long* value) noexcept:
    """``0`` or ``-?[1-9][0-9]{0,18}``, as redis's ``string2ll``; 0 if valid, -1 if not."""
    cdef Py_ssize_t i = 0
    cdef unsigned long long v = 0
    cdef char c
    neg[0] = False
    if n == 1 and p[0] == c'0':
        value[0] = 0
        return 0
    if n > 0 and p[0] == c'-':
        neg[0] = True
        i = 1
    if i >= n or n - i > 19 or p[i] < c'1' or p[i] > c'9':
        return -1
    while i < n:
        c = p[i]
        if c < c'0' or c > c'9':
            return -1
        v = v * 10 + <unsigned long long>(c - c'0')  # 19 digits < 2**64: no overflow
        i += 1
    value[0] = v
    return 0


cdef Py_ssize_t _find_crlf(const char* b, Py_ssize_t start, Py_ssize_t stop) noexcept:
    """Index of the first CRLF wholly inside ``b[start:stop]``, or -1."""
    cdef const char* p
    cdef const char* end = b + stop
    cdef const char* at = b + start
    while at < end - 1:
        p = <const char*>memchr(at, c'\r', <size_t>(end - 1 - at))
        if p == NULL:
            return -1
        if p[1] == c'\n':
            return p - b
        at = p + 1
    return -1


cdef str _shown(unsigned char byte):
    """One byte as redis's ``%c`` would show it, but never a CR or LF."""
    if 0x20 <= byte < 0x7F:
        return chr(byte)
    return f"\\x{byte:02x}"


@cython.auto_pickle(False)
@cython.embedsignature(False)  # it would show "(request_max, *, max_args)"
cdef class RequestParser:
    """RequestParser(*, request_max, max_args)\n--\n\nBytes in, commands out: one parser per connection.

    The contract is that of ``sleigh.daemons.cache.protocol.RequestParser``.

    :param request_max: the most bytes one request may take on the wire.
    :param max_args: the most arguments one command may have after its name.
    :raises ValueError: if a limit is below 1.
    """

    cdef char* _mem              # own buffer; unparsed data is _mem[_start:_end]
    cdef Py_ssize_t _cap, _start, _end
    cdef object _pending         # bytes fed while the buffer was empty, parsed in place
    cdef bint _fresh             # data fed since the last commands()
    cdef int _st
    cdef list _args              # arguments of the array being read
    cdef unsigned long long _remaining   # arguments of that array still to read
    cdef unsigned long long _bulk_len    # ARG_DATA: length of the argument being read
    cdef Py_ssize_t _size        # wire bytes of the array being read, so far
    cdef Py_ssize_t _scan        # INLINE: bytes past the line's start known to hold no "\n"
    cdef object _error
    cdef object _request_max, _max_args  # as given, for messages and big limits
    cdef unsigned long long _rm  # request_max, capped at BIG
    cdef unsigned long long _ma  # max_args, capped at ARGS_CAP
    cdef bint _big               # request_max >= BIG: compare as Python integers

    def __cinit__(self):
        if ParserState is None:
            _load()
        self._mem = NULL
        self._st = S_IDLE
        self._args = []

    def __dealloc__(self):
        PyMem_Free(self._mem)

    def __init__(self, *, request_max, max_args):
        if request_max < 1 or max_args < 1:
            raise ValueError("request_max and max_args must be at least 1")
        rm = _index(request_max)
        ma = _index(max_args)
        self._request_max = request_max
        self._max_args = max_args
        self._big = rm >= BIG
        self._rm = BIG if self._big else rm
        self._ma = ARGS_CAP if ma >= ARGS_CAP else ma

    @property
    def state(self):
        """The parser's state (after the last :meth:`commands`)."""
        return _STATES[self._st]

    @property
    def error(self):
        """The error that broke the stream, once it has; :meth:`commands` raises it."""
        return self._error

    @property
    def buffered(self):
        """Bytes held for requests not yet complete (on-the-wire count)."""
        cdef Py_ssize_t held = self._end - self._start
        if self._pending is not None:
            held += PyBytes_GET_SIZE(self._pending)
        if self._st == S_ARG_HEADER or self._st == S_ARG_DATA:
            held += self._size
        return held

    def feed(self, data):
        """Hold ``data`` for the next :meth:`commands`; cheap, parses nothing.

        :param data: bytes read from the connection (any bytes-like object).
        """
        if data and self._error is None:
            if type(data) is not bytes:
                data = bytes(data)
            if self._pending is None and self._start == self._end:
                self._pending = data
            else:
                if self._pending is not None:
                    self._append_bytes(self._pending)
                    self._pending = None
                self._append_bytes(data)
            self._fresh = True

    def commands(self):
        """Every command completed by the data fed since the last call, in order.

        :raises RequestTooLarge: a request is (or is announced) over ``request_max``.
        :raises TooManyArguments: a command announces more than ``max_args`` arguments.
        :raises ProtocolError: the stream is malformed, or broke at an earlier call.
        """
        cdef list out = []
        cdef bytes data
        cdef Py_ssize_t pos, n
        if self._error is not None:
            raise self._error
        if not self._fresh:
            return out
        self._fresh = False
        try:
            if self._pending is not None:
                data = self._pending
                self._pending = None
                n = PyBytes_GET_SIZE(data)
                pos = self._run(PyBytes_AS_STRING(data), 0, n, out)
                if pos < n:
                    self._append(PyBytes_AS_STRING(data) + pos, n - pos)
            else:
                self._start = self._run(self._mem, self._start, self._end, out)
                if self._start == self._end:
                    self._reset_buffer()
        except ProtocolError as exc:
            self._fail(exc)
            if not out:
                raise
        return out

    # -- buffer ------------------------------------------------------------------

    cdef int _append_bytes(self, bytes data) except -1:
        return self._append(PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))

    cdef int _append(self, const char* p, Py_ssize_t n) except -1:
        cdef Py_ssize_t live = self._end - self._start
        cdef Py_ssize_t cap
        cdef char* mem
        if self._end + n > self._cap:
            if self._start >= live and live + n <= self._cap:
                # The dead prefix is at least as long as what moves: amortised O(1) a byte.
                memmove(self._mem, self._mem + self._start, <size_t>live)
                self._start = 0
                self._end = live
            else:
                cap = max(self._cap * 2, self._end + n, <Py_ssize_t>BUF_MIN)
                mem = <char*>PyMem_Realloc(self._mem, <size_t>cap)
                if mem == NULL:
                    raise MemoryError()
                self._mem = mem
                self._cap = cap
        memcpy(self._mem + self._end, p, <size_t>n)
        self._end += n
        return 0

    cdef void _reset_buffer(self) noexcept:
        self._start = 0
        self._end = 0
        if self._cap > KEEP_MAX:
            PyMem_Free(self._mem)
            self._mem = NULL
            self._cap = 0

    cdef int _fail(self, exc) except -1:
        self._error = exc
        self._st = S_BROKEN
        self._pending = None
        self._fresh = False
        self._reset_buffer()
        self._args = []
        self._size = 0
        return 0

    # -- the state machine -------------------------------------------------------

    @cython.final
    cdef Py_ssize_t _run(self, const char* b, Py_ssize_t pos, Py_ssize_t end,
                         list out) except -1:
        """Parse ``b[pos:end]`` as far as it goes; return the position reached."""
        cdef int r, st
        while True:
            st = self._st
            if st == S_IDLE:
                if pos >= end:
                    break
                if b[pos] == c'*':
                    r = self._array_header(b, &pos, end)
                else:
                    r = self._inline(b, &pos, end, out)
            elif st == S_ARG_HEADER:
                r = self._arg_header(b, &pos, end)
            elif st == S_ARG_DATA:
                r = self._arg_data(b, &pos, end, out)
            else:
                r = self._inline(b, &pos, end, out)
            if not r:
                break
        return pos

    @cython.final
    cdef Py_ssize_t _header(self, const char* b, Py_ssize_t pos, Py_ssize_t end,
                            str what) except -2:
        """End (CRLF) of the header line at ``pos``, or -1 until it arrives."""
        cdef Py_ssize_t stop = pos + HEADER_MAX if end - pos > HEADER_MAX else end
        cdef Py_ssize_t nl = _find_crlf(b, pos + 1, stop)
        if nl < 0 and end - pos >= HEADER_MAX:
            raise ProtocolError(f"Protocol error: invalid {what} length")
        return nl

    @cython.final
    cdef int _array_header(self, const char* b, Py_ssize_t* at, Py_ssize_t end) except -1:
        cdef Py_ssize_t pos = at[0]
        cdef Py_ssize_t nl = self._header(b, pos, end, "multibulk")
        cdef Py_ssize_t size
        cdef bint neg
        cdef unsigned long long count
        if nl < 0:
            return 0
        if _parse_length(b + pos + 1, nl - pos - 1, &neg, &count) < 0:
            raise ProtocolError("Protocol error: invalid multibulk length")
        size = nl - pos + 2
        at[0] = pos + size
        if neg or count == 0:
            return 1
        if count - 1 > self._ma:
            raise TooManyArguments(
                f"Protocol error: invalid multibulk length: {count - 1} arguments,"
                f" more than cache.max_args ({self._max_args})"
            )
        if self._array_over(size, count):
            raise self._too_large("multibulk")
        self._st = S_ARG_HEADER
        self._remaining = count
        self._args = []
        self._size = size
        return 1

    @cython.final
    cdef bint _array_over(self, Py_ssize_t size, unsigned long long count) except -1:
        """Whether ``size + count * MIN_ARG > request_max``."""
        if self._big:
            return size + <object>count * MIN_ARG > self._request_max
        if <unsigned long long>size > self._rm:
            return True
        return count > (self._rm - <unsigned long long>size) // MIN_ARG

    @cython.final
    cdef int _arg_header(self, const char* b, Py_ssize_t* at, Py_ssize_t end) except -1:
        cdef Py_ssize_t pos = at[0]
        cdef Py_ssize_t nl, size
        cdef bint neg
        cdef unsigned long long length
        if pos >= end:
            return 0
        if b[pos] != c'$':
            raise ProtocolError(
                f"Protocol error: expected '$', got '{_shown(<unsigned char>b[pos])}'"
            )
        nl = self._header(b, pos, end, "bulk")
        if nl < 0:
            return 0
        if _parse_length(b + pos + 1, nl - pos - 1, &neg, &length) < 0 or neg:
            raise ProtocolError("Protocol error: invalid bulk length")
        size = nl - pos + 2
        if self._bulk_over(size, length):
            raise self._too_large("bulk")
        self._size += size
        at[0] = pos + size
        self._bulk_len = length
        self._st = S_ARG_DATA
        return 1

    @cython.final
    cdef bint _bulk_over(self, Py_ssize_t size, unsigned long long length) except -1:
        """Whether what came, this argument and the rest at their least exceed request_max."""
        cdef unsigned long long base
        if self._big:
            return (
                self._size + size + <object>length + 2 + (<object>self._remaining - 1) * MIN_ARG
                > self._request_max
            )
        # _size <= _rm and (_remaining - 1) * MIN_ARG <= _rm < 2**62: no overflow.
        base = <unsigned long long>(self._size + size + 2) + (self._remaining - 1) * MIN_ARG
        if base > self._rm:
            return True
        return length > self._rm - base

    @cython.final
    cdef int _arg_data(self, const char* b, Py_ssize_t* at, Py_ssize_t end,
                       list out) except -1:
        cdef Py_ssize_t start = at[0]
        cdef Py_ssize_t stop
        if self._bulk_len + 2 > <unsigned long long>(end - start):
            return 0
        stop = start + <Py_ssize_t>self._bulk_len
        if b[stop] != c'\r' or b[stop + 1] != c'\n':
            raise ProtocolError("Protocol error: expected '\\r\\n' after bulk data")
        self._args.append(PyBytes_FromStringAndSize(b + start, stop - start))
        at[0] = stop + 2
        self._size += <Py_ssize_t>self._bulk_len + 2
        self._remaining -= 1
        if self._remaining:
            self._st = S_ARG_HEADER
        else:
            out.append(self._args)
            self._args = []
            self._st = S_IDLE
        return 1

    @cython.final
    cdef int _inline(self, const char* b, Py_ssize_t* at, Py_ssize_t end,
                     list out) except -1:
        cdef Py_ssize_t pos = at[0]
        cdef Py_ssize_t held = end - pos
        cdef Py_ssize_t limit = held
        cdef const char* nl
        cdef list args
        if <unsigned long long>limit > self._rm:
            limit = <Py_ssize_t>self._rm
        nl = NULL
        if limit > self._scan:
            nl = <const char*>memchr(b + pos + self._scan, c'\n', <size_t>(limit - self._scan))
        if nl == NULL:
            if <unsigned long long>held >= self._rm:
                raise self._inline_too_large()
            self._scan = held
            self._st = S_INLINE
            return 0
        args = _split(b + pos, nl - (b + pos))
        at[0] = (nl - b) + 1
        self._scan = 0
        self._st = S_IDLE
        if <unsigned long long>len(args) > self._ma + 1:
            raise TooManyArguments(
                f"Protocol error: {len(args) - 1} arguments in an inline request,"
                f" more than cache.max_args ({self._max_args})"
            )
        if args:
            out.append(args)
        return 1

    cdef object _too_large(self, str what):
        return RequestTooLarge(
            f"Protocol error: invalid {what} length: the request would be over"
            f" cache.request_max ({self._request_max} bytes)"
        )

    cdef object _inline_too_large(self):
        return RequestTooLarge(
            "Protocol error: too big inline request: no newline within"
            f" cache.request_max ({self._request_max} bytes)"
        )


cdef list _split(const char* p, Py_ssize_t n):
    """``p[:n].split()``: the words between runs of ASCII whitespace."""
    cdef list words = []
    cdef Py_ssize_t i = 0, start
    while True:
        while i < n and _is_space(p[i]):
            i += 1
        if i >= n:
            return words
        start = i
        while i < n and not _is_space(p[i]):
            i += 1
        words.append(PyBytes_FromStringAndSize(p + start, i - start))
