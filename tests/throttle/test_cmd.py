"""``sleigh throttle top|show|reset|stats``, ``status`` and ``child``, against a real daemon."""

from __future__ import annotations

import argparse
import json
import sys

import pytest

from sleigh.daemons.control import throttle_cmd
from sleigh.daemons.control.settings import Settings, load_settings
from tests.throttle.conftest import Throttled


def _settings(throttled: Throttled) -> Settings:
    env = {
        "SLEIGH_CONFIG": "",
        "SLEIGH_THROTTLE_SERVERS": f"unix:{throttled.socket_path}",
        "SLEIGH_THROTTLE_RULES": str(throttled.home / "rules.toml"),
    }
    return load_settings(None, env, home=throttled.home)


def _run(settings: Settings, *argv: str) -> int:
    parser = argparse.ArgumentParser(prog="sleigh")
    common = argparse.ArgumentParser(add_help=False)
    throttle_cmd.add_parser(parser.add_subparsers(dest="command", required=True), common)
    args = parser.parse_args(list(argv))
    code: int = args.run(args, settings, {})
    return code


def test_show_reset_top_stats(throttled: Throttled, capsys: pytest.CaptureFixture[str]) -> None:
    settings = _settings(throttled)
    with throttled.client() as client:
        for _ in range(7):
            client.check([b"ip:192.0.2.7"])
        client.check([b"session:abc"])
    assert _run(settings, "throttle", "show", "ip:192.0.2.7") == 0
    out = capsys.readouterr().out
    assert "remaining        0" in out and "retry_after_s" in out
    assert _run(settings, "throttle", "top", "--since", "10m", "--json") == 0
    top = json.loads(capsys.readouterr().out)
    assert top["kinds"]["ip"] == {"allowed": 5, "denied": 2, "penalties": 0}
    assert top["denied"] == [["ip:192.0.2.7", 2]]
    assert _run(settings, "throttle", "top") == 0
    assert "ip:192.0.2.7" in capsys.readouterr().out
    assert _run(settings, "throttle", "reset", "ip:192.0.2.7") == 0
    assert "reset" in capsys.readouterr().out
    with throttled.client() as client:
        assert client.check([b"ip:192.0.2.7"]).allowed
    assert _run(settings, "throttle", "stats") == 0
    assert json.loads(capsys.readouterr().out)[0]["resets"] == 1


def test_bad_input_is_a_clear_error(
    throttled: Throttled, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = _settings(throttled)
    assert _run(settings, "throttle", "show", "no-colon") == 1
    assert "KIND:VALUE" in capsys.readouterr().err
    assert _run(settings, "throttle", "show", "nokind:x") == 1
    assert "no rule" in capsys.readouterr().err
    assert _run(settings, "throttle", "top", "--since", "soon") == 1
    assert "--since" in capsys.readouterr().err


async def test_status_up_and_down(throttled: Throttled) -> None:
    settings = _settings(throttled)
    with throttled.client() as client:
        client.check([b"ip:a"])
    up = await throttle_cmd.status(settings)
    assert up.ok and up.details["allowed"] == 1 and up.details["keys"] == 1
    assert str(throttled.socket_path) in up.address
    down = await throttle_cmd.status(
        load_settings(None, {"SLEIGH_CONFIG": ""}, home=throttled.home / "x")
    )
    assert down.state == "down" and "error" in down.details


def test_child_runs_the_daemon_on_the_home(throttled: Throttled) -> None:
    child = throttle_cmd.child(_settings(throttled))
    assert child.name == "throttled"
    assert list(child.argv) == [
        sys.executable,
        "-m",
        "sleigh.daemons.throttle",
        "--home",
        str(throttled.home),
    ]
