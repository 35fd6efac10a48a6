"""The web tier's secret keys: one file, one key a line, the first one signs.

Key rotation: put the new key on the first line and keep the old one below
it; cookies signed with the old key still verify, new ones are signed with
the new key. Remove the old line once every old cookie has expired.

The file must be readable by the service only (mode 0600 or 0400): a key
that others can read signs their cookies too.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import secrets
import stat
from collections.abc import Sequence
from pathlib import Path

from ...daemons.runtime.paths import create_private
from ...errors import SleighError

log = logging.getLogger("sleigh.web.keys")

KEY_BYTES = 32


class KeyFileError(SleighError):
    """The key file is missing, unreadable, too open or malformed."""


def b64(data: bytes) -> str:
    """URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(text: str) -> bytes | None:
    """The bytes of :func:`b64` text, or ``None`` if it is not such text."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None


class Keys:
    """A list of secret keys: ``keys[0]`` signs, every key verifies.

    Each use (``purpose``: cookies, CSRF tokens, hidden form state) gets a
    key of its own, derived with HMAC, so a value made for one use is never
    accepted for another.
    """

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise KeyFileError("no key: at least one secret key is needed")
        if any(len(key) < KEY_BYTES for key in keys):
            raise KeyFileError(f"every key must be at least {KEY_BYTES} bytes")
        self._keys = tuple(keys)

    @classmethod
    def random(cls) -> Keys:
        """One fresh key, for a single process (tests, a throwaway shop)."""
        return cls([secrets.token_bytes(KEY_BYTES)])

    def derive(self, purpose: str) -> list[bytes]:
        """The keys for *purpose*, signing key first."""
        return [hmac.new(key, purpose.encode(), hashlib.sha256).digest() for key in self._keys]

    def __len__(self) -> int:
        return len(self._keys)


class Signer:
    """Appends and checks an HMAC-SHA256 tag: ``value.tag``, both URL-safe base64."""

    def __init__(self, keys: Keys, purpose: str) -> None:
        self._keys = keys.derive(purpose)

    def _tag(self, key: bytes, value: str) -> str:
        return b64(hmac.new(key, value.encode("ascii"), hashlib.sha256).digest())

    def sign(self, value: str) -> str:
        """*value* (ASCII, no ``.``) with its tag under the signing key."""
        return f"{value}.{self._tag(self._keys[0], value)}"

    def unsign(self, token: str) -> str | None:
        """The value of a token signed by any of the keys, else ``None``."""
        value, dot, tag = token.rpartition(".")
        if not dot or not value.isascii() or not tag.isascii():
            return None
        for key in self._keys:
            if hmac.compare_digest(self._tag(key, value), tag):
                return value
        return None


def load_keys(path: Path) -> Keys:
    """Read the key file (base64 keys, one a line; ``#`` comments).

    :raises KeyFileError: naming the file and what to do.
    """
    try:
        info = path.stat()
        text = path.read_text("ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"{path}: cannot read the key file: {exc}") from exc
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(f"{path}: others can read the key file; chmod 600 it")
    keys = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key = unb64(line)
        if key is None or len(key) < KEY_BYTES:
            raise KeyFileError(f"{path}:{number}: not a base64 key of {KEY_BYTES} bytes or more")
        keys.append(key)
    if not keys:
        raise KeyFileError(f"{path}: no key in the file")
    return Keys(keys)


def ensure_key_file(path: Path) -> bool:
    """Create *path* with one new key (mode 0600) unless it exists; whether it was made."""
    text = "# sleigh web keys: the first line signs, every line verifies.\n"
    if not create_private(path, (text + b64(secrets.token_bytes(KEY_BYTES)) + "\n").encode()):
        return False
    log.warning("created a new secret key file %s: every app host needs the same file", path)
    return True
