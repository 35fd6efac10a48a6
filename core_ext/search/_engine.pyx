# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""The query engine, compiled: the fast twin of ``sleigh.core_ext.search.twin``.

Same plans in, same pages, totals and facet counts out (the tests check it on
random catalogs and queries). How it is fast:

* document at a time over block cursors: each posting list is read one block of
  128 documents at a time, and the skip table (last document of every block)
  jumps over blocks that cannot hold the target;
* the clause with the fewest postings leads the intersection; a leader's document
  is checked against the filters first (column reads), then against the other
  clauses: a bit of the term's bitmap for a term in many documents, and an
  ``advance`` of the cursor when a score is needed or there is no bitmap;
  excluded terms are tested against a bitmap when the term has one;
* a bounded heap keeps the best ``offset + limit`` documents; every document that
  matches is counted (exact totals) and, if asked, counted into the facets;
* sorting by popularity is document order, so past a full page a match costs a
  count and nothing else;
* the whole walk runs without the GIL: query threads run in parallel.
"""

from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcpy, memset

from array import array

from .fileformat import NO_BITMAP, Section
from .model import AGE_BANDS, PRICE_BANDS

__all__ = ["Engine"]

from ._cursor cimport BLOCK, END, Cursor, _advance, _load, _next
from ._words cimport MAX_CP, _nearest, _signatures

cdef enum:
    MAX_KEYS = 6
    N_PRICE = 6
    N_AGE = 5

cdef int64_t PRICE_LOW[N_PRICE]
cdef int64_t PRICE_HIGH[N_PRICE]
cdef int AGE_LOW[N_AGE]
cdef int AGE_HIGH[N_AGE]
if len(PRICE_BANDS) != N_PRICE or len(AGE_BANDS) != N_AGE:
    raise ImportError("the compiled engine was built for other facet bands; rebuild it")
for _n, (_label, _low, _high) in enumerate(PRICE_BANDS):
    PRICE_LOW[_n] = _low
    PRICE_HIGH[_n] = _high
for _n, (_label, _low, _high) in enumerate(AGE_BANDS):
    AGE_LOW[_n] = _low
    AGE_HIGH[_n] = _high


cdef struct Clause:
    Cursor* cursors
    const uint64_t* bits  # the bitmap of a one-term clause that has one
    int count
    int64_t doc


cdef struct Entry:
    double key[MAX_KEYS]
    int64_t doc


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


cdef struct Row:
    # what filters, facets and sorts read of one document, in one 16-byte record so that
    # a scattered document costs one cache miss; price and stock change (``update``)
    int32_t price
    int32_t brand
    int32_t category
    uint8_t age_min
    uint8_t age_max
    uint8_t stock
    uint8_t bands  # bits 0-2: the price band; bits 3-7: the age bands the range overlaps


cdef struct Columns:
    Row* rows
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
    int age_to
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
    if q.category_mask != NULL and (col.rows[doc].category < 0 or not q.category_mask[col.rows[doc].category]):
        return False
    if q.brand_mask != NULL and not q.brand_mask[col.rows[doc].brand]:
        return False
    price = col.rows[doc].price
    if price < q.price_min or price > q.price_max:
        return False
    if q.age >= 0 and not (col.rows[doc].age_min <= q.age_to and col.rows[doc].age_max >= q.age):
        return False
    if q.in_stock >= 0 and col.rows[doc].stock != q.in_stock:
        return False
    return True


cdef void _count_facets(Query* q, const Columns* col, int64_t doc) noexcept nogil:
    cdef int i
    cdef const Row* row = &col.rows[doc]
    if row.category >= 0:
        q.facet_category[row.category] += 1
    q.facet_brand[row.brand] += 1
    q.facet_price[row.bands & 7] += 1
    for i in range(N_AGE):
        q.facet_age[i] += (row.bands >> (3 + i)) & 1


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
            entry.key[i] = col.rows[doc].price
        elif q.keys[i] == 2:
            entry.key[i] = -<double>col.rows[doc].price
        elif q.keys[i] == 4:
            entry.key[i] = -<double>col.created[doc]
        else:
            entry.key[i] = -<double>col.rows[doc].stock
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
    """Documents in every clause; clauses are ordered cheapest first.

    The leader's document is first checked against the filters (cheap column reads),
    then against each other clause: a bitmap test when the clause has one, then,
    if a score is needed or there is no bitmap, an advance of its cursors.
    """
    cdef Clause* lead = &q.clauses[0]
    cdef Clause* k
    cdef int64_t doc = lead.doc, found, target
    cdef int i
    cdef bint matched
    while doc < END:
        target = doc + 1
        if _keep(q, col, doc) and not (q.nexcluded and _excluded(q, doc)):
            matched = True
            for i in range(1, q.nclauses):
                k = &q.clauses[i]
                if k.bits != NULL:
                    if not (k.bits[doc >> 6] >> (doc & 63)) & 1:
                        matched = False
                        break
                    if not q.scored:
                        continue
                found = _clause_advance(k, doc)
                if found != doc:
                    matched = False
                    target = found
                    break
            if matched:
                _collect(q, col, doc)
        doc = _clause_advance(lead, target)


cdef bint _plain(Query* q) noexcept nogil:
    """One term, no filter, no exclusion, no facets, document order: the total is its df."""
    return (
        q.nclauses == 1 and q.clauses[0].count == 1 and q.nexcluded == 0 and q.nkeys == 0
        and not q.facets and q.category_mask == NULL and q.brand_mask == NULL
        and q.price_min < 0 and q.price_max >= 0x7FFFFFFF and q.age < 0 and q.in_stock < 0
    )


cdef void _first(Query* q) noexcept nogil:
    """The first documents of the one term, and its df as the total."""
    cdef Cursor* c = &q.clauses[0].cursors[0]
    while c.doc < END and q.size < q.capacity:
        q.heap[q.size].doc = c.doc
        _sift_up(q.heap, q.size, 0)
        q.size += 1
        _next(c)
    q.total = c.df


cdef void _run(Query* q, const Columns* col) noexcept nogil:
    if q.nclauses == 0:
        _scan(q, col)
    elif _plain(q):
        _first(q)
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


cdef int _fill_rows(Row* rows, Py_ssize_t n, price, stock, const uint8_t* brand,
                    const uint8_t* category, const uint8_t* age_min,
                    const uint8_t* age_max) except -1:
    cdef const int32_t[::1] p = price
    cdef const uint8_t[::1] st = stock
    cdef Py_ssize_t i
    for i in range(n):
        rows[i].price = p[i]
        rows[i].stock = st[i]
        rows[i].brand = (<const int32_t*>brand)[i]
        rows[i].category = (<const int32_t*>category)[i]
        rows[i].age_min = age_min[i]
        rows[i].age_max = age_max[i]
        _set_bands(&rows[i])
    return 0


cdef void _set_bands(Row* row) noexcept nogil:
    """The row's price band and age bands (``model.PRICE_BANDS``, ``model.AGE_BANDS``)."""
    cdef int i
    cdef uint8_t bands = 0
    for i in range(N_PRICE):
        if PRICE_LOW[i] <= row.price < PRICE_HIGH[i]:
            bands = i
    for i in range(N_AGE):
        if row.age_min <= AGE_HIGH[i] and row.age_max >= AGE_LOW[i]:
            bands |= 1 << (3 + i)
    row.bands = bands


