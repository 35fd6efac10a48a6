"""Encoding every term's postings and bitmaps, in pure Python (the compiled build's twin).

:func:`encode_index` is the compiled ``_engine.encode_index`` when available;
both produce the same bytes.
"""

from __future__ import annotations

from array import array
from typing import Final

from .fileformat import NO_BITMAP, encode_postings

__all__ = ["DENSE", "encode_index", "is_dense"]

#: A term in at least one document in DENSE also gets a bitmap.
DENSE: Final = 16


def is_dense(df: int, n_docs: int) -> bool:
    """Whether a term in *df* of *n_docs* documents gets a bitmap."""
    return df * DENSE >= n_docs and df >= 2


def py_encode_index(
    ids: array[int], tfs: array[int], starts: array[int], final: array[int], n_terms: int
) -> tuple[bytes, bytes, bytes, bytes, bytes]:
    """Group per-document term numbers into per-term postings.

    :param ids: provisional term numbers, document after document.
    :param tfs: the weighted frequency of each entry of *ids*.
    :param starts: where each document's entries start in *ids*, plus the end.
    :param final: the final term number of each provisional one.
    :returns: the POSTINGS, TERM_POSTINGS, TERM_DF, TERM_BITMAP and BITMAPS sections.
    """
    n_docs = len(starts) - 1
    docs: list[list[int]] = [[] for _ in range(n_terms)]
    freqs: list[list[int]] = [[] for _ in range(n_terms)]
    for doc in range(n_docs):
        for i in range(starts[doc], starts[doc + 1]):
            term = final[ids[i]]
            docs[term].append(doc)
            freqs[term].append(tfs[i])
    postings = bytearray()
    offsets = array("q", [0])
    bitmap_at = array("q")
    bitmaps = array("Q")
    words = (n_docs + 63) // 64
    for term in range(n_terms):
        postings += encode_postings(docs[term], freqs[term])
        postings += bytes(-len(postings) % 4)
        offsets.append(len(postings))
        if is_dense(len(docs[term]), n_docs):
            bitmap_at.append(len(bitmaps))
            bits = [0] * words
            for doc in docs[term]:
                bits[doc >> 6] |= 1 << (doc & 63)
            bitmaps.extend(bits)
        else:
            bitmap_at.append(NO_BITMAP)
    df = array("I", (len(d) for d in docs))
    return bytes(postings), offsets.tobytes(), df.tobytes(), bitmap_at.tobytes(), bitmaps.tobytes()


def encode_index(
    ids: array[int], tfs: array[int], starts: array[int], final: array[int], n_terms: int
) -> tuple[bytes, bytes, bytes, bytes, bytes]:
    """:func:`py_encode_index`, compiled when the compiled engine is in use."""
    from . import NATIVE

    if NATIVE:
        from ._build import encode_index as native_encode_index

        return native_encode_index(ids, tfs, starts, final, n_terms)
    return py_encode_index(ids, tfs, starts, final, n_terms)
