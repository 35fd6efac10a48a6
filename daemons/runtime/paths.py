"""Paths in the config: relative ones are under the shop's home."""

from __future__ import annotations

import os
from pathlib import Path


def under(home: Path, value: Path | None, default: Path) -> Path:
    """*value* (else *default*) resolved against *home* when it is relative."""
    chosen = default if value is None else value
    return chosen if chosen.is_absolute() else home / chosen


def create_private(path: Path, data: bytes) -> bool:
    """Write *data* to a new file readable by its owner only (mode 0600), unless *path*
    exists already (it is never overwritten); whether the file was made."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    return True
