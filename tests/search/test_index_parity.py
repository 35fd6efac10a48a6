"""The compiled engine and its Python twin answer every query identically."""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sleigh.core_ext.search import ProductDoc, Query, build_index
from sleigh.core_ext.search.index import Index
from sleigh.core_ext.search.reader import IndexFile

from .index_helpers import WORDS, catalog, path

pytest.importorskip("sleigh.core_ext.search._engine")
pytest.importorskip("sleigh.core_ext.search._build")

word = st.sampled_from([*WORDS, "tedy", "drgon", "zzz", "the", "lego-duplo", "Crème"])
term = st.one_of(word, word.map(lambda w: "-" + w), st.just("OR"))
texts = st.one_of(
    st.lists(term, max_size=4).map(" ".join),
    st.lists(word, min_size=1, max_size=3).map(lambda ws: '"' + " ".join(ws) + '"'),
)
queries = st.builds(
    Query,
    text=texts,
    prefix=st.booleans(),
    category=st.sampled_from([None, 1, 2, 4, 5, 6, 99]),
    brands=st.lists(st.integers(1, 6), max_size=2).map(tuple),
    price_min=st.sampled_from([None, 0, 5000]),
    price_max=st.sampled_from([None, 20000, 39999]),
    age=st.sampled_from([None, 0, 4, 12]),
    age_to=st.sampled_from([None, 14]),
    in_stock=st.sampled_from([None, True, False]),
    sort=st.sampled_from(
        ["relevance", "price_asc", "price_desc", "popularity", "newest", "instock_first"]
    ),
    offset=st.sampled_from([0, 0, 3, 50]),
    limit=st.sampled_from([20, 1, 0, 100]),
    facets=st.booleans(),
).map(lambda q: q if q.age is not None else replace(q, age_to=None))
products = st.builds(
    ProductDoc,
    id=st.integers(1, 10**6),
    title=st.lists(word, min_size=1, max_size=5).map(" ".join),
    brand_id=st.integers(1, 5),
    brand=st.sampled_from(["Acme", "Zoo Toys", "Brand3"]),
    category_path=st.sampled_from([path(2), path(3), path(4), path(6), ()]),
    description=st.lists(word, max_size=30).map(" ".join),
    price_cents=st.integers(0, 40000),
    age_min=st.integers(0, 6),
    age_max=st.integers(6, 14),
    popularity=st.integers(0, 5),
    created=st.integers(0, 10**9),
    in_stock=st.booleans(),
)


def both(docs: list[ProductDoc], where: Path) -> tuple[Index, Index]:
    build_index(docs, where / "index")
    return Index(IndexFile(where / "index"), native=False), Index(
        IndexFile(where / "index"), native=True
    )


def same(twin: Index, native: Index, query: Query) -> None:
    a, b = twin.search(query), native.search(query)
    assert (a.ids, a.total, a.facets, a.suggestion) == (b.ids, b.total, b.facets, b.suggestion)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    docs=st.lists(products, max_size=60, unique_by=lambda p: p.id),
    qs=st.lists(queries, min_size=1, max_size=15),
)
def test_random_catalogs_and_queries(docs: list[ProductDoc], qs: list[Query]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        twin, native = both(docs, Path(tmp))
        for query in qs:
            same(twin, native, query)
        assert twin.suggest("dr", 5) == native.suggest("dr", 5)


@settings(max_examples=60, deadline=None)
@given(qs=st.lists(queries, min_size=1, max_size=10))
def test_larger_catalog_many_blocks(qs: list[Query]) -> None:
    """Posting lists longer than one block of 128, bitmaps and skips in use."""
    with tempfile.TemporaryDirectory() as tmp:
        twin, native = both(catalog(900, seed=3), Path(tmp))
        for query in qs:
            same(twin, native, query)


def test_builds_are_identical_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sleigh.core_ext.search as search

    docs = catalog(700, seed=8)
    build_index(docs, tmp_path / "native", version=1)
    monkeypatch.setattr(search, "NATIVE", False)
    build_index(docs, tmp_path / "twin", version=1)
    a, b = (tmp_path / "native").read_bytes(), (tmp_path / "twin").read_bytes()
    # only the build time (bytes 24-31) and the checksum differ
    assert len(a) == len(b)
    assert [i for i in range(len(a)) if a[i] != b[i] and not 24 <= i < 32 and i < len(a) - 16] == []
