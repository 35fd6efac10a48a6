"""The demo catalog as pure functions of ``(seed, i)``: categories, brands, products.

Nothing here touches a database: :func:`product` builds product *i* from
the seed and *i* alone, so any subset of the catalog can be generated, in
any order, on any machine, and come out the same.
"""

from __future__ import annotations

import bisect
import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import accumulate

from . import words
from .words import Node, Profile

__all__ = [
    "ANCHOR",
    "BRANDS_PER_ROOT",
    "BrandSpec",
    "CategorySpec",
    "DemoProduct",
    "Generator",
    "slugify",
]

#: The catalog's "now": products were created during the five years before it.
ANCHOR = datetime(2025, 11, 1, tzinfo=UTC)
_SPAN = 5 * 365 * 86400
#: How many fictional brands each root category has (toy makers, publishers, studios).
BRANDS_PER_ROOT = {"toys": 110, "books": 55, "video-games": 35}
_SKU_CODES = {"toys": "TOY", "books": "BK", "video-games": "VG"}
_IMAGES = {
    "toy": "toy",
    "book": "book",
    "fact": "book",
    "activity": "book",
    "game": "game",
    "gear": "gear",
}
_IMAGES_PER_KIND = 24


def slugify(text: str) -> str:
    """A URL slug: lower-case ASCII words joined by dashes."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


@dataclass(frozen=True)
class CategorySpec:
    """One category of the tree, parents before children."""

    path: str
    slug: str
    name: str
    parent_path: str | None
    depth: int
    sort_order: int
    profile: Profile | None


@dataclass(frozen=True)
class BrandSpec:
    """One fictional brand; *rank* 0 is its root's biggest."""

    slug: str
    name: str
    root: str
    rank: int


@dataclass(frozen=True)
class DemoProduct:
    """Product *i* of the demo catalog (its id is ``i + 1``)."""

    id: int
    sku: str
    slug: str
    title: str
    description: str
    brand_slug: str
    category_path: str
    price_cents: int
    age_min: int
    age_max: int
    popularity: int
    image: str
    created_at: datetime
    updated_at: datetime
    on_hand: int
    reserved: int


def _walk(nodes: tuple[Node, ...], parent: str | None, depth: int) -> list[CategorySpec]:
    out: list[CategorySpec] = []
    for order, node in enumerate(nodes):
        path = node.slug if parent is None else f"{parent}/{node.slug}"
        out.append(CategorySpec(path, node.slug, node.name, parent, depth, order, node.profile))
        out.extend(_walk(node.children, path, depth + 1))
    return out


def _brands(seed: int) -> list[BrandSpec]:
    rng = random.Random(f"sleigh-demo-brands:{seed}")
    out: list[BrandSpec] = []
    for root, count in BRANDS_PER_ROOT.items():
        names = [
            f"{prefix} {suffix}"
            for prefix in words.BRAND_PREFIXES
            for suffix in words.BRAND_SUFFIXES[root]
        ]
        for rank, name in enumerate(rng.sample(names, count)):
            out.append(BrandSpec(slugify(name), name, root, rank))
    return out


