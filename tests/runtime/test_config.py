"""The config contract: kinds, bounds, unknown keys, environment overrides, files."""

from __future__ import annotations

import math
from dataclasses import FrozenInstanceError, dataclass
from pathlib import Path
from typing import ClassVar

import pytest

from sleigh.daemons.runtime.config import (
    DURATION,
    MODE,
    PATH,
    SIZE,
    ConfigError,
    Section,
    choice,
    env_name,
    find_config_file,
    load_section,
    read_config_file,
    render,
    setting,
    specs,
)


@dataclass(frozen=True)
class Sample(Section):
    SECTION: ClassVar[str] = "sample"
    port: int = setting(8080, minimum=0, maximum=65535, help="TCP port.")
    ratio: float = setting(0.5, minimum=0.0, maximum=1.0, help="A fraction.")
    debug: bool = setting(False, help="Debug mode.")
    name: str = setting("shop", help="A name.")
    map_size: int = setting("1GiB", kind=SIZE, minimum=4096, help="Map size.")
    timeout: float = setting("5s", kind=DURATION, minimum=0.001, maximum=3600, help="Timeout.")
    mode: int = setting("0660", kind=MODE, help="Socket mode.")
    socket: Path | None = setting(None, kind=PATH, help="Socket path.")
    flavour: str = setting("plain", kind=choice("plain", "json"), help="Format.")


def load(table: dict[str, object] | None = None, **environ: str) -> Sample:
    return load_section(Sample, table or {}, environ)


def test_defaults_are_parsed_once() -> None:
    cfg = load()
    assert (cfg.port, cfg.ratio, cfg.debug, cfg.name) == (8080, 0.5, False, "shop")
    assert (cfg.map_size, cfg.timeout, cfg.mode, cfg.socket) == (1024**3, 5.0, 0o660, None)
    with pytest.raises(FrozenInstanceError):
        cfg.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("key", "raw", "value"),
    [
        ("port", "0", 0),
        ("port", 65535, 65535),
        ("ratio", 1, 1.0),
        ("debug", "yes", True),
        ("debug", "OFF", False),
        ("map_size", "64KiB", 65536),
        ("map_size", "1.5GB", 1_500_000_000),
        ("map_size", 8192, 8192),
        ("timeout", "250ms", 0.25),
        ("timeout", "10m", 600.0),
        ("timeout", 2, 2.0),
        ("mode", "0o600", 0o600),
        ("mode", "640", 0o640),
        ("socket", "/run/sleigh/x.sock", Path("/run/sleigh/x.sock")),
        ("socket", "", None),
        ("flavour", "json", "json"),
    ],
)
def test_kinds_parse_file_values(key: str, raw: object, value: object) -> None:
    assert getattr(load({key: raw}), key) == value


@pytest.mark.parametrize(
    ("key", "raw", "message"),
    [
        ("port", 65536, "must be at most 65535"),
        ("port", -1, "must be at least 0"),
        ("port", "80x", "expected an integer"),
        ("port", True, "expected an integer"),
        ("port", 80.0, "expected an integer"),
        ("ratio", 1.5, "must be at most 1"),
        ("debug", "maybe", "expected true or false"),
        ("map_size", "1KiB", "must be at least 4KiB"),
        ("map_size", "4 parsecs", "expected a size"),
        ("timeout", "0ms", "must be at least 1ms"),
        ("timeout", "2h", "must be at most 1h"),
        ("timeout", "soon", "expected a duration"),
        ("mode", "0999", "expected an octal file mode"),
        ("mode", 0o644, "octal string"),
        ("mode", "017777", "expected an octal file mode"),
        ("socket", "a\0b", "expected a file system path"),
        ("flavour", "xml", "expected one of plain, json"),
        ("name", 5, "expected a string"),
    ],
)
def test_bad_file_values_name_the_key(key: str, raw: object, message: str) -> None:
    with pytest.raises(ConfigError, match=rf"^sample\.{key}: .*{message}"):
        load({key: raw})


