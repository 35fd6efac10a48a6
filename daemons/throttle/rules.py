"""Rules: which key kinds are limited, how fast, how big a burst, and the penalty box.

A key is ``KIND:VALUE`` (``ip:192.0.2.7``, ``login:192.0.2.7``); its kind
names its rule. A rule lets ``rate`` units of cost through every ``per``
with bursts of up to ``burst`` units (GCRA: emission interval
``T = per / rate``, tolerance ``burst * T``). With ``penalty_strikes`` > 0, a
key denied more than that many times within ``penalty_window`` is refused
outright for ``penalty_for``.

The rules file is TOML, one table per rule::

    [rules.login]
    rate = 5
    per = "1m"
    burst = 5
    penalty_strikes = 20
    penalty_window = "10m"
    penalty_for = "15m"

Without a file the built-in :data:`DEFAULT_RULES` apply.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from ..runtime.config import DURATION, INT
from .errors import RulesError

NS = 1_000_000_000

_KIND_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-")
_FIELDS = ("rate", "per", "burst", "penalty_strikes", "penalty_window", "penalty_for")


@dataclass(frozen=True)
class Rule:
    """One limit, in nanoseconds (``interval`` is GCRA's ``T``)."""

    name: str
    interval: int
    burst: int
    penalty_strikes: int = 0
    penalty_window: int = 60 * NS
    penalty_for: int = 300 * NS

    @property
    def tolerance(self) -> int:
        """How far the theoretical arrival time may run ahead of now: ``burst * T``."""
        return self.burst * self.interval

    @property
    def strike_interval(self) -> int:
        """The penalty box's own GCRA interval: one strike per this many ns."""
        return max(1, self.penalty_window // max(1, self.penalty_strikes))


def make_rule(name: str, rate: int, per: float, burst: int, **penalty: float) -> Rule:
    """A rule from people's units: *rate* per *per* seconds, bursts of *burst*."""
    if rate < 1 or burst < 1 or per <= 0:
        raise RulesError(f"rule {name!r}: rate, per and burst must be positive")
    interval = max(1, round(per * NS / rate))
    return Rule(
        name,
        interval,
        burst,
        int(penalty.get("penalty_strikes", 0)),
        round(penalty.get("penalty_window", 60) * NS),
        round(penalty.get("penalty_for", 300) * NS),
    )


#: The built-in rules; the cpu rule charges microseconds of CPU (7% of a core over 15 s).
DEFAULT_RULES: Mapping[str, Rule] = {
    rule.name: rule
    for rule in (
        make_rule("session", 10, 1, 40),
        make_rule("ip", 30, 1, 120, penalty_strikes=300, penalty_window=60, penalty_for=300),
        make_rule("search", 5, 1, 20),
        make_rule("cart", 5, 1, 20),
        make_rule("checkout", 1, 1, 5),
        make_rule("login", 5, 60, 5, penalty_strikes=20, penalty_window=600, penalty_for=900),
        make_rule("reset", 3, 600, 3, penalty_strikes=10, penalty_window=3600, penalty_for=3600),
        make_rule("cpu", 70_000, 1, 1_050_000),
    )
}


def _field(name: str, table: Mapping[str, object], key: str, default: object) -> float:
    raw = table.get(key, default)
    kind = DURATION if key in ("per", "penalty_window", "penalty_for") else INT
    try:
        value = float(kind.parse(raw))
    except ValueError as exc:
        raise RulesError(f"rule {name!r}: {key}: {exc}") from None
    if value < 0:
        raise RulesError(f"rule {name!r}: {key} must not be negative, got {raw!r}")
    return value


def parse_rules(data: Mapping[str, object], where: str = "rules") -> dict[str, Rule]:
    """Rules from a parsed TOML document holding a ``[rules.NAME]`` table per rule.

    :raises RulesError: naming the rule and field, for anything wrong.
    """
    tables = data.get("rules")
    if not isinstance(tables, dict) or not tables:
        raise RulesError(f"{where}: expected one or more [rules.NAME] tables")
    rules: dict[str, Rule] = {}
    for name, table in tables.items():
        if not set(name) <= _KIND_CHARS or not 1 <= len(name) <= 16:
            raise RulesError(f"{where}: rule name {name!r}: use 1-16 of a-z 0-9 _ -")
        if not isinstance(table, dict):
            raise RulesError(f"{where}: rules.{name} must be a table")
        unknown = set(table) - set(_FIELDS)
        if unknown:
            raise RulesError(
                f"{where}: rules.{name}: unknown field(s) {', '.join(sorted(unknown))}"
            )
        values = {key: _field(name, table, key, default) for key, default in _DEFAULTS.items()}
        rules[name] = make_rule(
            name,
            int(values["rate"]),
            values["per"],
            int(values["burst"]),
            penalty_strikes=values["penalty_strikes"],
            penalty_window=values["penalty_window"],
            penalty_for=values["penalty_for"],
        )
    return rules


_DEFAULTS: Mapping[str, object] = {
    "rate": 0,
    "per": "1s",
    "burst": 1,
    "penalty_strikes": 0,
    "penalty_window": "1m",
    "penalty_for": "5m",
}


def load_rules(path: Path | None) -> dict[str, Rule]:
    """The rules in *path*, or the built-in ones when *path* is ``None``.

    :raises RulesError: if the file cannot be read or holds a bad rule.
    """
    if path is None:
        return dict(DEFAULT_RULES)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise RulesError(f"cannot read the rules file {path}: {exc}") from None
    return parse_rules(data, str(path))


def rules_hash(rules: Mapping[str, Rule]) -> bytes:
    """SHA-256 of the rules in force (order-independent), as written in the log header."""
    text = "\n".join(repr(sorted(asdict(rules[name]).items())) for name in sorted(rules))
    return hashlib.sha256(text.encode()).digest()


def describe_changes(old: Mapping[str, Rule], new: Mapping[str, Rule]) -> list[str]:
    """What a reload changed, one phrase per rule (empty: nothing)."""
    changes = [f"added {name}" for name in sorted(set(new) - set(old))]
    changes += [f"removed {name}" for name in sorted(set(old) - set(new))]
    for name in sorted(set(old) & set(new)):
        before, after = asdict(old[name]), asdict(new[name])
        diff = [f"{k} {before[k]}->{after[k]}" for k in before if before[k] != after[k]]
        if diff:
            changes.append(f"changed {name} ({', '.join(diff)})")
    return changes


def scaled(rules: Mapping[str, Rule], hosts: int) -> dict[str, Rule]:
    """The rules with every rate divided by *hosts* (each host's share, for a fallback)."""
    return {
        name: Rule(
            name,
            rule.interval * hosts,
            max(1, rule.burst // hosts),
            rule.penalty_strikes,
            rule.penalty_window,
            rule.penalty_for,
        )
        for name, rule in rules.items()
    }