cdef class Engine:
    """Executes plans over one index file and the price and stock overlay."""

    cdef const uint8_t[::1] _raw
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
    cdef int32_t* parents
    cdef list category_ids, brand_ids, price_labels, age_labels

    def __dealloc__(self):
        free(self.signatures)
        free(self.lengths)
        free(self.parents)
        free(self.col.rows)

    cdef dict _facets(self, Query* q):
        """Facet counts by id and label; a category counts its whole subtree."""
        cdef int64_t* subtree = <int64_t*>calloc(self.n_categories + 1, sizeof(int64_t))
        cdef int64_t i, node, count
        if subtree == NULL:
            raise MemoryError()
        try:
            for i in range(self.n_categories):
                count = q.facet_category[i]
                node = i if count else -1
                while node >= 0:
                    subtree[node] += count
                    node = self.parents[node]
            return {
                "category": {
                    self.category_ids[i]: subtree[i] for i in range(self.n_categories) if subtree[i]
                },
                "brand": {
                    self.brand_ids[i]: q.facet_brand[i]
                    for i in range(self.n_brands)
                    if q.facet_brand[i]
                },
                "price_band": {
                    self.price_labels[i]: q.facet_price[i] for i in range(N_PRICE) if q.facet_price[i]
                },
                "age_band": {
                    self.age_labels[i]: q.facet_age[i] for i in range(N_AGE) if q.facet_age[i]
                },
            }
        finally:
            free(subtree)

    def __init__(self, index, price, stock):
        self.index = index
        self._raw = index.raw
        self.base = &self._raw[0]
        spans = index.header.spans
        self.col.rows = <Row*>calloc(index.n_docs + 1, sizeof(Row))
        if self.col.rows == NULL:
            raise MemoryError()
        _fill_rows(self.col.rows, index.n_docs, price, stock,
                   self._at(spans, Section.BRAND), self._at(spans, Section.CATEGORY),
                   self._at(spans, Section.AGE_MIN), self._at(spans, Section.AGE_MAX))
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
        categories = index.meta["categories"]
        self.category_ids = [int(c[0]) for c in categories]
        self.brand_ids = [int(b[0]) for b in index.meta["brands"]]
        self.price_labels = [label for label, _, _ in PRICE_BANDS]
        self.age_labels = [label for label, _, _ in AGE_BANDS]
        self.parents = <int32_t*>calloc(self.n_categories + 1, sizeof(int32_t))
        if self.parents == NULL:
            raise MemoryError()
        for i, category in enumerate(categories):
            self.parents[i] = int(category[1])
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
            if i > 0 and count == 1:
                term = clauses[n][0][0]
                if self.term_bitmap[term] != NO_BITMAP:
                    q.clauses[i].bits = self.col.bitmaps + self.term_bitmap[term]
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
        q.age_to = plan.age_to
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
        return 0

    def run(self, plan):
        """The page of document numbers, the total and the facet counts (or None)."""
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
            facets = self._facets(&q) if plan.facets else None
            return docs, q.total, facets
        finally:
            _release(&q)

    def update(self, Py_ssize_t doc, int64_t price, int stock):
        """Set a document's price (unless -1) and stock (unless -1) for later queries."""
        if not 0 <= doc < self.col.n_docs or self.col.rows == NULL:
            raise IndexError(doc)
        cdef Row row = self.col.rows[doc]
        if price >= 0:
            row.price = <int32_t>price
        if stock >= 0:
            row.stock = stock
        _set_bands(&row)
        self.col.rows[doc] = row

    def close(self):
        """Release the file's buffer; the caller ensures no query runs (``Index.close``)."""
        self.base = NULL
        self._raw = None

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


