"""``sleigh systemd install``: the shipped units, written whole, never over an edit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sleigh.daemons.control.systemd_cmd import SystemdError, install, units

ROOT = Path(__file__).resolve().parent.parent.parent


def _sleigh(*argv: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLEIGH_")}
    return subprocess.run(
        [sys.executable, "-m", "sleigh.daemons.control", "--home", str(home), *argv],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip


def test_the_shipped_units_are_the_repository_s() -> None:
    shipped = units()
    on_disk = {
        p.name: p.read_bytes()
        for p in (ROOT / "systemd").iterdir()
        if p.suffix in (".service", ".socket")
    }
    assert shipped == on_disk
    assert {"sleigh-cached.service", "sleigh-web.socket", "sleigh-web@.service"} <= set(shipped)


def test_install_writes_every_unit_then_leaves_them(tmp_path: Path) -> None:
    assert {what for _, what in install(tmp_path)} == {"written"}
    for name, text in units().items():
        assert (tmp_path / name).read_bytes() == text
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644
    assert {what for _, what in install(tmp_path)} == {"unchanged"}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_an_edited_unit_stops_the_install_and_nothing_is_written(tmp_path: Path) -> None:
    edited = tmp_path / "sleigh-cached.service"
    edited.write_text("[Service]\nExecStart=/usr/local/bin/my-cache\n")
    with pytest.raises(SystemdError, match=r"sleigh-cached.service .* differs.*--force"):
        install(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["sleigh-cached.service"]
    assert edited.read_text().endswith("my-cache\n")
    done = dict(install(tmp_path, force=True))
    assert done["sleigh-cached.service"] == "replaced"
    assert edited.read_bytes() == units()["sleigh-cached.service"]


def test_the_command_reports_each_unit_and_refuses_clearly(tmp_path: Path) -> None:
    dest = tmp_path / "units"
    dest.mkdir()
    done = _sleigh("systemd", "install", "--dest", str(dest), home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"{dest}/sleigh-mcastd.service: written" in done.stdout
    assert "systemctl daemon-reload" in done.stdout
    missing = _sleigh("systemd", "install", "--dest", str(tmp_path / "nope"), home=tmp_path)
    assert missing.returncode == 1
    assert "is not a directory" in missing.stderr and not (tmp_path / "nope").exists()
