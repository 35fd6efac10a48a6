"""Pytest plugin: a real ``sleigh-searchd`` serving a real index file, per test.

``searchd_factory`` builds an index of a small generated catalog (unless told
not to) in a fresh home and starts the daemon through ``daemon_factory``
(Unix socket handed over, readiness by ``READY=1``, clean SIGTERM checked at
teardown). ``make_docs`` and ``build_version`` let a test write newer index
files into a running daemon's directory.
"""

from __future__ import annotations

import random
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from sleigh.core_ext.search import ProductDoc, build_index, load_products
from sleigh.daemons.search.client import AsyncSearchClient
from sleigh.daemons.search.index import index_name
from tests.plugins.daemons import Daemon, DaemonFactory

__all__ = [
    "SearchDaemon",
    "StartSearchd",
    "build_version",
    "demo_search",
    "make_docs",
    "searchd",
    "searchd_factory",
]

_WORDS = (
    "red",
    "blue",
    "green",
    "lego",
    "castle",
    "train",
    "car",
    "truck",
    "doll",
    "puzzle",
    "robot",
    "dinosaur",
    "book",
    "game",
    "wooden",
    "plush",
    "space",
    "pirate",
    "farm",
    "horse",
    "kitchen",
    "magic",
    "science",
    "ocean",
    "dragon",
)
_CATEGORIES = ((1, "Toys"), (2, "Books"), (3, "Games"))
_LEAVES = {1: ((11, "Building"), (12, "Dolls")), 2: ((21, "Picture"),), 3: ((31, "Board"),)}


def make_docs(n: int, *, seed: int = 7, title_extra: str = "") -> list[ProductDoc]:
    """*n* products with skewed words, three sections, five brands."""
    rng = random.Random(seed)
    docs = []
    for pid in range(1, n + 1):
        root = _CATEGORIES[pid % 3]
        leaf = rng.choice(_LEAVES[root[0]])
        words = [_WORDS[min(int(rng.paretovariate(1.2)) - 1, len(_WORDS) - 1)] for _ in range(3)]
        age_min = rng.choice((0, 3, 6, 9))
        docs.append(
            ProductDoc(
                id=pid,
                title=" ".join(words) + (f" {title_extra}" if title_extra else ""),
                brand_id=1 + pid % 5,
                brand=f"Brand{1 + pid % 5}",
                category_path=(root, leaf),
                description=" ".join(rng.choice(_WORDS) for _ in range(8)),
                price_cents=rng.randrange(100, 30_000),
                age_min=age_min,
                age_max=age_min + rng.choice((2, 4, 90)),
                popularity=rng.randrange(0, 10_000),
                created=1_600_000_000 + pid * 60,
                in_stock=rng.random() < 0.8,
            )
        )
    return docs


def build_version(directory: Path, version: int, docs: Sequence[ProductDoc]) -> Path:
    """Build an index of *docs* as version *version* in *directory*; its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / index_name(version)
    build_index(docs, path, version=version)
    return path


@dataclass
class SearchDaemon:
    daemon: Daemon
    home: Path

    @property
    def socket_path(self) -> Path:
        assert isinstance(self.daemon.address, Path)
        return self.daemon.address

    @property
    def endpoint(self) -> str:
        return f"ipc://{self.socket_path}"

    @property
    def index_dir(self) -> Path:
        return self.home / "search"


StartSearchd = Callable[..., SearchDaemon]


@pytest.fixture
def searchd_factory(daemon_factory: DaemonFactory, tmp_path: Path) -> StartSearchd:
    """``start(home=None, docs=..., **settings)``: a daemon on *home* (built if *docs*)."""
    count = 0

    def start(
        home: Path | None = None, docs: Sequence[ProductDoc] | None = None, **settings: str
    ) -> SearchDaemon:
        nonlocal count
        count += 1
        home = home or tmp_path / f"home{count}"
        if docs is None and not (home / "search").exists():
            docs = make_docs(300)
        if docs is not None:
            build_version(home / "search", 1, docs)
        env = {f"SLEIGH_SEARCH_{k.upper()}": v for k, v in settings.items()}
        env.setdefault("SLEIGH_SEARCH_WORKERS", "2")
        argv = [sys.executable, "-m", "sleigh.daemons.search", "--home", str(home)]
        return SearchDaemon(daemon_factory.start(argv, env=env), home)

    return start


@pytest.fixture
def searchd(searchd_factory: StartSearchd) -> SearchDaemon:
    return searchd_factory()


@pytest_asyncio.fixture
async def demo_search(
    demo_engine: AsyncEngine, searchd_factory: StartSearchd, tmp_path: Path
) -> AsyncIterator[AsyncSearchClient]:
    """A client of a ``sleigh-searchd`` serving the index of ``demo_engine``'s catalog."""
    daemon = searchd_factory(home=tmp_path / "demo", docs=await load_products(demo_engine))
    search = AsyncSearchClient([daemon.endpoint], timeout=10)
    try:
        yield search
    finally:
        await search.aclose()
