"""Native fast paths, each beside its pure-Python twin.

The compiled :mod:`sleigh.core_ext._tokenizer` is used unless the environment
variable ``SLEIGH_NO_EXTENSIONS`` is set to a non-empty value other than ``0``
(read once, here, at import: the one accepted exception to "nothing reads the
environment at import", as aiohttp does with ``AIOHTTP_NO_EXTENSIONS``), or
unless the compiled module cannot be imported; then the twin
:mod:`sleigh.core_ext.tokenizer` is used. :data:`NATIVE` says which.
Both modules stay importable directly, for tests and benchmarks.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Mapping
from types import ModuleType

__all__ = ["MAX_TOKEN", "NATIVE", "fold", "tokenize", "tokenize_positions"]

_log = logging.getLogger("sleigh.core_ext")

#: True when the compiled implementation was chosen, False for the Python twin.
NATIVE: bool


def _extensions_disabled(environ: Mapping[str, str]) -> bool:
    value = environ.get("SLEIGH_NO_EXTENSIONS", "")
    return value not in ("", "0")


def compiled(name: str, what: str) -> ModuleType | None:
    """The compiled module ``sleigh.core_ext.<name>``; ``None`` when extensions are
    disabled or it cannot be imported (logged: *what* then uses its Python twin)."""
    if _extensions_disabled(os.environ):
        return None
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ImportError as exc:
        _log.debug("compiled %s unavailable, using the Python twin: %s", what, exc)
        return None


if _extensions_disabled(os.environ):
    from .tokenizer import MAX_TOKEN, fold, tokenize, tokenize_positions

    NATIVE = False
else:
    try:
        from ._tokenizer import MAX_TOKEN, fold, tokenize, tokenize_positions
    except ImportError as exc:
        _log.debug("compiled tokenizer unavailable, using the Python twin: %s", exc)
        from .tokenizer import MAX_TOKEN, fold, tokenize, tokenize_positions

        NATIVE = False
    else:
        NATIVE = True
