"""Rules files: parsing, refusals naming the rule, the hash and the change list."""

from __future__ import annotations

from pathlib import Path

import pytest

from sleigh.daemons.throttle.errors import RulesError
from sleigh.daemons.throttle.rules import (
    DEFAULT_RULES,
    NS,
    describe_changes,
    load_rules,
    rules_hash,
)


def test_builtin_rules_without_a_file() -> None:
    rules = load_rules(None)
    assert rules == dict(DEFAULT_RULES)
    assert {"session", "ip", "search", "cart", "checkout", "login", "reset", "cpu"} <= set(rules)


def test_a_rules_file(tmp_path: Path) -> None:
    path = tmp_path / "r.toml"
    path.write_text('[rules.ip]\nrate = 10\nper = "2s"\nburst = 4\npenalty_strikes = 5\n')
    rule = load_rules(path)["ip"]
    assert rule.interval == NS // 5 and rule.burst == 4 and rule.penalty_strikes == 5
    assert rule.penalty_window == 60 * NS


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[rules.ip]\nrate = 0\n", "ip"),
        ('[rules.ip]\nrate = 1\nper = "soon"\n', "per"),
        ("[rules.ip]\nrate = 1\nspeed = 3\n", "speed"),
        ("[rules.IP]\nrate = 1\n", "IP"),
        ("[other]\nx = 1\n", "rules"),
        ("[rules.ip\n", "cannot read"),
    ],
)
def test_bad_rules_are_refused_by_name(tmp_path: Path, text: str, named: str) -> None:
    path = tmp_path / "r.toml"
    path.write_text(text)
    with pytest.raises(RulesError, match=named):
        load_rules(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="cannot read"):
        load_rules(tmp_path / "nope.toml")


def test_hash_and_changes() -> None:
    old = dict(DEFAULT_RULES)
    new = dict(old)
    del new["cart"]
    new["ip"] = new["ip"].__class__("ip", 1, 2)
    assert rules_hash(old) == rules_hash(dict(reversed(list(old.items()))))
    assert rules_hash(old) != rules_hash(new)
    changes = describe_changes(old, new)
    assert "removed cart" in changes
    assert any(c.startswith("changed ip (interval") for c in changes)
    assert describe_changes(old, old) == []
