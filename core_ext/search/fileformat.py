"""The index file: one immutable, versioned, checksummed file of aligned sections.

::

    offset 0   header (little-endian)
               8s   magic b"SLEIGHIX"
               u32  format version (FORMAT)
               u32  number of sections (len(Section))
               u64  index version (chosen by the builder, grows with every build)
               f64  built at, seconds since the epoch
               u32  products          u32  terms
               (u64 offset, u64 length) per section, in Section order
    ...        sections, each starting on an 8-byte boundary, zero padding between
    end - 16   trailer: u64 length of everything before the trailer,
               u32 CRC-32 of everything before the trailer, 4s b"XIHG"

A CRC-32 detects every error burst of up to 32 bits, so any single flipped byte
is caught. Columns are indexed by *document number*: products in order of
popularity (highest first), then id, so "most popular first" is document order.

Postings of one term (in section POSTINGS, 4-byte aligned)::

    per block of up to 128 documents: u32 last document, u32 offset of its data
    (from the end of this skip table)
    per block: varint (LEB128) gaps of the document numbers (first gap from the
    previous block's last document, or from -1), then one byte of weighted term
    frequency per document
"""

from __future__ import annotations

import enum
import struct
import zlib
from typing import Final

from .errors import IndexCorrupt

__all__ = [
    "BLOCK",
    "FORMAT",
    "HEADER",
    "MAGIC",
    "NO_BITMAP",
    "TRAILER",
    "Header",
    "Section",
    "encode_postings",
    "read_header",
    "write_sections",
]

MAGIC: Final = b"SLEIGHIX"
END_MAGIC: Final = b"XIHG"
FORMAT: Final = 1
BLOCK: Final = 128
#: TERM_BITMAP entry of a term that has no bitmap.
NO_BITMAP: Final = -1


class Section(enum.IntEnum):
    """Sections in file order; the type code is the array element type."""

    META = 0  # JSON: categories, brands, BM25 parameters, sort rules
    PRODUCT_ID = 1  # q: product id per document
    PRICE = 2  # i: price in cents
    BRAND = 3  # i: brand number (index into META brands)
    CATEGORY = 4  # i: leaf category number (index into META categories)
    AGE_MIN = 5  # B
    AGE_MAX = 6  # B
    IN_STOCK = 7  # B: 1 in stock, 0 not
    POPULARITY = 8  # q
    CREATED = 9  # q: seconds since the epoch
    NORM = 10  # f: BM25 length normalisation k1 * (1 - b + b * length / average)
    ID_ORDER = 11  # I: document numbers in order of product id
    TERM_OFFSETS = 12  # I: start of each term in TERM_TEXT, plus the end
    TERM_TEXT = 13  # UTF-8 terms, sorted by code point
    TERM_DF = 14  # I: documents per term
    TERM_POSTINGS = 15  # q: start of each term in POSTINGS, plus the end
    TERM_BITMAP = 16  # q: start of the term's bitmap in BITMAPS (64-bit words), or -1
    POSTINGS = 17  # bytes, see the module docstring
    BITMAPS = 18  # Q: one bit per document, for terms in many documents
    WORD_OFFSETS = 19  # I: start of each word in WORD_TEXT, plus the end
    WORD_TEXT = 20  # UTF-8 folded words (unstemmed), sorted by code point
    WORD_DF = 21  # I: documents per word
    WORD_TERM = 22  # I: the term number of each word's stem


_HEAD: Final = struct.Struct("<8sIIQdII")
_SPAN: Final = struct.Struct("<QQ")
_TAIL: Final = struct.Struct("<QI4s")
HEADER: Final = _HEAD.size + _SPAN.size * len(Section)
TRAILER: Final = _TAIL.size


class Header:
    """The parsed header of an index file."""

    __slots__ = ("built_at", "products", "spans", "terms", "version")

    def __init__(
        self, version: int, built_at: float, products: int, terms: int, spans: list[tuple[int, int]]
    ) -> None:
        self.version = version
        self.built_at = built_at
        self.products = products
        self.terms = terms
        self.spans = spans


