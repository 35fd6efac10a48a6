"""One line of ``sleigh status``: a component, its state, address and figures.

Every daemon's control module returns one from its ``status(settings)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Component:
    name: str
    state: str  # "up", "down" or "degraded"
    address: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.state == "up"
