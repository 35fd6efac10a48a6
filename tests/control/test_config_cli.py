"""``sleigh config check`` / ``defaults`` and the operator's contract for settings."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from sleigh.daemons.control.settings import SECTIONS, load_settings
from sleigh.daemons.runtime.config import render


def sleigh(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sleigh.daemons.control", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
    )


@pytest.mark.parametrize(
    ("toml", "named"),
    [
        ("[web]\nport = 70000\n", "web.port"),
        ("[web]\nport = 'eighty'\n", "web.port"),
        ("[web]\nshutdown_timeout = 'soon'\n", "web.shutdown_timeout"),
        ("[web]\nmax_body = '1 lightyear'\n", "web.max_body"),
        ("[database]\npool_size = 0\n", "database.pool_size"),
        ("[logging]\nlevel = 'loud'\n", "logging.level"),
        ("[web]\nprot = 8080\n", "web.prot"),
        ("[webb]\nport = 8080\n", "[webb]"),
        ("web = 3\n", "'web'"),
        ("[web\nport = 1\n", "not valid TOML"),
    ],
)
def test_config_check_names_the_bad_key(tmp_path: Path, toml: str, named: str) -> None:
    path = tmp_path / "sleigh.toml"
    path.write_text(toml)
    result = sleigh("config", "check", str(path))
    assert result.returncode == 2
    assert named in result.stderr
    assert "Traceback" not in result.stderr


def test_config_check_names_a_bad_environment_variable(tmp_path: Path) -> None:
    result = sleigh("config", "check", env={"SLEIGH_WEB_PORT": "-1"})
    assert result.returncode == 2
    assert "SLEIGH_WEB_PORT" in result.stderr
    unknown = sleigh("config", "check", env={"SLEIGH_WEB_PROT": "1"})
    assert unknown.returncode == 2
    assert "SLEIGH_WEB_PROT" in unknown.stderr


def test_config_check_prints_effective_settings_and_sources(tmp_path: Path) -> None:
    path = tmp_path / "sleigh.toml"
    path.write_text("[web]\nport = 9000\nshutdown_timeout = '250ms'\n")
    result = sleigh(
        "--home",
        str(tmp_path / "home"),
        "config",
        "check",
        "--json",
        "--config",
        str(path),
        env={"SLEIGH_DATABASE_POOL_SIZE": "7"},
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["home"] == str(tmp_path / "home")
    assert data["config_file"] == str(path)
    assert data["web"]["port"] == "9000"
    assert data["web"]["shutdown_timeout"] == "250ms"
    assert data["database"]["pool_size"] == "7"
    assert data["sources"]["web.port"] == "file"
    assert data["sources"]["database.pool_size"] == "SLEIGH_DATABASE_POOL_SIZE"
    assert data["sources"]["web.host"] == "default"


def test_config_file_from_environment_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "from-env.toml"
    path.write_text("[web]\npage_size = 30\n")
    ok = sleigh("config", "check", "--json", env={"SLEIGH_CONFIG": str(path)})
    assert json.loads(ok.stdout)["web"]["page_size"] == "30"
    missing = sleigh("config", "check", "--config", str(tmp_path / "nope.toml"))
    assert missing.returncode == 2
    assert "nope.toml" in missing.stderr


def test_defaults_file_round_trips(tmp_path: Path) -> None:
    result = sleigh("config", "defaults")
    assert result.returncode == 0
    uncommented = re.sub(r"^# (\w+ = )", r"\1", result.stdout, flags=re.MULTILINE)
    data = tomllib.loads(uncommented)
    assert set(data) == {cls.SECTION for cls in SECTIONS}
    path = tmp_path / "defaults.toml"
    path.write_text(uncommented)
    from_file = load_settings(path, {})
    built_in = load_settings(None, {"SLEIGH_CONFIG": ""})
    for a, b in zip(from_file.sections(), built_in.sections(), strict=True):
        assert render(a) == render(b)


def test_home_comes_from_flag_then_environment_then_default(tmp_path: Path) -> None:
    assert load_settings(None, {}, home=tmp_path).home == tmp_path
    assert load_settings(None, {"SLEIGH_HOME": str(tmp_path / "e")}).home == tmp_path / "e"
    assert load_settings(None, {}).home == Path("var").absolute()


@pytest.mark.parametrize("command", [[], ["up"], ["status"], ["db", "upgrade"], ["demo", "load"]])
def test_every_command_has_help(command: list[str]) -> None:
    result = sleigh(*command, "--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: sleigh")


def test_effective_settings_read_back_as_a_config_file(tmp_path: Path) -> None:
    source = tmp_path / "in.toml"
    source.write_text("[web]\nport = 9090\n[cache]\nmap_size = '64MiB'\nsocket_mode = '0600'\n")
    shown = sleigh("config", "check", str(source))
    assert shown.returncode == 0, shown.stderr
    again = tmp_path / "again.toml"
    again.write_text(re.sub(r"  # .*$", "", shown.stdout, flags=re.MULTILINE))
    first = load_settings(source, {})
    second = load_settings(again, {})
    for a, b in zip(first.sections(), second.sections(), strict=True):
        assert render(a) == render(b)
    assert second.web.port == 9090 and second.cache.socket_mode == 0o600
