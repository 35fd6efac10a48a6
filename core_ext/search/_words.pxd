# cython: language_level=3
"""Did-you-mean over the dictionary of words: the compiled side of ``suggest``.

Levenshtein distance over code points with the same bound and tie rules as
``suggest.nearest_word``; two exact lower bounds skip most words cheaply: the
difference of lengths, and half the bits that differ between two 64-bit
signatures of the code points present (an edit flips at most two bits).
"""

from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy

cdef extern from *:
    int __builtin_popcountll(unsigned long long) nogil

cdef enum:
    MAX_CP = 64


cdef inline int _decode_utf8(const uint8_t* p, const uint8_t* end, uint32_t* out) noexcept nogil:
    """Code points of a UTF-8 word into *out* (at most MAX_CP); -1 if longer."""
    cdef int n = 0
    cdef uint32_t cp
    cdef uint8_t b
    while p < end:
        if n == MAX_CP:
            return -1
        b = p[0]
        if b < 0x80:
            cp = b
            p += 1
        elif b < 0xE0:
            cp = ((b & 0x1F) << 6) | (p[1] & 0x3F)
            p += 2
        elif b < 0xF0:
            cp = ((b & 0x0F) << 12) | ((p[1] & 0x3F) << 6) | (p[2] & 0x3F)
            p += 3
        else:
            cp = ((b & 0x07) << 18) | ((p[1] & 0x3F) << 12) | ((p[2] & 0x3F) << 6) | (p[3] & 0x3F)
            p += 4
        out[n] = cp
        n += 1
    return n


cdef inline int _distance(const uint32_t* a, int la, const uint32_t* b, int lb, int bound) noexcept nogil:
    cdef int previous[MAX_CP + 1]
    cdef int current[MAX_CP + 1]
    cdef int i, j, best, v
    if la - lb > bound or lb - la > bound:
        return bound + 1
    for j in range(lb + 1):
        previous[j] = j
    for i in range(1, la + 1):
        current[0] = i
        best = i
        for j in range(1, lb + 1):
            v = previous[j] + 1
            if current[j - 1] + 1 < v:
                v = current[j - 1] + 1
            if previous[j - 1] + (a[i - 1] != b[j - 1]) < v:
                v = previous[j - 1] + (a[i - 1] != b[j - 1])
            current[j] = v
            if v < best:
                best = v
        if best > bound:
            return bound + 1
        memcpy(previous, current, (lb + 1) * sizeof(int))
    return previous[lb] if previous[lb] <= bound else bound + 1


cdef inline uint64_t _signature(const uint32_t* word, int length) noexcept nogil:
    """One bit per code point present (hashed to 64 bits); an edit flips at most two."""
    cdef uint64_t bits = 0
    cdef int i
    for i in range(length):
        bits |= (<uint64_t>1) << ((word[i] * 2654435761u) >> 26 & 63)
    return bits


cdef inline void _signatures(const uint32_t* offsets, const uint8_t* text, int64_t n_words,
                      uint64_t* signatures, uint8_t* lengths) noexcept nogil:
    cdef uint32_t word[MAX_CP]
    cdef int64_t n
    cdef int length
    for n in range(n_words):
        length = _decode_utf8(text + offsets[n], text + offsets[n + 1], word)
        if length < 0:
            lengths[n] = 255
        else:
            lengths[n] = length
            signatures[n] = _signature(word, length)


cdef inline int64_t _nearest(const uint32_t* offsets, const uint8_t* text, const uint32_t* df,
                      int64_t n_words, const uint64_t* signatures, const uint8_t* lengths,
                      const uint32_t* target, int length, int bound) noexcept nogil:
    cdef uint32_t word[MAX_CP]
    cdef int64_t n, best = -1
    cdef int lw, d, best_distance = bound + 1
    cdef uint32_t best_df = 0
    cdef uint64_t signature = _signature(target, length)
    for n in range(n_words):
        # cheap lower bounds first: the length difference, half the differing signature bits
        if lengths[n] + bound < length or lengths[n] > length + bound:
            continue
        if __builtin_popcountll(signatures[n] ^ signature) > 2 * bound:
            continue
        lw = _decode_utf8(text + offsets[n], text + offsets[n + 1], word)
        if lw < 0:
            continue
        d = _distance(target, length, word, lw, bound)
        if d > bound:
            continue
        if best < 0 or d < best_distance or (d == best_distance and df[n] > best_df):
            best, best_distance, best_df = n, d, df[n]
    return best


