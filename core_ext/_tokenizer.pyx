# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""The search tokenizer, compiled: the fast twin of ``sleigh.core_ext.tokenizer``.

The contract (folding, word characters, apostrophes, truncation) is written
once, in the docstring of the pure-Python twin; this module must return
exactly what the twin returns for every ``str``.

How it is fast:

* ASCII input (most catalog text) is never folded as a whole: one C loop
  over the 1-byte buffer classifies each byte through a table, lowercases it
  and copies it into a fixed token buffer; a token becomes a ``str`` with one
  allocation and a ``memcpy``.
* Other input is folded with ``unicodedata`` as the twin does; when it is
  mostly ASCII (a few accented words, a dash), only its non-ASCII runs go
  through ``unicodedata`` and the ASCII between is lowercased, which gives the
  same result (see ``_fold_runs``). Folded text is scanned by a C loop over
  its UCS buffer. A code point is classified through
  a two-level table: one 256-byte block per 256 code points, filled on first
  use from ``unicodedata.category`` and ``unicodedata.combining`` (so the
  classification is the twin's, for the same Unicode database), at most
  4,352 blocks for the whole code space.
"""

from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.unicode cimport (
    PyUnicode_4BYTE_KIND,
    PyUnicode_DATA,
    PyUnicode_FromKindAndData,
    PyUnicode_KIND,
    PyUnicode_New,
    PyUnicode_READ,
)
from libc.string cimport memcpy

from unicodedata import category as _category
from unicodedata import combining as _combining
from unicodedata import normalize as _normalize

cdef extern from "Python.h":
    bint PyUnicode_IS_ASCII(object o)

__all__ = ["MAX_TOKEN", "fold", "tokenize", "tokenize_positions"]

cdef enum:
    _MAX = 64
    _BLOCKS = 0x110000 >> 8
    _CHARS_PER_RUN = 32  # fold run by run when runs * this <= length

# Flag bits of a code point; 0 means separator.
cdef enum:
    F_WORD = 1       # letter or number: starts or continues a token
    F_MARK = 2       # mark of any combining class: continues a token
    F_APOS = 4       # ' or U+2019
    F_COMBINING = 8  # canonical combining class != 0: removed by fold

#: Longest token kept, in code points; longer tokens are truncated to this.
MAX_TOKEN = _MAX

# _blocks[cp >> 8][cp & 0xFF] holds the flags of code point cp; NULL = not yet filled.
cdef unsigned char* _blocks[_BLOCKS]
cdef unsigned char _ascii_lower[128]
cdef const unsigned char* _ascii_flags


cdef unsigned char _classify(unsigned int cp) except 255:
    cdef str ch = chr(cp)
    cdef Py_UCS4 major = (<str>_category(ch))[0]
    cdef unsigned char flags = 0
    if cp == 0x27 or cp == 0x2019:
        return F_APOS
    if major == u"L" or major == u"N":
        flags = F_WORD
    elif major == u"M":
        flags = F_MARK
    if _combining(ch) != 0:
        flags |= F_COMBINING
    return flags


cdef unsigned char* _fill_block(Py_ssize_t b) except NULL:
    cdef unsigned char* block = <unsigned char*>PyMem_Malloc(256)
    cdef Py_ssize_t j
    if block == NULL:
        raise MemoryError()
    try:
        for j in range(256):
            block[j] = _classify(<unsigned int>(b * 256 + j))
    except BaseException:
        PyMem_Free(block)
        raise
    if _blocks[b] != NULL:  # filled meanwhile by another thread: keep that one
        PyMem_Free(block)
    else:
        _blocks[b] = block
    return _blocks[b]


cdef inline unsigned char _flags(unsigned int cp) except 255:
    cdef unsigned char* block = _blocks[cp >> 8]
    if block == NULL:
        block = _fill_block(cp >> 8)
    return block[cp & 0xFF]


cdef _init_tables():
    global _ascii_flags
    cdef int c
    _ascii_flags = _fill_block(0)
    for c in range(128):
        _ascii_lower[c] = c + 32 if 0x41 <= c <= 0x5A else c


_init_tables()


cdef str _strip_combining(str s):
    """Return *s* without the code points flagged F_COMBINING."""
    cdef Py_ssize_t n = len(s), i, m = 0
    cdef unsigned int kind = PyUnicode_KIND(s)
    cdef void* data = PyUnicode_DATA(s)
    cdef unsigned int cp
    cdef Py_UCS4* buf = <Py_UCS4*>PyMem_Malloc(max(n, 1) * sizeof(Py_UCS4))
    if buf == NULL:
        raise MemoryError()
    try:
        for i in range(n):
            cp = PyUnicode_READ(kind, data, i)
            if cp < 128 or not (_flags(cp) & F_COMBINING):
                buf[m] = cp
                m += 1
        if m == n:
            return s
        return PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, buf, m)
    finally:
        PyMem_Free(buf)


cdef str _fold_whole(str s):
    s = _normalize("NFD", s).casefold()
    s = _normalize("NFKD", s).casefold()
    return _strip_combining(_normalize("NFKD", s))


cdef str _fold_runs(str s, Py_ssize_t n, unsigned int kind, void* data):
    """Fold *s* one maximal non-ASCII run at a time, lowercasing the ASCII between.

    Equal to ``_fold_whole(s)``: an ASCII character has combining class 0 and
    no decomposition, so canonical reordering never crosses it, and
    ``str.casefold`` maps each code point without looking at its neighbours.
    """
    cdef list pieces = []
    cdef Py_ssize_t start = 0, i = 0, j
    while i < n:
        if PyUnicode_READ(kind, data, i) < 128:
            i += 1
            continue
        j = i + 1
        while j < n and PyUnicode_READ(kind, data, j) >= 128:
            j += 1
        if i > start:
            pieces.append(s[start:i].lower())
        pieces.append(_fold_whole(s[i:j]))
        start = i = j
    if start < n:
        pieces.append(s[start:n].lower())
    return "".join(pieces)


cdef str _fold(str s):
    """Fold *s*; text that is mostly ASCII is folded run by run, which is faster."""
    cdef Py_ssize_t n = len(s), i, runs = 0
    cdef unsigned int kind
    cdef void* data
    cdef bint was_ascii = True, is_ascii
    if PyUnicode_IS_ASCII(s):
        return s.lower()
    kind = PyUnicode_KIND(s)
    data = PyUnicode_DATA(s)
    for i in range(n):
        is_ascii = PyUnicode_READ(kind, data, i) < 128
        if was_ascii and not is_ascii:
            runs += 1
        was_ascii = is_ascii
    # A run costs a few Python calls; a whole-string fold costs five passes over s.
    if runs * _CHARS_PER_RUN > n:
        return _fold_whole(s)
    return _fold_runs(s, n, kind, data)


cdef inline int _emit(list out, str token, bint positions) except -1:
    if positions:
        out.append((token, len(out)))
    else:
        out.append(token)
    return 0


cdef int _scan_ascii(str s, bint lower, list out, bint positions) except -1:
    """Tokenize the ASCII string *s*, lowercasing it on the way if *lower*."""
    cdef const unsigned char* data = <const unsigned char*>PyUnicode_DATA(s)
    cdef Py_ssize_t n = len(s), i, length = 0
    cdef unsigned char c, flags
    cdef char buf[_MAX]
    cdef str token
    for i in range(n):
        c = data[i]
        flags = _ascii_flags[c]
        if flags & F_WORD:
            if length < _MAX:
                buf[length] = _ascii_lower[c] if lower else c
            length += 1
        elif flags & F_APOS and length and i + 1 < n and _ascii_flags[data[i + 1]] & F_WORD:
            continue
        elif length:
            token = PyUnicode_New(min(length, _MAX), 127)
            memcpy(PyUnicode_DATA(token), buf, min(length, _MAX))
            _emit(out, token, positions)
            length = 0
    if length:
        token = PyUnicode_New(min(length, _MAX), 127)
        memcpy(PyUnicode_DATA(token), buf, min(length, _MAX))
        _emit(out, token, positions)
    return 0


cdef inline unsigned char _flags_at(unsigned int kind, void* data, Py_ssize_t i) except 255:
    cdef unsigned int cp = PyUnicode_READ(kind, data, i)
    return _ascii_flags[cp] if cp < 128 else _flags(cp)


cdef int _scan_folded(str s, list out, bint positions) except -1:
    """Tokenize the folded, non-ASCII string *s*."""
    cdef unsigned int kind = PyUnicode_KIND(s)
    cdef void* data = PyUnicode_DATA(s)
    cdef Py_ssize_t n = len(s), i, length = 0
    cdef unsigned char flags
    cdef Py_UCS4 buf[_MAX]
    for i in range(n):
        flags = _flags_at(kind, data, i)
        if flags & F_WORD or (flags & F_MARK and length):
            if length < _MAX:
                buf[length] = PyUnicode_READ(kind, data, i)
            length += 1
        elif flags & F_APOS and length and i + 1 < n and _flags_at(kind, data, i + 1) & F_WORD:
            continue
        elif length:
            _emit(out, PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, buf, min(length, _MAX)),
                  positions)
            length = 0
    if length:
        _emit(out, PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, buf, min(length, _MAX)),
              positions)
    return 0


cdef str _exact_str(object text):
    """Return *text* as an exact ``str``; ``str`` subclasses are copied."""
    if type(text) is str:
        return <str>text
    if isinstance(text, str):
        return text[:]
    raise TypeError(f"expected str, got {type(text).__name__}")


cdef list _tokenize(str text, bint positions):
    cdef list out = []
    if PyUnicode_IS_ASCII(text):
        _scan_ascii(text, True, out, positions)
        return out
    folded = _fold(text)
    if PyUnicode_IS_ASCII(folded):
        _scan_ascii(folded, False, out, positions)
    else:
        _scan_folded(folded, out, positions)
    return out


def fold(text):
    """Fold case, compatibility forms and accents, as search compares words.

    :param text: any text; lone surrogates pass through unchanged.
    :returns: the folded text.
    :raises TypeError: if *text* is not a ``str``.
    """
    return _fold(_exact_str(text))


def tokenize(text):
    """Fold *text* and split it into search tokens.

    :param text: any text.
    :returns: the tokens in order, each 1 to ``MAX_TOKEN`` code points.
    :raises TypeError: if *text* is not a ``str``.
    """
    return _tokenize(_exact_str(text), False)


def tokenize_positions(text):
    """Tokenize *text* and number the tokens 0, 1, 2, ... for phrase queries.

    :param text: any text.
    :returns: ``(token, position)`` pairs in order.
    :raises TypeError: if *text* is not a ``str``.
    """
    return _tokenize(_exact_str(text), True)
