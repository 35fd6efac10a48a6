"""Stubs for the compiled tokenizer; the contract is in ``sleigh.core_ext.tokenizer``."""

from typing import Final

__all__ = ["MAX_TOKEN", "fold", "tokenize", "tokenize_positions"]

MAX_TOKEN: Final[int]

def fold(text: str) -> str: ...
def tokenize(text: str) -> list[str]: ...
def tokenize_positions(text: str) -> list[tuple[str, int]]: ...
