"""Stubs for the compiled build steps; the contracts are in ``builder`` and ``postings``."""

from array import array
from collections.abc import Callable

def encode_index(
    ids: array[int], tfs: array[int], starts: array[int], final: array[int], n_terms: int
) -> tuple[bytes, bytes, bytes, bytes, bytes]: ...

class TermCounter:
    def __init__(self, assign: Callable[[str], int], weights: tuple[int, ...]) -> None: ...
    def add(
        self, title: list[str], brand: list[str], category: list[str], description: list[str]
    ) -> None: ...
    def result(
        self,
    ) -> tuple[
        list[str], array[int], array[int], array[int], array[int], array[int], array[int]
    ]: ...
