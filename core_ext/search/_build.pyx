# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""The index builder's heavy steps, compiled: twins of ``builder.PyTermCounter`` and
``postings.py_encode_index``, producing the same bytes.
"""

from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.string cimport memcpy, memset

from array import array

from .fileformat import NO_BITMAP
from .postings import DENSE

from ._cursor cimport BLOCK

__all__ = ["TermCounter", "encode_index"]


cdef uint8_t* _varint(uint8_t* p, uint32_t value) noexcept nogil:
    while value >= 0x80:
        p[0] = (value & 0x7F) | 0x80
        p += 1
        value >>= 7
    p[0] = value
    return p + 1


cdef int64_t _encode_term(uint8_t* out, const uint32_t* docs, const uint8_t* tfs,
                          uint32_t df) noexcept nogil:
    """One term's postings at *out* (see ``fileformat``); returns the bytes written."""
    cdef uint32_t nblocks = (df + BLOCK - 1) // BLOCK, block, start, stop, i
    cdef uint8_t* body = out + nblocks * 8
    cdef uint8_t* p = body
    cdef int64_t previous = -1
    cdef uint32_t last, offset
    for block in range(nblocks):
        start = block * BLOCK
        stop = start + BLOCK if start + BLOCK < df else df
        last = docs[stop - 1]
        offset = <uint32_t>(p - body)
        memcpy(out + block * 8, &last, 4)
        memcpy(out + block * 8 + 4, &offset, 4)
        for i in range(start, stop):
            p = _varint(p, <uint32_t>(docs[i] - previous))
            previous = docs[i]
        memcpy(p, tfs + start, stop - start)
        p += stop - start
    return p - out


def encode_index(ids, tfs, starts, final, Py_ssize_t n_terms):
    """Compiled twin of ``sleigh.core_ext.search.postings.py_encode_index``."""
    cdef const uint32_t[::1] c_ids = ids
    cdef const uint8_t[::1] c_tfs = tfs
    cdef const uint64_t[::1] c_starts = starts
    cdef const uint32_t[::1] c_final = final
    cdef Py_ssize_t n_docs = len(starts) - 1, total = len(ids), doc, i, term
    cdef Py_ssize_t words = (n_docs + 63) // 64, n_dense = 0
    cdef uint32_t t
    df_array = array("I", bytes(4 * n_terms))
    cdef uint32_t[::1] df = df_array
    at_array = array("q", bytes(8 * (n_terms + 1)))
    cdef int64_t[::1] at = at_array
    bitmap_array = array("q", bytes(8 * n_terms))
    cdef int64_t[::1] bitmap_at = bitmap_array
    cdef uint64_t* where = <uint64_t*>calloc(n_terms + 1, sizeof(uint64_t))
    cdef uint32_t* flat_docs = <uint32_t*>malloc(max(total, 1) * sizeof(uint32_t))
    cdef uint8_t* flat_tfs = <uint8_t*>malloc(max(total, 1))
    cdef uint8_t* out = NULL
    cdef int64_t size = 0, bound = 0
    cdef uint64_t* bits
    if where == NULL or flat_docs == NULL or flat_tfs == NULL:
        free(where); free(flat_docs); free(flat_tfs)
        raise MemoryError()
    try:
        with nogil:
            for i in range(total):
                df[c_final[c_ids[i]]] += 1
            for term in range(n_terms):
                where[term + 1] = where[term] + df[term]
                bound += (df[term] + BLOCK - 1) // BLOCK * 8 + df[term] * 6 + 4
            for doc in range(n_docs):
                for i in range(<Py_ssize_t>c_starts[doc], <Py_ssize_t>c_starts[doc + 1]):
                    t = c_final[c_ids[i]]
                    flat_docs[where[t]] = <uint32_t>doc
                    flat_tfs[where[t]] = c_tfs[i]
                    where[t] += 1
            out = <uint8_t*>malloc(bound + 8)
        if out == NULL:
            raise MemoryError()
        with nogil:
            for term in range(n_terms):
                size += _encode_term(out + size, flat_docs + where[term] - df[term],
                                     flat_tfs + where[term] - df[term], df[term])
                while size % 4:
                    out[size] = 0
                    size += 1
                at[term + 1] = size
        for term in range(n_terms):
            if df[term] * DENSE >= n_docs and df[term] >= 2:
                bitmap_at[term] = n_dense * words
                n_dense += 1
            else:
                bitmap_at[term] = NO_BITMAP
        bitmaps = bytearray(8 * words * n_dense)
        if n_dense:
            bits = <uint64_t*><uint8_t*>bitmaps
            for term in range(n_terms):
                if bitmap_at[term] != NO_BITMAP:
                    _fill_bitmap(bits + bitmap_at[term], flat_docs + where[term] - df[term], df[term])
        postings = out[:size] if size else b""
        return postings, at_array.tobytes(), df_array.tobytes(), bitmap_array.tobytes(), bytes(bitmaps)
    finally:
        free(where); free(flat_docs); free(flat_tfs); free(out)


cdef void _fill_bitmap(uint64_t* bits, const uint32_t* docs, uint32_t df) noexcept nogil:
    cdef uint32_t i
    for i in range(df):
        bits[docs[i] >> 6] |= (<uint64_t>1) << (docs[i] & 63)


