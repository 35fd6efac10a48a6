"""Paths in the config: relative ones are under the shop's home."""

from __future__ import annotations

from pathlib import Path


def under(home: Path, value: Path | None, default: Path) -> Path:
    """*value* (else *default*) resolved against *home* when it is relative."""
    chosen = default if value is None else value
    return chosen if chosen.is_absolute() else home / chosen
