"""Every program's settings in one object: the config file, the environment, the home.

The config file is ``--config PATH``, else ``$SLEIGH_CONFIG``, else
``/etc/sleigh/sleigh.toml`` if it exists, else the built-in defaults.
``SLEIGH_HOME`` (``--home``) is the root every default path derives from.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...webapp.config import WebConfig
from ...webapp.db.config import DatabaseConfig
from ..cache.config import CacheConfig
from ..replicator.config import ReplicatorConfig
from ..runtime.config import (
    ConfigError,
    Section,
    find_config_file,
    load_section,
    read_config_file,
    render,
    specs,
)
from ..runtime.logs import LoggingConfig
from ..search.config import SearchConfig
from ..throttle.config import ThrottleConfig

__all__ = ["SECTIONS", "Settings", "load_settings"]

#: Every section a config file may hold, in the order they are shown.
SECTIONS: tuple[type[Section], ...] = (
    WebConfig,
    CacheConfig,
    ReplicatorConfig,
    SearchConfig,
    ThrottleConfig,
    DatabaseConfig,
    LoggingConfig,
)

DEFAULT_HOME = Path("var")


@dataclass(frozen=True)
class Settings:
    """The effective configuration of one shop (one home)."""

    home: Path
    config_file: Path | None
    web: WebConfig
    cache: CacheConfig
    replicator: ReplicatorConfig
    search: SearchConfig
    throttle: ThrottleConfig
    database: DatabaseConfig
    logging: LoggingConfig
    #: ``"section.key" -> "default" | "file" | "SLEIGH_..."``: where each value came from.
    sources: Mapping[str, str]

    def sections(self) -> Iterator[Section]:
        """Each section's values, in :data:`SECTIONS` order."""
        for cls in SECTIONS:
            yield getattr(self, cls.SECTION)

    def program_argv(self, module: str) -> list[str]:
        """The command that runs the program *module* (``sleigh.daemons.cache``...) on this
        shop: this Python, its home, its config file."""
        argv = [sys.executable, "-m", module, "--home", str(self.home)]
        if self.config_file is not None:
            argv += ["--config", str(self.config_file)]
        return argv

    def as_dict(self) -> dict[str, Any]:
        """The effective settings as plain data (for ``config check --json``)."""
        out: dict[str, Any] = {
            "home": str(self.home),
            "config_file": None if self.config_file is None else str(self.config_file),
        }
        for section in self.sections():
            out[section.SECTION] = render(section)
        return out


def load_settings(
    config: str | Path | None,
    environ: Mapping[str, str],
    *,
    home: str | Path | None = None,
) -> Settings:
    """Load and validate the whole configuration.

    :param config: ``--config``, if given.
    :param environ: the process environment (``SLEIGH_*`` overrides).
    :param home: ``--home``, if given; else ``$SLEIGH_HOME``, else ``./var``.
    :raises ConfigError: naming the file, the key or the variable at fault.
    """
    path = find_config_file(config, environ)
    data = read_config_file(path)
    known = {cls.SECTION for cls in SECTIONS}
    for name in data:
        if name not in known:
            raise ConfigError(f"[{name}]: unknown section (known: {', '.join(sorted(known))})")
    sources: dict[str, str] = {}
    values = {
        cls.SECTION: load_section(cls, data.get(cls.SECTION, {}), environ, sources)
        for cls in SECTIONS
    }
    chosen = home if home is not None else environ.get("SLEIGH_HOME") or DEFAULT_HOME
    return Settings(
        home=Path(chosen).expanduser().absolute(),
        config_file=path,
        sources=sources,
        **values,  # type: ignore[arg-type]
    )


def defaults_toml() -> str:
    """A commented config file holding every option at its default."""
    lines = ["# sleigh configuration: every option, at its default.", ""]
    for cls in SECTIONS:
        lines.append(f"[{cls.SECTION}]")
        for key, spec, default in specs(cls):
            bounds = []
            if spec.minimum is not None:
                bounds.append(f"min {spec.kind.show(spec.minimum)}")
            if spec.maximum is not None:
                bounds.append(f"max {spec.kind.show(spec.maximum)}")
            extra = f" ({', '.join(bounds)})" if bounds else ""
            lines.append(f"# {spec.help} [{spec.kind.name}{extra}]")
            lines.append(f"# {key} = {toml_value(spec.kind.show(default))}")
        lines.append("")
    return "\n".join(lines)


def toml_value(text: str) -> str:
    """A rendered option value as TOML: numbers and booleans bare, the rest quoted."""
    if text in ("true", "false") or re.fullmatch(r"-?(0|[1-9][0-9]*)", text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
