"""A damaged or foreign index file is refused with a clear error; builds are atomic."""

from __future__ import annotations

from pathlib import Path

import pytest

from sleigh.core_ext.search import IndexCorrupt, IndexMissing, Query, build_index, open_index
from sleigh.core_ext.search.fileformat import HEADER, Section
from sleigh.errors import SleighError

from .index_helpers import catalog


@pytest.fixture
def good(tmp_path: Path) -> Path:
    build_index(catalog(300, seed=1), tmp_path / "index")
    return tmp_path / "index"


def offsets(size: int) -> list[int]:
    """Header, section table, sections, padding and trailer."""
    return sorted(
        {
            0,
            3,
            8,
            12,
            16,
            28,
            40,
            HEADER - 1,
            HEADER + 5,
            size // 3,
            size // 2,
            size - 40,
            size - 17,
            size - 16,
            size - 9,
            size - 5,
            size - 1,
        }
    )


def test_every_flipped_byte_is_refused(good: Path, tmp_path: Path) -> None:
    data = good.read_bytes()
    for offset in offsets(len(data)):
        damaged = bytearray(data)
        damaged[offset] ^= 0x40
        bad = tmp_path / f"bad{offset}"
        bad.write_bytes(damaged)
        with pytest.raises(IndexCorrupt, match="rebuild") as info:
            open_index(bad)
        assert isinstance(info.value, SleighError)


def test_a_flip_inside_every_section_is_refused(good: Path, tmp_path: Path) -> None:
    index = open_index(good)
    spans = index.file.header.spans
    data = good.read_bytes()
    for section in Section:
        start, length = spans[section]
        if not length:
            continue
        damaged = bytearray(data)
        damaged[start + length // 2] ^= 1
        (tmp_path / "bad").write_bytes(damaged)
        with pytest.raises(IndexCorrupt):
            open_index(tmp_path / "bad")


@pytest.mark.parametrize("cut", [0, 10, HEADER, -1, -16])
def test_truncated_files_are_refused(good: Path, tmp_path: Path, cut: int) -> None:
    (tmp_path / "short").write_bytes(good.read_bytes()[:cut])
    with pytest.raises(IndexCorrupt, match="rebuild"):
        open_index(tmp_path / "short")


def test_an_appended_byte_is_refused(good: Path, tmp_path: Path) -> None:
    (tmp_path / "long").write_bytes(good.read_bytes() + b"\0")
    with pytest.raises(IndexCorrupt, match="trailer"):
        open_index(tmp_path / "long")


def test_a_missing_file_says_how_to_build_one(tmp_path: Path) -> None:
    with pytest.raises(IndexMissing, match="reindex"):
        open_index(tmp_path / "nothing")


def test_rebuild_replaces_atomically_and_leaves_no_temporary(good: Path) -> None:
    before = open_index(good)
    info = build_index(catalog(50, seed=2), good, version=before.info.version + 1)
    assert sorted(p.name for p in good.parent.iterdir()) == ["index"]
    # the open index still reads its own (now unlinked) file
    assert before.search(Query(limit=0)).total == 300
    after = open_index(good)
    assert (after.info.version, after.search(Query(limit=0)).total) == (info.version, 50)
