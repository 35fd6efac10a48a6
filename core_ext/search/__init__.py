"""The search index: an inverted index of the catalog in one memory-mapped file.

Public contract (the same with the compiled engine and its pure-Python twin)::

    info = build_index(products, path)            # atomic, versioned, checksummed
    index = open_index(path)                      # IndexCorrupt on any damage
    result = index.search(Query(text="red car", category=3, sort="price_asc"))
    index.suggest("lego du", 5)                   # completions
    index.update(product_id, price_cents=999, in_stock=False)   # overlay, no rebuild

Modules: :mod:`.model` (ProductDoc, Query, Result, IndexInfo), :mod:`.builder`,
:mod:`.fileformat` (the file layout), :mod:`.reader`, :mod:`.plan` (query text
and filters into a plan), :mod:`.twin` (the Python engine) beside ``_engine``
(the compiled engine, which releases the GIL while it runs a plan; its parts
``_cursor.pxd`` and ``_words.pxd``), ``_build`` (the compiled build steps),
:mod:`.index` (``Index``), :mod:`.suggest`, :mod:`.source` (reading the database).

The compiled engine is used unless ``SLEIGH_NO_EXTENSIONS`` is set to a
non-empty value other than ``0`` or it cannot be imported; :data:`NATIVE` says
which (as in :mod:`sleigh.core_ext`).
"""

from __future__ import annotations

import logging
import os

from .builder import build_index
from .errors import IndexClosed, IndexCorrupt, IndexMissing, QueryError, SearchIndexError
from .index import Index, open_index
from .model import AGE_BANDS, FACETS, PRICE_BANDS, SORTS, IndexInfo, ProductDoc, Query, Result
from .plan import DEFAULT_RULES, MAX_LIMIT, MAX_TERMS, MAX_TEXT
from .source import load_products

__all__ = [
    "AGE_BANDS",
    "DEFAULT_RULES",
    "FACETS",
    "MAX_LIMIT",
    "MAX_TERMS",
    "MAX_TEXT",
    "NATIVE",
    "PRICE_BANDS",
    "SORTS",
    "Index",
    "IndexClosed",
    "IndexCorrupt",
    "IndexInfo",
    "IndexMissing",
    "ProductDoc",
    "Query",
    "QueryError",
    "Result",
    "SearchIndexError",
    "build_index",
    "load_products",
    "open_index",
]

_log = logging.getLogger("sleigh.search.index")

#: True when the compiled engine is used, False for the Python twin.
NATIVE: bool

if os.environ.get("SLEIGH_NO_EXTENSIONS", "") not in ("", "0"):
    NATIVE = False
else:
    try:
        from . import _build, _engine  # noqa: F401
    except ImportError as exc:
        _log.debug("compiled search engine unavailable, using the Python twin: %s", exc)
        NATIVE = False
    else:
        NATIVE = True
