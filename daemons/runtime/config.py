"""Configuration: one TOML file, one section per program, ``SLEIGH_*`` overrides.

Every option is declared exactly once, as a field of a frozen dataclass
whose metadata (made by :func:`setting`) carries its kind, bounds and help.
That one declaration drives the config file, the environment
(``SLEIGH_<SECTION>_<KEY>``), ``--help`` text and ``sleigh config check``::

    @dataclass(frozen=True)
    class WebConfig(Section):
        SECTION: ClassVar[str] = "web"
        port: int = setting(8080, minimum=0, maximum=65535, help="TCP port.")
        max_body: int = setting("1MiB", kind=SIZE, help="Largest request body.")

Values are validated when loaded; a bad one raises :class:`ConfigError`
naming the key (``web.port``) or the variable (``SLEIGH_WEB_PORT``).
Nothing here reads ``os.environ`` itself: the environment is a parameter.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import re
import tomllib
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from ...errors import SleighError

__all__ = [
    "BOOL",
    "DURATION",
    "FLOAT",
    "INT",
    "MODE",
    "PATH",
    "SIZE",
    "STR",
    "ConfigError",
    "Kind",
    "Section",
    "Spec",
    "choice",
    "env_name",
    "find_config_file",
    "load_section",
    "read_config_file",
    "render",
    "setting",
    "specs",
]

DEFAULT_CONFIG_FILE = Path("/etc/sleigh/sleigh.toml")


class ConfigError(SleighError):
    """A config file, value or variable is wrong; the message names it."""


@dataclass(frozen=True)
class Kind:
    """How one kind of value is parsed from TOML or the environment, and shown."""

    name: str
    parse: Callable[[object], Any]
    show: Callable[[Any], str] = str


def _parse_str(raw: object) -> str:
    if not isinstance(raw, str):
        raise ValueError(f"expected a string, got {raw!r}")
    return raw


def _parse_int(raw: object) -> int:
    if isinstance(raw, bool):
        raise ValueError(f"expected an integer, got {raw!r}")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str) and re.fullmatch(r"\s*[-+]?\d+\s*", raw):
        return int(raw)
    raise ValueError(f"expected an integer, got {raw!r}")


def _parse_float(raw: object) -> float:
    value: float | None = None
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        value = float(raw)
    elif isinstance(raw, str):
        with contextlib.suppress(ValueError):
            value = float(raw)
    if value is None or not math.isfinite(value):
        raise ValueError(f"expected a finite number, got {raw!r}")
    return value


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _parse_bool(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str):
        word = raw.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    raise ValueError(f"expected true or false, got {raw!r}")


_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kb": 1000,
    "kib": 1024,
    "m": 1024**2,
    "mb": 1000**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gb": 1000**3,
    "gib": 1024**3,
    "t": 1024**4,
    "tb": 1000**4,
    "tib": 1024**4,
}
_QUANTITY = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*")


def _parse_size(raw: object) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str):
        match = _QUANTITY.fullmatch(raw)
        if match and match.group(2).lower() in _SIZE_UNITS:
            return int(float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])
    raise ValueError(f"expected a size such as 4096, 64KiB or 4GiB, got {raw!r}")


def _show_size(value: int) -> str:
    for unit, factor in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if value >= factor and value % factor == 0:
            return f"{value // factor}{unit}"
    return str(value)


_DURATION_UNITS = {
    "": 1.0,
    "us": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}


def _parse_duration(raw: object) -> float:
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        if not math.isfinite(raw):
            raise ValueError(f"expected a finite duration, got {raw!r}")
        return float(raw)
    if isinstance(raw, str):
        match = _QUANTITY.fullmatch(raw)
        if match and match.group(2).lower() in _DURATION_UNITS:
            return float(match.group(1)) * _DURATION_UNITS[match.group(2).lower()]
    raise ValueError(f"expected a duration such as 250ms, 5s, 10m or 1h, got {raw!r}")


def _show_duration(value: float) -> str:
    if value and value < 1:
        return f"{value * 1000:g}ms"
    for unit, factor in (("d", 86400), ("h", 3600), ("m", 60)):
        if value >= factor and value % factor == 0:
            return f"{int(value // factor)}{unit}"
    return f"{value:.6f}".rstrip("0").rstrip(".") + "s"


def _parse_path(raw: object) -> Path | None:
    if raw is None or raw == "":
        return None  # an empty path means "not set"
    text = _parse_str(raw)
    if "\0" in text:
        raise ValueError(f"expected a file system path, got {raw!r}")
    return Path(text)


def _show_path(value: Path | None) -> str:
    return "" if value is None else str(value)


def _parse_mode(raw: object) -> int:
    # A bare TOML integer is refused: 660 would be decimal, and 0o660 cannot be
    # told apart from 432; a string is always read as octal.
    if isinstance(raw, int) and not isinstance(raw, bool):
        raise ValueError(f'write a file mode as an octal string such as "0660", got {raw!r}')
    if isinstance(raw, str) and re.fullmatch(r"0?o?[0-7]{3,4}", raw.strip()):
        value = int(raw.strip().lstrip("0o") or "0", 8)
    else:
        raise ValueError(f"expected an octal file mode such as 0660, got {raw!r}")
    if not 0 <= value <= 0o7777:
        raise ValueError(f"file mode out of range: {raw!r}")
    return value


STR = Kind("string", _parse_str)
INT = Kind("integer", _parse_int)
FLOAT = Kind("number", _parse_float)
BOOL = Kind("boolean", _parse_bool, lambda v: "true" if v else "false")
SIZE = Kind("size", _parse_size, _show_size)
DURATION = Kind("duration", _parse_duration, _show_duration)
PATH = Kind("path", _parse_path, _show_path)
MODE = Kind("mode", _parse_mode, lambda v: f"0{v:o}")


def choice(*values: str) -> Kind:
    """A string kind that accepts only *values*."""

    def parse(raw: object) -> str:
        text = _parse_str(raw)
        if text not in values:
            raise ValueError(f"expected one of {', '.join(values)}, got {raw!r}")
        return text

    return Kind("one of " + "|".join(values), parse)


_INFERRED: Mapping[type, Kind] = {bool: BOOL, int: INT, float: FLOAT, str: STR}


@dataclass(frozen=True)
class Spec:
    """The declaration of one option: kind, bounds and help."""

    kind: Kind
    help: str
    minimum: float | None = None
    maximum: float | None = None

    def check(self, raw: object) -> Any:
        """Parse *raw* and check the bounds; :raises ValueError: if it does not fit."""
        value = self.kind.parse(raw)
        if self.minimum is not None and value is not None and value < self.minimum:
            raise ValueError(f"must be at least {self.kind.show(self.minimum)}, got {raw!r}")
        if self.maximum is not None and value is not None and value > self.maximum:
            raise ValueError(f"must be at most {self.kind.show(self.maximum)}, got {raw!r}")
        return value


def setting(
    default: object,
    *,
    help: str,
    kind: Kind | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
) -> Any:
    """Declare one option as a dataclass field.

    :param default: the default, in the same form a config file would give it
        (``"1GiB"`` for a size); it is parsed and checked here, once.
    :param kind: how values are parsed; inferred from *default* for
        ``bool``, ``int``, ``float`` and ``str``.
    """
    if kind is None:
        kind = _INFERRED[type(default)]
    spec = Spec(kind, help, minimum, maximum)
    return dataclasses.field(default=spec.check(default), metadata={"sleigh": spec})


class Section:
    """Base of every config section: a frozen dataclass of :func:`setting` fields."""

    SECTION: ClassVar[str]


S = TypeVar("S", bound=Section)


def specs(cls: type[Section]) -> Iterator[tuple[str, Spec, object]]:
    """Yield ``(key, spec, default)`` for every option of a section class."""
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        spec = field.metadata.get("sleigh")
        if isinstance(spec, Spec):
            yield field.name, spec, field.default


def env_name(section: str, key: str) -> str:
    """The environment variable that overrides ``section.key``."""
    return f"SLEIGH_{section.upper()}_{key.upper()}"


def load_section(
    cls: type[S],
    table: Mapping[str, object],
    environ: Mapping[str, str],
    sources: dict[str, str] | None = None,
) -> S:
    """Build one section from its TOML table and the environment.

    :param sources: if given, filled with ``"section.key" -> where from``
        (``default``, ``file`` or the variable's name).
    :raises ConfigError: on an unknown key or a bad value, naming it.
    """
    section = cls.SECTION
    known = {key: (spec, default) for key, spec, default in specs(cls)}
    _check_names(section, known.keys(), table, environ)
    values: dict[str, object] = {}
    raw: object
    for key, (spec, default) in known.items():
        var = env_name(section, key)
        if var in environ:
            raw, origin, where = environ[var], var, var
        elif key in table:
            raw, origin, where = table[key], "file", f"{section}.{key}"
        else:
            values[key] = default
            if sources is not None:
                sources[f"{section}.{key}"] = "default"
            continue
        try:
            values[key] = spec.check(raw)
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        if sources is not None:
            sources[f"{section}.{key}"] = origin
    return cls(**values)


def _check_names(
    section: str, known: Collection[str], table: Mapping[str, object], environ: Mapping[str, str]
) -> None:
    for key in table:
        if key not in known:
            raise ConfigError(f"{section}.{key}: unknown key (known: {', '.join(sorted(known))})")
    prefix = f"SLEIGH_{section.upper()}_"
    for var in environ:
        if var.startswith(prefix) and var[len(prefix) :].lower() not in known:
            raise ConfigError(f"{var}: no such option in [{section}]")


def find_config_file(explicit: str | Path | None, environ: Mapping[str, str]) -> Path | None:
    """The config file in force: *explicit*, else ``$SLEIGH_CONFIG``, else the system file.

    :raises ConfigError: if a file named explicitly does not exist.
    """
    named = explicit if explicit is not None else environ.get("SLEIGH_CONFIG") or None
    if named is not None:
        path = Path(named)
        if not path.is_file():
            raise ConfigError(f"config file {path}: no such file")
        return path
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None


def read_config_file(path: Path | None) -> dict[str, Any]:
    """Parse a TOML config file; ``None`` gives an empty configuration.

    :raises ConfigError: if the file cannot be read or is not valid TOML.
    """
    if path is None:
        return {}
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path}: not UTF-8 text ({exc.reason})") from None
    for name, table in data.items():
        if not isinstance(table, dict):
            raise ConfigError(f"config file {path}: {name!r} must be a [section], not a value")
    return data


def render(section: Section) -> dict[str, str]:
    """A section's values as the strings a config file would hold."""
    return {
        key: spec.kind.show(getattr(section, key)) for key, spec, _default in specs(type(section))
    }
