# cython: language_level=3
"""Reading one term's postings a block at a time (the layout is in ``fileformat``).

A cursor holds one decoded block of up to 128 documents; ``_advance`` uses the
skip table (the last document of every block) to pass over blocks that cannot
hold the target.
"""

from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t
from libc.string cimport memcpy

cdef enum:
    BLOCK = 128

cdef extern from *:
    """
    #define SLEIGH_SEARCH_END ((int64_t)1 << 40)
    """
    # the document number of an exhausted cursor
    const int64_t END "SLEIGH_SEARCH_END"


cdef struct Cursor:
    const uint8_t* skips
    const uint8_t* data
    int64_t doc
    double weight
    uint32_t df
    uint32_t nblocks
    int32_t block
    uint32_t n
    uint32_t pos
    uint32_t docs[BLOCK]
    uint8_t tfs[BLOCK]


cdef inline uint32_t _u32(const uint8_t* p) noexcept nogil:
    return p[0] | (<uint32_t>p[1] << 8) | (<uint32_t>p[2] << 16) | (<uint32_t>p[3] << 24)


cdef inline void _load(Cursor* c, int32_t block) noexcept nogil:
    cdef int64_t previous = -1
    cdef const uint8_t* p
    cdef uint32_t i, n, value, shift
    cdef uint8_t byte
    if block > 0:
        previous = _u32(c.skips + (block - 1) * 8)
    p = c.data + _u32(c.skips + block * 8 + 4)
    n = c.df - <uint32_t>block * BLOCK
    if n > BLOCK:
        n = BLOCK
    for i in range(n):
        value = 0
        shift = 0
        while True:
            byte = p[0]
            p += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        previous += value
        c.docs[i] = <uint32_t>previous
    memcpy(c.tfs, p, n)
    c.block = block
    c.n = n
    c.pos = 0
    c.doc = c.docs[0]


cdef inline void _next(Cursor* c) noexcept nogil:
    c.pos += 1
    if c.pos < c.n:
        c.doc = c.docs[c.pos]
    elif <uint32_t>(c.block + 1) < c.nblocks:
        _load(c, c.block + 1)
    else:
        c.doc = END


cdef inline void _advance(Cursor* c, int64_t target) noexcept nogil:
    cdef int32_t block
    cdef uint32_t pos
    if c.doc >= target:
        return
    if target > <int64_t>_u32(c.skips + c.block * 8):
        block = c.block + 1
        while <uint32_t>block < c.nblocks and <int64_t>_u32(c.skips + block * 8) < target:
            block += 1
        if <uint32_t>block >= c.nblocks:
            c.doc = END
            return
        _load(c, block)
    pos = c.pos
    while c.docs[pos] < target:
        pos += 1
    c.pos = pos
    c.doc = c.docs[pos]


