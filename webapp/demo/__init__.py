"""The demo catalog: a deterministic toy, book and video-game shop for development and tests."""

from __future__ import annotations

from .catalog import DemoCatalogError, LoadReport, load_demo

__all__ = ["DemoCatalogError", "LoadReport", "load_demo"]
