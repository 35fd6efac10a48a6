# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""The query engine, compiled: the fast twin of ``sleigh.core_ext.search.twin``.

Same plans in, same pages, totals and facet counts out (the tests check it on
random catalogs and queries). How it is fast:

* document at a time over block cursors: each posting list is read one block of
  128 documents at a time, and the skip table (last document of every block)
  jumps over blocks that cannot hold the target;
* the clause with the fewest postings leads the intersection, the others only
  ``advance`` to the leader's document; excluded terms are tested against a
  bitmap when the term has one;
* a bounded heap keeps the best ``offset + limit`` documents; every document that
  matches is counted (exact totals) and, if asked, counted into the facets;
* sorting by popularity is document order, so past a full page a match costs a
  count and nothing else;
* the whole walk runs without the GIL: query threads run in parallel.
"""

from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.string cimport memcpy, memset

from array import array

from .fileformat import NO_BITMAP, Section
from .model import AGE_BANDS, PRICE_BANDS
from .postings import DENSE

__all__ = ["Engine", "encode_index"]

cdef extern from *:
    int __builtin_popcountll(unsigned long long) nogil

DEF BLOCK = 128
DEF MAX_KEYS = 6
DEF MAX_CP = 64
cdef int64_t END = 1 << 40


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


cdef struct Clause:
    Cursor* cursors
    int count
    int64_t doc
    uint64_t cost


cdef struct Entry:
    double key[MAX_KEYS]
    int64_t doc


cdef inline uint32_t _u32(const uint8_t* p) noexcept nogil:
    return p[0] | (<uint32_t>p[1] << 8) | (<uint32_t>p[2] << 16) | (<uint32_t>p[3] << 24)


cdef void _load(Cursor* c, int32_t block) noexcept nogil:
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


cdef void _advance(Cursor* c, int64_t target) noexcept nogil:
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


cdef inline int64_t _clause_doc(Clause* k) noexcept nogil:
    cdef int i
    cdef int64_t best = END
    for i in range(k.count):
        if k.cursors[i].doc < best:
            best = k.cursors[i].doc
    k.doc = best
    return best


cdef inline int64_t _clause_advance(Clause* k, int64_t target) noexcept nogil:
    cdef int i
    if k.count == 1:
        _advance(&k.cursors[0], target)
        k.doc = k.cursors[0].doc
        return k.doc
    for i in range(k.count):
        _advance(&k.cursors[i], target)
    return _clause_doc(k)


cdef inline double _clause_score(Clause* k, int64_t doc, double k1p1, double norm) noexcept nogil:
    cdef int i
    cdef double score = 0.0, tf
    for i in range(k.count):
        if k.cursors[i].doc == doc:
            tf = k.cursors[i].tfs[k.cursors[i].pos]
            score = score + k.cursors[i].weight * tf * k1p1 / (tf + norm)
    return score


cdef inline bint _better(const Entry* a, const Entry* b, int nkeys) noexcept nogil:
    """Whether *a* sorts before *b*."""
    cdef int i
    for i in range(nkeys):
        if a.key[i] != b.key[i]:
            return a.key[i] < b.key[i]
    return a.doc < b.doc


cdef void _sift_down(Entry* heap, int size, int i, int nkeys) noexcept nogil:
    """Restore the heap (worst entry at the root) below *i*."""
    cdef int child
    cdef Entry item = heap[i]
    while True:
        child = 2 * i + 1
        if child >= size:
            break
        if child + 1 < size and _better(&heap[child], &heap[child + 1], nkeys):
            child += 1
        if not _better(&item, &heap[child], nkeys):
            break
        heap[i] = heap[child]
        i = child
    heap[i] = item


cdef void _sift_up(Entry* heap, int i, int nkeys) noexcept nogil:
    cdef int parent
    cdef Entry item = heap[i]
    while i > 0:
        parent = (i - 1) // 2
        if not _better(&heap[parent], &item, nkeys):
            break
        heap[i] = heap[parent]
        i = parent
    heap[i] = item


cdef struct Columns:
    const int32_t* price
    const int32_t* brand
    const int32_t* category
    const uint8_t* age_min
    const uint8_t* age_max
    const uint8_t* stock
    const int64_t* created
    const float* norm
    const uint64_t* bitmaps
    int64_t n_docs


cdef struct Query:
    Clause* clauses
    int* score_order
    int nclauses
    Cursor* excluded
    const uint64_t** excluded_bits
    int nexcluded
    const uint8_t* category_mask
    const uint8_t* brand_mask
    int64_t price_min
    int64_t price_max
    int age
    int in_stock
    int keys[MAX_KEYS]
    int nkeys
    bint scored
    double k1p1
    # results
    Entry* heap
    int capacity
    int size
    int64_t total
    int64_t* facet_category
    int64_t* facet_brand
    int64_t facet_price[8]
    int64_t facet_age[8]
    bint facets
    int64_t price_low[8]
    int64_t price_high[8]
    int n_price
    int age_low[8]
    int age_high[8]
    int n_age


cdef inline bint _excluded(Query* q, int64_t doc) noexcept nogil:
    cdef int i
    for i in range(q.nexcluded):
        if q.excluded_bits[i] != NULL:
            if (q.excluded_bits[i][doc >> 6] >> (doc & 63)) & 1:
                return True
        else:
            _advance(&q.excluded[i], doc)
            if q.excluded[i].doc == doc:
                return True
    return False


cdef inline bint _keep(Query* q, const Columns* col, int64_t doc) noexcept nogil:
    cdef int32_t price
    if q.category_mask != NULL and not q.category_mask[col.category[doc]]:
        return False
    if q.brand_mask != NULL and not q.brand_mask[col.brand[doc]]:
        return False
    price = col.price[doc]
    if price < q.price_min or price > q.price_max:
        return False
    if q.age >= 0 and not (col.age_min[doc] <= q.age <= col.age_max[doc]):
        return False
    if q.in_stock >= 0 and col.stock[doc] != q.in_stock:
        return False
    return True


cdef void _count_facets(Query* q, const Columns* col, int64_t doc) noexcept nogil:
    cdef int i
    cdef int64_t price = col.price[doc]
    if col.category[doc] >= 0:
        q.facet_category[col.category[doc]] += 1
    q.facet_brand[col.brand[doc]] += 1
    for i in range(q.n_price):
        if q.price_low[i] <= price < q.price_high[i]:
            q.facet_price[i] += 1
    for i in range(q.n_age):
        if col.age_min[doc] <= q.age_high[i] and col.age_max[doc] >= q.age_low[i]:
            q.facet_age[i] += 1


cdef void _collect(Query* q, const Columns* col, int64_t doc) noexcept nogil:
    """Count a matching document and offer it to the heap."""
    cdef Entry entry
    cdef int i
    cdef double score = 0.0
    q.total += 1
    if q.facets:
        _count_facets(q, col, doc)
    if q.capacity == 0:
        return
    if q.size == q.capacity and q.nkeys == 0:
        return  # document order: every later match sorts after the page
    if q.scored:
        for i in range(q.nclauses):
            score = score + _clause_score(
                &q.clauses[q.score_order[i]], doc, q.k1p1, col.norm[doc]
            )
    for i in range(q.nkeys):
        if q.keys[i] == 0:
            entry.key[i] = -score
        elif q.keys[i] == 1:
            entry.key[i] = col.price[doc]
        elif q.keys[i] == 2:
            entry.key[i] = -<double>col.price[doc]
        elif q.keys[i] == 4:
            entry.key[i] = -<double>col.created[doc]
        else:
            entry.key[i] = -<double>col.stock[doc]
    entry.doc = doc
    if q.size < q.capacity:
        q.heap[q.size] = entry
        _sift_up(q.heap, q.size, q.nkeys)
        q.size += 1
    elif _better(&entry, &q.heap[0], q.nkeys):
        q.heap[0] = entry
        _sift_down(q.heap, q.size, 0, q.nkeys)


cdef void _scan(Query* q, const Columns* col) noexcept nogil:
    """Every document, for queries without words."""
    cdef int64_t doc
    for doc in range(col.n_docs):
        if q.nexcluded and _excluded(q, doc):
            continue
        if _keep(q, col, doc):
            _collect(q, col, doc)


cdef void _intersect(Query* q, const Columns* col) noexcept nogil:
    """Documents in every clause; clauses are ordered cheapest first."""
    cdef Clause* lead = &q.clauses[0]
    cdef int64_t doc = lead.doc, found
    cdef int i
    cdef bint all_in
    while doc < END:
        all_in = True
        for i in range(1, q.nclauses):
            found = _clause_advance(&q.clauses[i], doc)
            if found != doc:
                doc = _clause_advance(lead, found)
                all_in = False
                break
        if not all_in:
            continue
        if not (q.nexcluded and _excluded(q, doc)) and _keep(q, col, doc):
            _collect(q, col, doc)
        doc = _clause_advance(lead, doc + 1)


cdef void _run(Query* q, const Columns* col) noexcept nogil:
    if q.nclauses == 0:
        _scan(q, col)
    else:
        _intersect(q, col)


cdef int _sort_heap(Entry* heap, int size, int nkeys) noexcept nogil:
    """Sort the heap's entries best first (heap sort, in place)."""
    cdef int end
    cdef Entry tmp
    end = size - 1
    while end > 0:
        tmp = heap[0]
        heap[0] = heap[end]
        heap[end] = tmp
        _sift_down(heap, end, 0, nkeys)
        end -= 1
    return 0


