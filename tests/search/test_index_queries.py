"""Query syntax, sorts, suggestions, the overlay and threads, on a small catalog."""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from sleigh.core_ext.search import (
    IndexClosed,
    ProductDoc,
    Query,
    QueryError,
    Result,
    build_index,
    open_index,
)
from sleigh.core_ext.search.index import Index
from sleigh.core_ext.search.reader import IndexFile

from .index_helpers import WORDS, catalog, path


def doc(pid: int, title: str, **kw: object) -> ProductDoc:
    fields: dict[str, object] = dict(
        id=pid,
        title=title,
        brand_id=1,
        brand="Acme",
        category_path=path(2),
        description="",
        price_cents=1000,
        age_min=0,
        age_max=99,
        popularity=0,
        created=0,
        in_stock=True,
    )
    fields.update(kw)
    return ProductDoc(**fields)  # type: ignore[arg-type]


@pytest.fixture(params=["native", "twin"])
def small(request: pytest.FixtureRequest, tmp_path: Path) -> Index:
    if request.param == "native":
        pytest.importorskip("sleigh.core_ext.search._engine")
    docs = [
        doc(1, "Red racing car", popularity=5, price_cents=500),
        doc(2, "Blue racing car", popularity=9, price_cents=900, in_stock=False),
        doc(
            3,
            "Red teddy bear",
            popularity=1,
            description="soft red plush",
            created=10,
            category_path=path(3),
        ),
        doc(4, "Wooden train set", popularity=3, category_path=path(6)),
        doc(
            5,
            "Dragon castle",
            popularity=3,
            brand_id=2,
            brand="Zoo Toys",
            created=20,
            category_path=path(4),
        ),
    ]
    build_index(docs, tmp_path / "index")
    return Index(IndexFile(tmp_path / "index"), native=request.param == "native")


def ids(index: Index, text: str, **kw: object) -> list[int]:
    return index.search(Query(text=text, **kw)).ids  # type: ignore[arg-type]


def test_syntax(small: Index) -> None:
    assert sorted(ids(small, "racing car")) == [1, 2]
    assert ids(small, "red car") == [1]
    assert sorted(ids(small, "train OR castle")) == [4, 5]
    assert ids(small, "car -blue") == [1]
    assert sorted(ids(small, '"red teddy"')) == [3]
    assert ids(small, "the red car") == [1]  # stop words are ignored
    assert ids(small, "CARS") == sorted(ids(small, "car"), key=[2, 1].index)  # stems, folds
    assert ids(small, "cas", prefix=True) == [5]
    assert ids(small, "red cas", prefix=True) == []
    assert ids(small, "cas ", prefix=True) == []  # a finished word is not completed
    assert ids(small, "nothing") == []


def test_filters_and_sorts(small: Index) -> None:
    assert ids(small, "", sort="popularity") == [2, 1, 4, 5, 3]
    assert ids(small, "", category=1, sort="price_asc") == [1, 2, 3]
    assert ids(small, "", category=4) == [4, 5]
    assert ids(small, "", category=6) == [4]
    assert ids(small, "", brands=(2,)) == [5]
    assert ids(small, "car", in_stock=True) == [1]
    assert ids(small, "", sort="instock_first", limit=2) == [1, 4]
    assert ids(small, "", sort="newest", limit=2) == [5, 3]
    assert ids(small, "", sort="popularity", offset=3, limit=5) == [5, 3]


def test_relevance_prefers_the_title(small: Index) -> None:
    # "red" is in the titles of 1 and 3 and twice more in 3's description
    assert ids(small, "red")[0] == 3
    assert ids(small, "red car")[0] == 1


def test_facets_count_the_whole_match_set(small: Index) -> None:
    result = small.search(Query(text="", limit=1, facets=True))
    assert result.total == 5 and result.facets is not None
    assert result.facets["category"] == {1: 3, 2: 2, 3: 1, 4: 2, 5: 1, 6: 1}
    assert result.facets["brand"] == {1: 4, 2: 1}
    assert result.facets["price_band"] == {"0-10": 2, "10-25": 3}


def test_did_you_mean_and_completions(small: Index) -> None:
    result = small.search(Query(text="red drgon"))
    assert (result.total, result.suggestion) == (0, "red dragon")
    assert small.search(Query(text="Red DRGON -car")).suggestion == "Red dragon -car"
    assert small.search(Query(text="red car")).suggestion is None
    assert small.suggest("red ca", 5) == ["red car", "red cars", "red castle"]
    assert small.suggest("", 5) == []


@pytest.mark.parametrize(
    "query",
    [
        Query(sort="cheapest"),
        Query(limit=10_000),
        Query(offset=-1),
        Query(text="x" * 2000),
        Query(text=" ".join(WORDS * 2)),
        Query(price_min="10"),  # type: ignore[arg-type]
    ],
)
def test_bad_queries_are_refused(small: Index, query: Query) -> None:
    with pytest.raises(QueryError):
        small.search(query)


def test_a_closed_index_refuses_searches(small: Index) -> None:
    small.close()
    small.close()
    with pytest.raises(IndexClosed):
        small.search(Query())


def random_queries(n: int, seed: int) -> list[Query]:
    rng = random.Random(seed)
    return [
        Query(
            text=" ".join(rng.sample(WORDS, rng.randint(0, 2))),
            category=rng.choice([None, 1, 4]),
            sort=rng.choice(["relevance", "price_asc", "popularity", "newest"]),
            facets=rng.random() < 0.5,
        )
        for _ in range(n)
    ]


def essence(r: Result) -> tuple[object, ...]:
    return (r.ids, r.total, r.facets, r.suggestion)


def test_threads_answer_as_one_thread_does(tmp_path: Path) -> None:
    build_index(catalog(3000, seed=6), tmp_path / "index")
    index = open_index(tmp_path / "index")
    queries = random_queries(400, seed=2)
    serial = [essence(index.search(q)) for q in queries]
    with ThreadPoolExecutor(8) as pool:
        parallel = list(pool.map(lambda q: essence(index.search(q)), queries * 3))
    assert parallel == serial * 3


def test_updates_while_searching(tmp_path: Path) -> None:
    docs = catalog(2000, seed=7)
    build_index(docs, tmp_path / "index")
    index = open_index(tmp_path / "index")
    stop = threading.Event()
    errors: list[BaseException] = []

    def search() -> None:
        try:
            while not stop.is_set():
                result = index.search(Query(sort="price_asc", limit=5, facets=True))
                assert result.total == len(docs)
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=search) for _ in range(4)]
    for w in workers:
        w.start()
    for n, d in enumerate(docs[:500]):
        index.update(d.id, price_cents=n, in_stock=n % 2 == 0)
    stop.set()
    for w in workers:
        w.join()
    assert not errors
    assert index.search(Query(sort="price_asc", limit=3)).ids == [d.id for d in docs[:3]]
    untouched = sum(1 for d in docs[500:] if d.price_cents <= 10 and not d.in_stock)
    assert index.search(Query(in_stock=False, price_max=10, limit=100)).total == 5 + untouched
