"""The ``[replicator]`` section: how ``sleigh-mcastd`` joins its cluster."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from ..runtime.config import PATH, Section, setting
from ..runtime.paths import under


@dataclass(frozen=True)
class ReplicatorConfig(Section):
    SECTION: ClassVar[str] = "replicator"

    socket: Path | None = setting(
        None, kind=PATH, help="Unix socket for stats (empty: SLEIGH_HOME/run/mcastd.sock)."
    )

    def socket_path(self, home: Path) -> Path:
        """The stats socket, resolved against *home*."""
        return under(home, self.socket, Path("run") / "mcastd.sock")