def _align(n: int, to: int = 8) -> int:
    return (n + to - 1) // to * to


def write_sections(out: bytearray, header: Header, sections: list[bytes]) -> None:
    """Lay out *sections* after a header into *out*, then the trailer.

    :param header: its ``spans`` are filled in here.
    """
    if len(sections) != len(Section):
        raise ValueError(f"expected {len(Section)} sections, got {len(sections)}")
    position = _align(HEADER)
    spans: list[tuple[int, int]] = []
    for data in sections:
        spans.append((position, len(data)))
        position = _align(position + len(data))
    header.spans = spans
    out.clear()
    out += _HEAD.pack(
        MAGIC, FORMAT, len(Section), header.version, header.built_at, header.products, header.terms
    )
    for span in spans:
        out += _SPAN.pack(*span)
    for (start, _), data in zip(spans, sections, strict=True):
        out += bytes(start - len(out))
        out += data
    out += bytes(_align(len(out)) - len(out))
    out += _TAIL.pack(len(out), zlib.crc32(out), END_MAGIC)


def read_header(data: memoryview, *, verify: bool = True) -> Header:
    """Check the header, the trailer, the checksum and the section table of *data*.

    :raises IndexCorrupt: naming what is wrong.
    """
    size = len(data)
    if size < HEADER + TRAILER:
        raise IndexCorrupt(f"index file too short ({size} bytes); rebuild the index")
    magic, fmt, count, version, built_at, products, terms = _HEAD.unpack_from(data, 0)
    if magic != MAGIC:
        raise IndexCorrupt("not a sleigh index file (bad magic); rebuild the index")
    if fmt != FORMAT or count != len(Section):
        raise IndexCorrupt(
            f"index file format {fmt} with {count} sections; this version reads format "
            f"{FORMAT}; rebuild the index"
        )
    length, crc, end = _TAIL.unpack_from(data, size - TRAILER)
    if end != END_MAGIC or length != size - TRAILER:
        raise IndexCorrupt("index file truncated or extended (bad trailer); rebuild the index")
    if verify and zlib.crc32(data[:length]) != crc:
        raise IndexCorrupt("index file checksum mismatch: the file is damaged; rebuild it")
    spans = [_SPAN.unpack_from(data, _HEAD.size + i * _SPAN.size) for i in range(count)]
    for start, span_length in spans:
        if start < HEADER or start + span_length > length:
            raise IndexCorrupt("index section out of bounds; rebuild the index")
    return Header(version, built_at, products, terms, spans)


def _varint(out: bytearray, value: int) -> None:
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def encode_postings(docs: list[int], tfs: list[int]) -> bytes:
    """One term's postings, as laid out in the POSTINGS section (see the module doc).

    :param docs: strictly increasing document numbers.
    :param tfs: weighted term frequencies, 1 to 255, one per document.
    """
    skips = bytearray()
    body = bytearray()
    previous = -1
    for start in range(0, len(docs), BLOCK):
        skips += struct.pack("<II", docs[min(start + BLOCK, len(docs)) - 1], len(body))
        for doc in docs[start : start + BLOCK]:
            _varint(body, doc - previous)
            previous = doc
        body += bytes(tfs[start : start + BLOCK])
    return bytes(skips + body)


def decode_postings(data: memoryview, df: int) -> tuple[list[int], list[int]]:
    """The inverse of :func:`encode_postings`: documents and term frequencies."""
    blocks = (df + BLOCK - 1) // BLOCK
    base = blocks * 8
    docs: list[int] = []
    tfs: list[int] = []
    previous = -1
    for block in range(blocks):
        n = min(BLOCK, df - block * BLOCK)
        (offset,) = struct.unpack_from("<I", data, block * 8 + 4)
        pos = base + offset
        for _ in range(n):
            value = shift = 0
            while True:
                byte = data[pos]
                pos += 1
                value |= (byte & 0x7F) << shift
                shift += 7
                if byte < 0x80:
                    break
            previous += value
            docs.append(previous)
        tfs.extend(data[pos : pos + n])
    return docs, tfs
