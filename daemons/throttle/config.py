"""The ``[throttle]`` section: ``sleigh-throttled``'s rules, log and socket."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from ..runtime.config import PATH, Section, setting
from ..runtime.paths import under


@dataclass(frozen=True)
class ThrottleConfig(Section):
    SECTION: ClassVar[str] = "throttle"

    socket: Path | None = setting(
        None, kind=PATH, help="Unix socket to serve on (empty: SLEIGH_HOME/run/throttled.sock)."
    )

    def socket_path(self, home: Path) -> Path:
        """The Unix socket, resolved against *home*."""
        return under(home, self.socket, Path("run") / "throttled.sock")
