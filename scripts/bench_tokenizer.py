"""Benchmark the compiled search tokenizer against its pure-Python twin.

Builds a deterministic corpus of product-like text (titles and descriptions,
some with accents), checks that both implementations agree on it, times each
(best of several repeats, ``time.perf_counter``) and prints MB/s (of UTF-8
input) and tokens/s side by side with the ratio native/python.

Run: ``.venv/bin/python scripts/bench_tokenizer.py [--count N] [--repeat R]``
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable, Sequence

from sleigh.core_ext import tokenizer as python_impl

_BRANDS = ["Lego", "Mattel", "Hasbro", "Playmobil", "Schleich", "Ravensburger", "Brio", "Nerf"]
_NOUNS = [
    "fire truck",
    "doll house",
    "puzzle",
    "train set",
    "action figure",
    "board game",
    "plush bear",
    "race track",
    "building kit",
    "tea set",
    "kite",
    "scooter",
]
_ADJECTIVES = [
    "deluxe",
    "classic",
    "mini",
    "giant",
    "wooden",
    "electric",
    "glow-in-the-dark",
    "3D",
    "remote-controlled",
    "limited edition",
]
_ACCENTED = [
    "Crème Brûlée",
    "Café",
    "Über-Blöcke",
    "Piñata",
    "Façade",
    "Smørrebrød",
    "Ölüdeniz",
    "Naïve",
    "Château",
    "Straße",
    "jalapeño",
    "Zürich",
]
_SENTENCES = [
    "Perfect for ages {age} and up.",
    "Includes {n} pieces and a step-by-step guide.",
    "Batteries not included; requires {n} AA batteries.",
    "Kids' favourite since {year}, now at only ${price}!",
    "Don't miss the {adj} edition: it's the {noun} everyone's talking about.",
    "Made of sustainable materials (FSC-certified), {n}x{n} cm.",
    "Compatible with all {brand} sets — mix & match!",
]


def _sentence(rng: random.Random) -> str:
    return rng.choice(_SENTENCES).format(
        age=rng.randint(3, 14),
        n=rng.randint(2, 500),
        year=rng.randint(1950, 2024),
        price=f"{rng.randint(5, 300)}.{rng.randint(0, 99):02d}",
        adj=rng.choice(_ADJECTIVES),
        noun=rng.choice(_NOUNS),
        brand=rng.choice(_BRANDS),
    )


def build_corpus(count: int, seed: int = 2000) -> list[str]:
    """Return *count* product strings, alternating titles and descriptions.

    About one string in five carries accented words.

    :param count: number of strings.
    :param seed: seed of the private random generator.
    """
    rng = random.Random(seed)
    corpus: list[str] = []
    for i in range(count):
        title = f"{rng.choice(_BRANDS)} {rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}"
        if rng.random() < 0.2:
            title += " " + rng.choice(_ACCENTED)
        if i % 2:
            corpus.append(title.title() + f" #{rng.randint(1000, 99999)}")
        else:
            corpus.append(title + ". " + " ".join(_sentence(rng) for _ in range(rng.randint(3, 6))))
    return corpus


def best_time(func: Callable[[str], object], corpus: Sequence[str], repeat: int) -> float:
    """Return the best wall time, in seconds, of *func* over the corpus."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for text in corpus:
            func(text)
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=20_000, help="corpus strings (20000)")
    parser.add_argument("--repeat", type=int, default=5, help="repeats, best is kept (5)")
    parser.add_argument("--seed", type=int, default=2000, help="corpus seed (2000)")
    args = parser.parse_args(argv)
    try:
        from sleigh.core_ext import _tokenizer as native_impl
    except ImportError as exc:
        print(f"compiled tokenizer not built: {exc}", file=sys.stderr)
        return 1
    corpus = build_corpus(args.count, args.seed)
    megabytes = sum(len(text.encode("utf-8", "surrogatepass")) for text in corpus) / 1e6
    tokens = sum(len(python_impl.tokenize(text)) for text in corpus)
    if any(native_impl.tokenize(t) != python_impl.tokenize(t) for t in corpus):
        print("the implementations disagree on the corpus", file=sys.stderr)
        return 1
    print(
        f"corpus: {len(corpus)} strings, {megabytes:.2f} MB UTF-8, {tokens} tokens, "
        f"best of {args.repeat}"
    )
    print(
        f"{'function':<20}{'python MB/s':>12}{'native MB/s':>12}"
        f"{'python tok/s':>14}{'native tok/s':>14}{'ratio':>8}"
    )
    for name in ("tokenize", "tokenize_positions", "fold"):
        slow = best_time(getattr(python_impl, name), corpus, args.repeat)
        fast = best_time(getattr(native_impl, name), corpus, args.repeat)
        print(
            f"{name:<20}{megabytes / slow:>12.1f}{megabytes / fast:>12.1f}"
            f"{tokens / slow:>14,.0f}{tokens / fast:>14,.0f}{slow / fast:>7.1f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
