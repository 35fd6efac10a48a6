"""State kept in forms or URLs, encrypted and authenticated (Fernet).

Fernet is AES-128-CBC with HMAC-SHA256 and a timestamp: the shopper can
neither read nor change what the page hides, and a sealed value goes
stale after ``max_age``. Key rotation follows the key file: the first key
seals, every key opens.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from .keys import Keys


class Sealer:
    """Seals JSON-able values into opaque strings and opens them again."""

    def __init__(self, keys: Keys, purpose: str) -> None:
        derived = keys.derive(f"sealed:{purpose}")
        self._fernet = MultiFernet([Fernet(base64.urlsafe_b64encode(k)) for k in derived])

    def seal(self, value: Any) -> str:
        data = json.dumps(value, separators=(",", ":"), sort_keys=True).encode()
        return self._fernet.encrypt(data).decode("ascii")

    def open(self, token: str, *, max_age: float) -> Any | None:
        """The sealed value, or ``None`` if *token* was changed, is foreign or too old."""
        if not token or not token.isascii():
            return None
        try:
            data = self._fernet.decrypt(token.encode("ascii"), ttl=int(max_age))
        except (InvalidToken, ValueError):
            return None
        return json.loads(data)
