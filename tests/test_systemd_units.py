"""The unit files in ``systemd/`` are valid and keep the operator's contract."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNITS = sorted((ROOT / "systemd").glob("*.service")) + sorted((ROOT / "systemd").glob("*.socket"))


def _parse(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(path)
    return parser


def test_there_are_units() -> None:
    assert any(u.suffix == ".service" for u in UNITS)


@pytest.mark.parametrize(
    "name", ["sleigh-cached.service", "sleigh-throttled.service", "sleigh-searchd.service"]
)
def test_every_daemon_has_its_unit(name: str) -> None:
    assert ROOT / "systemd" / name in UNITS


@pytest.mark.parametrize("unit", [u for u in UNITS if u.suffix == ".service"], ids=str)
def test_services_notify_and_run_an_installed_program(unit: Path) -> None:
    service = _parse(unit)["Service"]
    assert service["Type"] == "notify"
    assert "SLEIGH_HOME=/var/lib/sleigh" in service["Environment"]
    program = service["ExecStart"].split()[-1]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert program in scripts


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_verify_accepts_them() -> None:
    result = subprocess.run(
        ["systemd-analyze", "verify", *map(str, UNITS)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "sleigh" not in result.stderr, result.stderr


def test_the_throttle_daemon_runs_ahead_of_the_web_workers() -> None:
    from sleigh.daemons.control.throttle_cmd import NICE

    service = _parse(ROOT / "systemd" / "sleigh-throttled.service")["Service"]
    assert int(service["Nice"]) == NICE < 0  # and `sleigh up` gives it the same


@pytest.mark.parametrize("name", ["cached", "mcastd"])
def test_the_cache_and_the_replicator_run_ahead_of_the_web_workers(name: str) -> None:
    from sleigh.daemons.control import cache_cmd, replication_cmd

    nice = {"cached": cache_cmd.NICE, "mcastd": replication_cmd.NICE}[name]
    service = _parse(ROOT / "systemd" / f"sleigh-{name}.service")["Service"]
    assert int(service["Nice"]) == nice < 0  # and `sleigh up` gives them the same