def test_unknown_file_key_is_refused_with_the_known_keys() -> None:
    with pytest.raises(ConfigError, match=r"^sample\.prot: unknown key \(known: debug, "):
        load({"prot": 80})


def test_environment_overrides_the_file_and_names_the_variable() -> None:
    assert env_name("sample", "map_size") == "SLEIGH_SAMPLE_MAP_SIZE"
    sources: dict[str, str] = {}
    cfg = load_section(Sample, {"port": 1, "name": "file"}, {"SLEIGH_SAMPLE_PORT": "2"}, sources)
    assert (cfg.port, cfg.name) == (2, "file")
    assert sources["sample.port"] == "SLEIGH_SAMPLE_PORT"
    assert sources["sample.name"] == "file"
    assert sources["sample.ratio"] == "default"
    with pytest.raises(ConfigError, match=r"^SLEIGH_SAMPLE_MAP_SIZE: .*expected a size"):
        load(SLEIGH_SAMPLE_MAP_SIZE="lots")


def test_unknown_variable_for_the_section_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^SLEIGH_SAMPLE_PROT: no such option in \[sample\]"):
        load(SLEIGH_SAMPLE_PROT="80")
    assert load(SLEIGH_OTHER_PORT="1", SLEIGH_SAMPLEX="1").port == 8080


def test_render_shows_values_as_a_file_would() -> None:
    shown = render(load({"map_size": "64MiB", "timeout": "250ms", "mode": "0600"}))
    assert shown["map_size"] == "64MiB" and shown["timeout"] == "250ms"
    assert shown["mode"] == "0600" and shown["debug"] == "false"
    assert [key for key, _spec, _default in specs(Sample)][:2] == ["port", "ratio"]


def test_read_config_file(tmp_path: Path) -> None:
    good = tmp_path / "sleigh.toml"
    good.write_text('[sample]\nport = 81\nmap_size = "2GiB"\n')
    cfg = load_section(Sample, read_config_file(good)["sample"], {})
    assert (cfg.port, cfg.map_size) == (81, 2 * 1024**3)
    assert read_config_file(None) == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[sample\nport = 1\n", "not valid TOML"),
        ("port = 1\n", "'port' must be a \\[section\\]"),
    ],
)
def test_bad_config_file_is_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=rf"^config file {path}: {message}"):
        read_config_file(path)


def test_missing_or_unreadable_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Is a directory"):
        read_config_file(tmp_path)
    with pytest.raises(ConfigError, match="no such file"):
        find_config_file(tmp_path / "nope.toml", {})
    with pytest.raises(ConfigError, match="no such file"):
        find_config_file(None, {"SLEIGH_CONFIG": str(tmp_path / "nope.toml")})
    named = tmp_path / "s.toml"
    named.write_text("")
    assert find_config_file(None, {"SLEIGH_CONFIG": str(named)}) == named
    assert find_config_file(named, {"SLEIGH_CONFIG": "/elsewhere"}) == named


@pytest.mark.parametrize(("key", "raw"), [("ratio", math.nan), ("timeout", math.nan)])
def test_nan_is_refused(key: str, raw: float) -> None:
    with pytest.raises(ConfigError, match=rf"^sample\.{key}"):
        load({key: raw})


def test_nan_from_the_environment_is_refused() -> None:
    with pytest.raises(ConfigError, match="SLEIGH_SAMPLE_RATIO"):
        load(SLEIGH_SAMPLE_RATIO="nan")


def test_mode_integer_660_is_refused_or_octal() -> None:
    try:
        mode = load({"mode": 660}).mode
    except ConfigError:
        return
    assert mode == 0o660


def test_render_then_load_round_trips() -> None:
    cfg = load({"socket": "/run/s.sock", "timeout": "250ms", "debug": True})
    assert load(dict(render(cfg))) == cfg
    assert load(dict(render(load()))) == load()
    assert load({"socket": "/x"}, SLEIGH_SAMPLE_SOCKET="").socket is None


def test_config_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[sample]\nname = "caf\xe9"\n')
    with pytest.raises(ConfigError, match=str(path)):
        read_config_file(path)