cdef class Engine:
    """Executes plans over one index file and the price and stock overlay."""

    cdef const uint8_t[::1] _raw
    cdef int32_t[::1] _price
    cdef uint8_t[::1] _stock
    cdef const uint8_t* base
    cdef Columns col
    cdef const uint8_t* postings
    cdef const int64_t* term_at
    cdef const uint32_t* term_df
    cdef const int64_t* term_bitmap
    cdef const uint32_t* word_offsets
    cdef const uint8_t* word_text
    cdef const uint32_t* word_df
    cdef int64_t n_terms, n_words, n_categories, n_brands
    cdef double k1p1
    cdef object index
    cdef uint64_t* signatures
    cdef uint8_t* lengths

    def __dealloc__(self):
        free(self.signatures)
        free(self.lengths)

    def __init__(self, index, price, stock):
        self.index = index
        self._raw = index.raw
        self._price = price
        self._stock = stock
        self.base = &self._raw[0]
        spans = index.header.spans
        self.col.price = &self._price[0] if len(price) else NULL
        self.col.stock = &self._stock[0] if len(stock) else NULL
        self.col.brand = <const int32_t*>(self._at(spans, Section.BRAND))
        self.col.category = <const int32_t*>(self._at(spans, Section.CATEGORY))
        self.col.age_min = self._at(spans, Section.AGE_MIN)
        self.col.age_max = self._at(spans, Section.AGE_MAX)
        self.col.created = <const int64_t*>(self._at(spans, Section.CREATED))
        self.col.norm = <const float*>(self._at(spans, Section.NORM))
        self.col.bitmaps = <const uint64_t*>(self._at(spans, Section.BITMAPS))
        self.col.n_docs = index.n_docs
        self.postings = self._at(spans, Section.POSTINGS)
        self.term_at = <const int64_t*>(self._at(spans, Section.TERM_POSTINGS))
        self.term_df = <const uint32_t*>(self._at(spans, Section.TERM_DF))
        self.term_bitmap = <const int64_t*>(self._at(spans, Section.TERM_BITMAP))
        self.word_offsets = <const uint32_t*>(self._at(spans, Section.WORD_OFFSETS))
        self.word_text = self._at(spans, Section.WORD_TEXT)
        self.word_df = <const uint32_t*>(self._at(spans, Section.WORD_DF))
        self.n_terms = index.n_terms
        self.n_words = index.n_words
        self.n_categories = len(index.meta["categories"])
        self.n_brands = len(index.meta["brands"])
        self.k1p1 = float(index.meta["k1"]) + 1.0
        self.signatures = <uint64_t*>calloc(self.n_words + 1, sizeof(uint64_t))
        self.lengths = <uint8_t*>calloc(self.n_words + 1, 1)
        if self.signatures == NULL or self.lengths == NULL:
            raise MemoryError()
        _signatures(self.word_offsets, self.word_text, self.n_words, self.signatures, self.lengths)

    cdef const uint8_t* _at(self, list spans, object section):
        cdef Py_ssize_t offset = spans[section][0]
        return self.base + offset

    cdef void _cursor(self, Cursor* c, int64_t term, double weight):
        cdef uint32_t df = self.term_df[term]
        c.df = df
        c.nblocks = (df + BLOCK - 1) // BLOCK
        c.skips = self.postings + self.term_at[term]
        c.data = c.skips + c.nblocks * 8
        c.weight = weight
        if df == 0:
            c.doc = END
            c.block = 0
            c.nblocks = 0
        else:
            _load(c, 0)

    cdef int _prepare(self, Query* q, object plan) except -1:
        cdef int i, j, count
        cdef uint64_t cost
        clauses = plan.clauses
        q.nclauses = len(clauses)
        q.clauses = <Clause*>calloc(max(q.nclauses, 1), sizeof(Clause))
        q.score_order = <int*>calloc(max(q.nclauses, 1), sizeof(int))
        if q.clauses == NULL or q.score_order == NULL:
            raise MemoryError()
        costs = sorted(range(q.nclauses), key=lambda n: (sum(self.term_df[t] for t, _ in clauses[n]), n))
        for i, n in enumerate(costs):
            q.score_order[n] = i
            count = len(clauses[n])
            q.clauses[i].cursors = <Cursor*>malloc(max(count, 1) * sizeof(Cursor))
            if q.clauses[i].cursors == NULL:
                raise MemoryError()
            q.clauses[i].count = count
            for j, (term, weight) in enumerate(clauses[n]):
                self._cursor(&q.clauses[i].cursors[j], term, weight)
            _clause_doc(&q.clauses[i])
        q.nexcluded = len(plan.excluded)
        q.excluded = <Cursor*>malloc(max(q.nexcluded, 1) * sizeof(Cursor))
        q.excluded_bits = <const uint64_t**>calloc(max(q.nexcluded, 1), sizeof(uint64_t*))
        if q.excluded == NULL or q.excluded_bits == NULL:
            raise MemoryError()
        for i, term in enumerate(plan.excluded):
            self._cursor(&q.excluded[i], term, 0.0)
            if self.term_bitmap[term] != NO_BITMAP:
                q.excluded_bits[i] = self.col.bitmaps + self.term_bitmap[term]
        return 0

    cdef int _filters(self, Query* q, object plan, bytes category_mask, bytes brand_mask) except -1:
        cdef int i
        q.category_mask = <const uint8_t*>category_mask if category_mask else NULL
        q.brand_mask = <const uint8_t*>brand_mask if brand_mask else NULL
        q.price_min = plan.price_min
        q.price_max = plan.price_max
        q.age = plan.age
        q.in_stock = plan.in_stock
        q.nkeys = 0
        q.scored = False
        for code in plan.keys:
            if code == 3:
                continue
            q.keys[q.nkeys] = code
            q.nkeys += 1
            q.scored = q.scored or code == 0
        q.k1p1 = self.k1p1
        q.capacity = min(plan.offset + plan.limit, self.col.n_docs)
        q.heap = <Entry*>malloc(max(q.capacity, 1) * sizeof(Entry))
        q.facets = plan.facets
        q.facet_category = <int64_t*>calloc(self.n_categories + 1, sizeof(int64_t))
        q.facet_brand = <int64_t*>calloc(self.n_brands + 1, sizeof(int64_t))
        if q.heap == NULL or q.facet_category == NULL or q.facet_brand == NULL:
            raise MemoryError()
        q.n_price = len(PRICE_BANDS)
        for i, (_, low, high) in enumerate(PRICE_BANDS):
            q.price_low[i] = low
            q.price_high[i] = high
        q.n_age = len(AGE_BANDS)
        for i, (_, low, high) in enumerate(AGE_BANDS):
            q.age_low[i] = low
            q.age_high[i] = high
        return 0

    def run(self, plan):
        """The page of document numbers, the total and the raw facet counts."""
        cdef Query q
        cdef int i
        memset(&q, 0, sizeof(Query))
        category_mask = bytes(plan.category_mask)
        brand_mask = bytes(plan.brand_mask)
        try:
            self._filters(&q, plan, category_mask, brand_mask)
            if not plan.empty:
                self._prepare(&q, plan)
                with nogil:
                    _run(&q, &self.col)
                    _sort_heap(q.heap, q.size, q.nkeys)
            docs = [q.heap[i].doc for i in range(plan.offset, q.size)]
            facets = None
            if plan.facets:
                facets = (
                    {i: q.facet_category[i] for i in range(self.n_categories) if q.facet_category[i]},
                    {i: q.facet_brand[i] for i in range(self.n_brands) if q.facet_brand[i]},
                    [q.facet_price[i] for i in range(q.n_price)],
                    [q.facet_age[i] for i in range(q.n_age)],
                )
            return docs, q.total, facets
        finally:
            _release(&q)

    def close(self):
        """Release the file's buffer; the caller ensures no query runs (``Index.close``)."""
        self.base = NULL
        self._raw = None
        self._price = None
        self._stock = None

    def nearest_word(self, str word):
        """The correction of *word*: see ``sleigh.core_ext.search.suggest``."""
        cdef uint32_t target[MAX_CP]
        cdef int length = 0, bound
        cdef int64_t best = -1
        for ch in word[:MAX_CP]:
            target[length] = ord(ch)
            length += 1
        bound = 1 if len(word) <= 4 else 2
        if len(word) > MAX_CP:
            return None
        with nogil:
            best = _nearest(self.word_offsets, self.word_text, self.word_df, self.n_words,
                            self.signatures, self.lengths, target, length, bound)
        if best < 0:
            return None
        return self.index.word_text(best)


cdef void _release(Query* q) noexcept:
    cdef int i
    if q.clauses != NULL:
        for i in range(q.nclauses):
            free(q.clauses[i].cursors)
        free(q.clauses)
    free(q.score_order)
    free(q.excluded)
    free(q.excluded_bits)
    free(q.heap)
    free(q.facet_category)
    free(q.facet_brand)


cdef int _decode_utf8(const uint8_t* p, const uint8_t* end, uint32_t* out) noexcept nogil:
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


cdef int _distance(const uint32_t* a, int la, const uint32_t* b, int lb, int bound) noexcept nogil:
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


cdef void _signatures(const uint32_t* offsets, const uint8_t* text, int64_t n_words,
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


cdef int64_t _nearest(const uint32_t* offsets, const uint8_t* text, const uint32_t* df,
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
