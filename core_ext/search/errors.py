"""Errors of the search index: one root, typed subclasses."""

from __future__ import annotations

from ...errors import SleighError

__all__ = ["IndexClosed", "IndexCorrupt", "IndexMissing", "QueryError", "SearchIndexError"]


class SearchIndexError(SleighError):
    """Root of the errors the search index raises."""


class IndexCorrupt(SearchIndexError):
    """The index file is not a complete, intact index of a version this code reads.

    Rebuild it (``sleigh search reindex``); the file is never repaired in place.
    """


class IndexMissing(SearchIndexError, FileNotFoundError):
    """No index file at the given path; build one first (``sleigh search reindex``)."""


class QueryError(SearchIndexError, ValueError):
    """A query the index refuses: a bad field value, an unknown sort, too many terms."""


class IndexClosed(SearchIndexError):
    """The index was closed (replaced by a newer one); search the newer one."""
