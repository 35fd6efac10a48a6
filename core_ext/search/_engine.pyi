"""Stubs for the compiled query engine; the contract is in ``sleigh.core_ext.search.twin``."""

from array import array
from collections.abc import Callable

from .plan import Plan
from .reader import IndexFile
from .twin import FacetCounts

class Engine:
    def __init__(self, index: IndexFile, price: array[int], stock: bytearray) -> None: ...
    def run(self, plan: Plan) -> tuple[list[int], int, FacetCounts | None]: ...
    def nearest_word(self, word: str) -> str | None: ...
    def close(self) -> None: ...

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