class Generator:
    """The demo catalog of one seed.

    :param seed: the catalog's seed; the same seed gives the same catalog.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.categories = _walk(words.TREE, None, 0)
        self.brands = _brands(seed)
        self._leaves = [c for c in self.categories if c.profile is not None]
        self._leaf_cum = list(accumulate(c.profile.weight for c in self._leaves if c.profile))
        self._root_brands: dict[str, list[BrandSpec]] = {}
        self._brand_cum: dict[str, list[float]] = {}
        for root in BRANDS_PER_ROOT:
            members = [b for b in self.brands if b.root == root]
            self._root_brands[root] = members
            # Zipf-like: the brand of rank r gets a share proportional to 1 / (r + 1).
            self._brand_cum[root] = list(accumulate(1 / (b.rank + 1) for b in members))

    def _pick_leaf(self, rng: random.Random) -> CategorySpec:
        x = rng.random() * self._leaf_cum[-1]
        return self._leaves[bisect.bisect_right(self._leaf_cum, x)]

    def _pick_brand(self, rng: random.Random, root: str) -> BrandSpec:
        cum = self._brand_cum[root]
        return self._root_brands[root][bisect.bisect_right(cum, rng.random() * cum[-1])]

    def product(self, i: int) -> DemoProduct:
        """Product *i* (``0 <= i``): a pure function of the seed and *i*."""
        rng = random.Random((self.seed << 32) ^ (i * 2654435761) ^ 0x5EED)
        leaf = self._pick_leaf(rng)
        profile = leaf.profile
        assert profile is not None
        root = leaf.path.split("/", 1)[0]
        brand = self._pick_brand(rng, root)
        title = _title(rng, profile)
        age_min, age_max = rng.choice(profile.ages)
        created = ANCHOR - timedelta(seconds=rng.randrange(_SPAN))
        age = int((ANCHOR - created).total_seconds())
        updated = created + timedelta(seconds=rng.randrange(min(age, 200 * 86400) + 1))
        on_hand, reserved = _stock(rng)
        return DemoProduct(
            id=i + 1,
            sku=f"{_SKU_CODES[root]}{i + 1:07d}",
            slug=slugify(title)[:200],
            title=title,
            description=_description(rng, profile, brand.name, title),
            brand_slug=brand.slug,
            category_path=leaf.path,
            price_cents=rng.choice(profile.prices),
            age_min=age_min,
            age_max=age_max,
            # Pareto, alpha 1.2: the top 1% of products hold roughly half the popularity.
            popularity=min(int(rng.paretovariate(1.2) * 10), 2_000_000_000),
            image=f"{_IMAGES[profile.kind]}-{rng.randrange(1, _IMAGES_PER_KIND + 1):02d}",
            created_at=created,
            updated_at=updated,
            on_hand=on_hand,
            reserved=reserved,
        )


def _stock(rng: random.Random) -> tuple[int, int]:
    """``(on_hand, reserved)``: about 6% out of stock, 10% low (1-5), the rest 6-400."""
    x = rng.random()
    if x < 0.06:
        return 0, 0
    on_hand = rng.randint(1, 5) if x < 0.16 else rng.randint(6, 400)
    reserved = rng.randint(0, min(on_hand, 3)) if rng.random() < 0.2 else 0
    return on_hand, reserved


_SELF_NAMED = ("Set", "Kit", "Game", "Deck", "Pack", "Puzzle", "Dollhouse", "Salon")


def _toy_title(rng: random.Random, noun: str, form: str) -> str:
    adjective = rng.choice(words.ADJECTIVES) + " " if rng.random() < 0.5 else ""
    # A noun that already says what it is ("Volcano Kit") takes no packaging word.
    suffix = "" if noun.endswith(_SELF_NAMED) or noun in form else f" {form}"
    return f"{rng.choice(words.FRANCHISES)} {adjective}{noun}{suffix}"


def _title(rng: random.Random, profile: Profile) -> str:
    noun, form = rng.choice(profile.nouns), rng.choice(profile.forms)
    kind = profile.kind
    if kind == "toy":
        return _toy_title(rng, noun, form)
    if kind == "game":
        return f"{rng.choice(words.FRANCHISES)}: {rng.choice(words.GAME_SUBTITLES)} ({form})"
    if kind == "gear":
        return f"{rng.choice(words.ADJECTIVES)} {noun} for {form}"
    if kind == "activity":
        return f"{rng.choice(words.FRANCHISES)} {rng.choice(words.ADJECTIVES)} {noun} ({form})"
    if kind == "fact":
        return f"{rng.choice(_FACT_TITLES).format(topic=noun)} ({form})"
    return f"{_story_title(rng, noun)} ({form})"


_FACT_TITLES = (
    "The Big Book of {topic}",
    "My First Book of {topic}",
    "{topic}: Facts, Photos and Fun",
    "Everything About {topic}",
    "Amazing {topic}",
)


def _story_title(rng: random.Random, motif: str) -> str:
    adjective, thing = rng.choice(words.ADJECTIVES), rng.choice(words.BOOK_NOUNS)
    name = rng.choice(words.CHARACTER_NAMES)
    pattern = rng.randrange(4)
    if pattern == 0:
        return f"The {adjective} {thing} {rng.choice(words.BOOK_SUFFIXES)}"
    if pattern == 1:
        return f"{name} and the {adjective} {thing}"
    if pattern == 2:
        return f"{name} and the {motif} {rng.choice(words.BOOK_SUFFIXES)}"
    return f"The {motif} of the {adjective} {thing}"


_OPENERS = {
    "toy": (
        "Bring home the {title} from {brand}.",
        "The {title} is here, and it is the talk of the playground.",
        "{brand} presents the {title}.",
    ),
    "book": (
        "A {adj} new story by {author}, published by {brand}.",
        "{author} returns with {title}.",
        "Curl up with {title}, by {author}.",
    ),
    "fact": (
        "{author} guides young readers through {topic}, with hundreds of pictures.",
        "Everything a curious reader wants to know about {topic}, from {brand}.",
    ),
    "activity": (
        "Hours of quiet fun with the {title}.",
        "{brand} packs the {title} with pages to fill in.",
    ),
    "game": (
        "{title} puts you in charge, from the makers at {brand}.",
        "From {brand} comes {title}.",
        "Grab a controller: {title} is here.",
    ),
    "gear": (
        "The {title} from {brand} is built for long sessions.",
        "Level up your setup with the {title}.",
        "{brand} makes the {title} to last.",
    ),
}
_MIDDLES = {
    "toy": (
        "Packed with {adj} details kids love to discover.",
        "Every piece was tested for safety and durability.",
        "Perfect as a birthday present or a holiday surprise.",
        "Hours of imaginative play, indoors or out.",
        "Batteries not included.",
    ),
    "book": (
        "Full of {adj} twists and warm, funny characters.",
        "Reviewers call it a {adj} read-aloud favorite.",
        "A perfect bedtime story or holiday gift.",
        "Illustrated in full color throughout.",
    ),
    "game": (
        "Play alone or with up to four friends.",
        "Over forty levels, each one {adj}.",
        "Unlock secret worlds, characters and a {adj} bonus mode.",
        "Rated for the whole family.",
    ),
    "gear": (
        "Works out of the box; no setup needed.",
        "Comfortable in small and large hands alike.",
        "Backed by a one-year warranty.",
    ),
}
_MIDDLES["fact"] = _MIDDLES["activity"] = _MIDDLES["book"][1:]


def _description(rng: random.Random, profile: Profile, brand: str, title: str) -> str:
    author = f"{rng.choice(words.AUTHOR_FIRST)} {rng.choice(words.AUTHOR_LAST)}"
    topic = rng.choice(profile.nouns).lower()
    fill = {"title": title, "brand": brand, "author": author, "topic": topic}
    middles = _MIDDLES[profile.kind]
    sentences = [rng.choice(_OPENERS[profile.kind])]
    sentences += rng.sample(middles, rng.randint(1, min(3, len(middles))))
    return " ".join(s.format(**fill, adj=rng.choice(words.PRAISE)) for s in sentences)
