"""``sleigh replication``, ``status()``, ``child()`` and the secret ``sleigh up`` makes."""

from __future__ import annotations

import argparse
import json
import stat
from pathlib import Path

import pytest

from sleigh.daemons.control import replication_cmd
from sleigh.daemons.control.settings import Settings, load_settings
from sleigh.daemons.replicator.service import read_secret


def settings_for(home: Path, **env: str) -> Settings:
    return load_settings(None, env, home=home)


def run(argv: list[str], settings: Settings) -> int:
    parser = argparse.ArgumentParser()
    common = argparse.ArgumentParser(add_help=False)
    sub = parser.add_subparsers(dest="command", required=True)
    replication_cmd.add_parser(sub, common)
    args = parser.parse_args(argv)
    return int(args.run(args, settings, {}))


def test_ensure_secret_creates_a_private_file_once(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    path = replication_cmd.ensure_secret(settings)
    assert path == tmp_path / "replicator.secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = path.read_bytes()
    assert len(read_secret(path)) >= 16
    assert replication_cmd.ensure_secret(settings) == path and path.read_bytes() == first


def test_child_runs_the_daemon_on_the_home(tmp_path: Path) -> None:
    child = replication_cmd.child(settings_for(tmp_path))
    assert child.name == "mcastd"
    assert list(child.argv[1:]) == ["-m", "sleigh.daemons.replicator", "--home", str(tmp_path)]


async def test_status_down_without_a_daemon(tmp_path: Path) -> None:
    component = await replication_cmd.status(settings_for(tmp_path))
    assert component.state == "down" and "does not answer" in component.details["error"]


def test_status_command_fails_without_a_daemon(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["replication", "status"], settings_for(tmp_path)) == 1
    assert "does not answer" in capsys.readouterr().err


def test_summary_and_rows_of_a_snapshot() -> None:
    peer = {
        "sender": "00000000000000aa",
        "state": "silent",
        "lag": 3,
        "lag_seconds": 0.5,
        "received": 10,
        "missed": 4,
        "recovered": 1,
        "naks": 2,
        "gaps": 1,
        "lost": 3,
        "ops": 9,
    }
    snapshot = {
        "sender": "00000000000000bb",
        "sent": {"ops": 5, "repairs": 2},
        "peers": [peer],
        "rejected": {"bad_mac": 7},
        "daemon": {"kernel_rcvbuf_errors": 0},
    }
    headline = replication_cmd.summary(snapshot)
    assert headline["alive"] == 0 and headline["unrecoverable"] == 1 and headline["rejected"] == 7
    rows = replication_cmd.peer_rows(snapshot)
    assert len(rows) == 2 and rows[1].startswith("00000000000000aa  silent")
    json.dumps(headline)
