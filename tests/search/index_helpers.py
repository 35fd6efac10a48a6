"""Small catalogs for the index tests."""

from __future__ import annotations

import random

from sleigh.core_ext.search import ProductDoc

WORDS = [
    "red",
    "blue",
    "green",
    "car",
    "truck",
    "doll",
    "lego",
    "duplo",
    "train",
    "puzzle",
    "wooden",
    "bear",
    "teddy",
    "robot",
    "kit",
    "ball",
    "game",
    "crème",
    "brûlée",
    "dragon",
    "castle",
    "pirate",
    "ship",
    "rocket",
    "space",
    "farm",
    "tractor",
]
TREE = {1: None, 2: 1, 3: 1, 4: None, 5: 4, 6: 5}
NAMES = {1: "Toys", 2: "Cars", 3: "Dolls", 4: "Games", 5: "Board", 6: "Strategy"}


def path(leaf: int) -> tuple[tuple[int, str], ...]:
    out: list[tuple[int, str]] = []
    node: int | None = leaf
    while node is not None:
        out.insert(0, (node, NAMES[node]))
        node = TREE[node]
    return tuple(out)


def catalog(n: int, seed: int) -> list[ProductDoc]:
    """*n* products drawn from :data:`WORDS` with a few brands and categories."""
    rng = random.Random(seed)
    return [
        ProductDoc(
            id=i * 3 + 1,
            title=" ".join(rng.choices(WORDS, k=rng.randint(1, 5))),
            brand_id=rng.randint(1, 5),
            brand=f"Brand{rng.randint(1, 5)}",
            category_path=path(rng.choice((2, 3, 4, 6))),
            description=" ".join(rng.choices(WORDS, k=rng.randint(0, 40))),
            price_cents=rng.randrange(0, 40000),
            age_min=(low := rng.randint(0, 10)),
            age_max=low + rng.randint(0, 8),
            popularity=rng.randint(0, 20),
            created=1_700_000_000 + rng.randrange(10**6),
            in_stock=rng.random() < 0.7,
        )
        for i in range(n)
    ]
