"""Search results checked against a brute-force scan of the demo catalog."""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from sleigh.core_ext.search import (
    AGE_BANDS,
    PRICE_BANDS,
    ProductDoc,
    Query,
    build_index,
    load_products,
    open_index,
)
from sleigh.core_ext.search.analysis import FIELD_WEIGHTS, Analyzer
from sleigh.core_ext.search.index import Index
from sleigh.core_ext.search.reader import IndexFile

ANALYZER = Analyzer()


def weighted_terms(p: ProductDoc) -> Counter[str]:
    counts: Counter[str] = Counter()
    fields = {
        "title": p.title,
        "brand": p.brand,
        "category": " ".join(n for _, n in p.category_path),
        "description": p.description,
    }
    for name, text in fields.items():
        for term in ANALYZER.terms(text):
            counts[term] += FIELD_WEIGHTS[name]
    return counts


def bm25(docs: dict[int, Counter[str]], terms: list[str]) -> dict[int, float]:
    dfs = {t: sum(1 for c in docs.values() if t in c) for t in terms}
    average = sum(sum(c.values()) for c in docs.values()) / len(docs)
    scores = {}
    for pid, counts in docs.items():
        norm = 1.2 * (1 - 0.75 + 0.75 * sum(counts.values()) / average)
        score = 0.0
        for term in terms:
            df = dfs[term]
            tf = min(counts[term], 255)
            if tf:
                idf = math.log(1 + (len(docs) - df + 0.5) / (df + 0.5))
                score += idf * tf * 2.2 / (tf + norm)
        scores[pid] = score
    return scores


def matches(p: ProductDoc, q: Query, terms: list[str], counts: Counter[str]) -> bool:
    return (
        all(t in counts for t in terms)
        and (q.category is None or q.category in {c for c, _ in p.category_path})
        and (not q.brands or p.brand_id in q.brands)
        and (q.price_min is None or p.price_cents >= q.price_min)
        and (q.price_max is None or p.price_cents <= q.price_max)
        and (q.age is None or (p.age_min <= (q.age_to or q.age) and p.age_max >= q.age))
        and (q.in_stock is None or p.in_stock == q.in_stock)
    )


def facets(found: list[ProductDoc]) -> dict[str, dict[int | str, int]]:
    out: dict[str, Counter[int | str]] = {k: Counter() for k in ("category", "brand")}
    out["price_band"], out["age_band"] = Counter(), Counter()
    for p in found:
        out["category"].update(c for c, _ in p.category_path)
        out["brand"][p.brand_id] += 1
        out["price_band"].update(n for n, lo, hi in PRICE_BANDS if lo <= p.price_cents < hi)
        out["age_band"].update(n for n, lo, hi in AGE_BANDS if p.age_min <= hi and p.age_max >= lo)
    return {k: dict(v) for k, v in out.items()}


SORT_KEYS = {
    "price_asc": lambda p: (p.price_cents, -p.popularity, p.id),
    "price_desc": lambda p: (-p.price_cents, -p.popularity, p.id),
    "popularity": lambda p: (-p.popularity, p.id),
    "newest": lambda p: (-p.created, -p.popularity, p.id),
}


def random_query(rng: random.Random, products: list[ProductDoc]) -> Query:
    sample = rng.choice(products)
    words = ANALYZER.words(f"{sample.title} {sample.description}")
    categories = sorted({c for p in products for c, _ in p.category_path})
    return Query(
        text=" ".join(rng.sample(words, min(len(words), rng.randint(0, 2)))),
        category=rng.choice([None, None, *categories]),
        brands=tuple(rng.sample(sorted({p.brand_id for p in products}), rng.randint(0, 2))),
        price_min=rng.choice([None, 1000]),
        price_max=rng.choice([None, 8000]),
        age=(age := rng.choice([None, 4])),
        age_to=None if age is None else rng.choice([None, 8]),
        in_stock=rng.choice([None, True, False]),
        sort=rng.choice(["relevance", *SORT_KEYS]),
        limit=1000,
        facets=True,
    )


@pytest.fixture(params=["native", "twin"])
def native(request: pytest.FixtureRequest) -> bool:
    if request.param == "native":
        pytest.importorskip("sleigh.core_ext.search._engine")
    return bool(request.param == "native")


async def test_against_brute_force(demo_engine: AsyncEngine, tmp_path: Path, native: bool) -> None:
    products = await load_products(demo_engine)
    build_index(products, tmp_path / "index")
    index = Index(IndexFile(tmp_path / "index"), native=native)
    rng = random.Random(4)
    counts = {p.id: weighted_terms(p) for p in products}
    for _ in range(60):
        q = random_query(rng, products)
        terms = ANALYZER.terms(q.text)
        found = [p for p in products if matches(p, q, terms, counts[p.id])]
        result = index.search(q)
        assert result.total == len(found), q
        assert result.facets == facets(found), q
        if q.sort == "relevance":
            scores = bm25(counts, list(dict.fromkeys(terms)))
            assert set(result.ids) == {p.id for p in found}
            ranked = [scores[i] for i in result.ids]
            assert all(a >= b - 1e-9 for a, b in itertools.pairwise(ranked)), q
        else:
            assert result.ids == [p.id for p in sorted(found, key=SORT_KEYS[q.sort])], q


async def test_overlay_changes_reach_results(demo_engine: AsyncEngine, tmp_path: Path) -> None:
    products = await load_products(demo_engine)
    build_index(products, tmp_path / "index")
    index = open_index(tmp_path / "index")
    target = products[5]
    assert index.update(target.id, price_cents=1, in_stock=False)
    assert index.search(Query(sort="price_asc", limit=1)).ids == [target.id]
    assert target.id not in index.search(Query(in_stock=True, limit=1000)).ids
    assert index.search(Query(price_max=1, in_stock=False, limit=5)).ids == [target.id]
