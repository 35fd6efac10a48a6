"""The ``[search]`` section: where ``sleigh-searchd`` finds its index and listens."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from ..runtime.config import PATH, Section, setting
from ..runtime.paths import under


@dataclass(frozen=True)
class SearchConfig(Section):
    SECTION: ClassVar[str] = "search"

    index_dir: Path | None = setting(
        None, kind=PATH, help="Directory of the index files (empty: SLEIGH_HOME/search)."
    )

    def index_path(self, home: Path) -> Path:
        """The index directory, resolved against *home*."""
        return under(home, self.index_dir, Path("search"))