cdef struct Vec:
    uint8_t* data
    Py_ssize_t size      # bytes used
    Py_ssize_t capacity  # bytes


cdef int _reserve(Vec* v, Py_ssize_t more) except -1:
    cdef Py_ssize_t capacity = v.capacity if v.capacity else 4096
    cdef uint8_t* data
    if v.size + more <= v.capacity:
        return 0
    while capacity < v.size + more:
        capacity *= 2
    data = <uint8_t*>realloc(v.data, capacity)
    if data == NULL:
        raise MemoryError()
    memset(data + v.capacity, 0, capacity - v.capacity)
    v.data = data
    v.capacity = capacity
    return 0


cdef object _to_array(Vec* v, str code):
    out = array(code)
    out.frombytes((<char*>v.data)[:v.size] if v.size else b"")
    return out


cdef class TermCounter:
    """Compiled twin of ``builder._Terms``'s counting: words to per-document term counts.

    Words are numbered as first seen; *assign* gives a new word's provisional term
    number, or -1 for a stop word. :meth:`add` takes a document's four token lists
    (title, brand, category, description; stop words included) and records its
    ``(term, weighted frequency)`` entries, its weighted length and its words.
    """

    cdef dict words
    cdef object assign
    cdef Vec word_term, word_df, seen, counts, ids, tfs, starts, lengths, touched
    cdef int64_t doc
    cdef uint32_t w[4]

    def __init__(self, assign, tuple weights):
        self.words = {}
        self.assign = assign
        self.doc = 0
        for i in range(4):
            self.w[i] = weights[i]
        _reserve(&self.starts, 8)
        self.starts.size = 8

    def __dealloc__(self):
        free(self.word_term.data)
        free(self.word_df.data)
        free(self.seen.data)
        free(self.counts.data)
        free(self.ids.data)
        free(self.tfs.data)
        free(self.starts.data)
        free(self.lengths.data)
        free(self.touched.data)

    cdef Py_ssize_t _number(self, object word) except -1:
        cdef Py_ssize_t n
        cdef int32_t term
        found = self.words.get(word)
        if found is not None:
            return <Py_ssize_t>found
        term = self.assign(word)
        n = self.word_term.size // 4
        self.words[word] = n
        _reserve(&self.word_term, 4)
        _reserve(&self.word_df, 4)
        _reserve(&self.seen, 8)
        (<int32_t*>self.word_term.data)[n] = term
        (<uint32_t*>self.word_df.data)[n] = 0
        (<int64_t*>self.seen.data)[n] = -1
        self.word_term.size += 4
        self.word_df.size += 4
        self.seen.size += 8
        if term >= 0 and (term + 1) * 4 > self.counts.size:
            _reserve(&self.counts, (term + 1) * 4 - self.counts.size)
            self.counts.size = (term + 1) * 4
        return n

    cdef int64_t _field(self, list tokens, uint32_t weight) except -1:
        cdef Py_ssize_t n
        cdef int32_t term
        cdef int64_t length = 0
        cdef uint32_t* counts
        cdef int64_t* seen
        for word in tokens:
            n = self._number(word)
            term = (<int32_t*>self.word_term.data)[n]
            if term < 0:
                continue
            seen = <int64_t*>self.seen.data
            if seen[n] != self.doc:
                seen[n] = self.doc
                (<uint32_t*>self.word_df.data)[n] += 1
            counts = <uint32_t*>self.counts.data
            if counts[term] == 0:
                _reserve(&self.touched, 4)
                (<int32_t*>(self.touched.data + self.touched.size))[0] = term
                self.touched.size += 4
            counts[term] += weight
            length += weight
        return length

    def add(self, list title, list brand, list category, list description):
        cdef int64_t length = 0
        cdef Py_ssize_t i, k = self.touched.size // 4
        cdef uint32_t* counts
        cdef int32_t term
        length += self._field(title, self.w[0])
        length += self._field(brand, self.w[1])
        length += self._field(category, self.w[2])
        length += self._field(description, self.w[3])
        k = self.touched.size // 4
        _reserve(&self.ids, 4 * k)
        _reserve(&self.tfs, k)
        _reserve(&self.starts, 8)
        _reserve(&self.lengths, 4)
        counts = <uint32_t*>self.counts.data
        for i in range(k):
            term = (<int32_t*>self.touched.data)[i]
            (<int32_t*>(self.ids.data + self.ids.size))[i] = term
            self.tfs.data[self.tfs.size + i] = counts[term] if counts[term] < 255 else 255
            counts[term] = 0
        self.ids.size += 4 * k
        self.tfs.size += k
        self.touched.size = 0
        (<uint64_t*>(self.starts.data + self.starts.size))[0] = self.ids.size // 4
        self.starts.size += 8
        (<uint32_t*>(self.lengths.data + self.lengths.size))[0] = <uint32_t>length
        self.lengths.size += 4
        self.doc += 1

    def result(self):
        """``(words, word_term, word_df, ids, tfs, starts, lengths)``; words in number order."""
        return (
            list(self.words),
            _to_array(&self.word_term, "i"),
            _to_array(&self.word_df, "I"),
            _to_array(&self.ids, "I"),
            _to_array(&self.tfs, "B"),
            _to_array(&self.starts, "Q"),
            _to_array(&self.lengths, "I"),
        )

