"""Secret keys, signed values and key rotation."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from sleigh.webapp.security.keys import (
    KeyFileError,
    Keys,
    Signer,
    b64,
    ensure_key_file,
    load_keys,
)

OLD = b"o" * 32
NEW = b"n" * 32


def test_a_signed_value_verifies_and_any_change_is_refused() -> None:
    signer = Signer(Keys([NEW]), "cookie")
    token = signer.sign("abc")
    assert signer.unsign(token) == "abc"
    value, _, tag = token.partition(".")
    assert signer.unsign(f"abd.{tag}") is None
    assert signer.unsign(f"{value}.{tag[:-1]}A") is None
    for bad in ("", "abc", ".", "abc.", "é.é", token + "x"):
        assert signer.unsign(bad) is None


def test_rotation_the_new_key_signs_and_the_old_one_still_verifies() -> None:
    old_token = Signer(Keys([OLD]), "cookie").sign("sid")
    rotated = Signer(Keys([NEW, OLD]), "cookie")
    assert rotated.unsign(old_token) == "sid"
    assert rotated.sign("sid") == Signer(Keys([NEW]), "cookie").sign("sid")
    assert Signer(Keys([NEW]), "cookie").unsign(old_token) is None


def test_a_value_signed_for_one_purpose_is_refused_for_another() -> None:
    keys = Keys([NEW])
    assert Signer(keys, "csrf").unsign(Signer(keys, "cookie").sign("sid")) is None


def test_short_keys_are_refused() -> None:
    with pytest.raises(KeyFileError, match="32 bytes"):
        Keys([b"short"])


def test_the_key_file_is_made_private_once_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "web.keys"
    assert ensure_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = path.read_text()
    assert not ensure_key_file(path)
    assert path.read_text() == first
    assert len(load_keys(path)) == 1


def test_key_file_problems_are_named(tmp_path: Path) -> None:
    path = tmp_path / "web.keys"
    with pytest.raises(KeyFileError, match="cannot read"):
        load_keys(path)
    path.write_text(b64(NEW) + "\n")
    os.chmod(path, 0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        load_keys(path)
    os.chmod(path, 0o600)
    path.write_text("# rotated\n" + b64(NEW) + "\nnot-a-key!\n")
    with pytest.raises(KeyFileError, match=":3:"):
        load_keys(path)
    path.write_text("# nothing\n")
    with pytest.raises(KeyFileError, match="no key"):
        load_keys(path)
    path.write_text(f"{b64(NEW)}\n{b64(OLD)}\n")
    assert len(load_keys(path)) == 2
