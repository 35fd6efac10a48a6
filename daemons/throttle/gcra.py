"""GCRA with cost over many keys: the table the daemon and the web tier's fallback share.

Per key, three timestamps in nanoseconds: ``tat`` (the theoretical arrival
time), ``strike`` (the penalty box's own TAT, one unit per denial) and
``blocked`` (the end of a penalty). With emission interval ``T`` and burst
``B``, a request of cost ``c`` at ``now`` is admitted iff
``max(tat, now) + c*T - now <= B*T``; a denial's Retry-After is exactly
``max(tat, now) + c*T - B*T - now``, the first instant the same request
would be admitted (nothing else admitted in between can make it wrong earlier).

A request names several keys; it is admitted only if every key's rule
admits it, and only then is any key charged. Every state change goes to the
*sink* (the daemon's log) before the call returns.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import NamedTuple

from .errors import ProtocolError
from .rules import Rule

ALLOW, DENY, PENALTY, CHARGE, RESET, SNAPSHOT = 1, 2, 3, 4, 5, 6
EVENT_NAMES = {
    ALLOW: "allow",
    DENY: "deny",
    PENALTY: "penalty",
    CHARGE: "charge",
    RESET: "reset",
    SNAPSHOT: "snapshot",
}

#: The latest instant a state holds (the log's timestamps are i64 nanoseconds).
TIME_MAX = (1 << 63) - 1

#: ``sink(event, key, key_hash, now, tat, strike, blocked, cost)``
Sink = Callable[[int, bytes, int, int, int, int, int, int], None]

#: A key's state: ``[tat, strike, blocked, key_hash]`` (a list: updated in place).
State = list[int]


class Decision(NamedTuple):
    allowed: bool
    #: Nanoseconds until the same request would be admitted (0 when allowed).
    retry_after: int
    #: Units of cost still admissible now, the least over the request's keys.
    remaining: int
    #: Index of the key that denied the longest (``-1`` when allowed).
    limiting: int


def key_hash(key: bytes) -> int:
    """The 64-bit hash that names *key* in the log."""
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little")


def kind_of(key: bytes) -> bytes:
    """``ip`` of ``ip:192.0.2.7``."""
    return key.partition(b":")[0]


class Table:
    """Every key's state and the rules that judge it.

    :param rules: by name; a key's kind (before ``:``) picks its rule.
    :param sink: receives every state change (``None``: nothing is recorded).
    """

    def __init__(self, rules: Mapping[str, Rule], sink: Sink | None = None) -> None:
        self.states: dict[bytes, State] = {}
        self.sink = sink
        self.rules: dict[bytes, Rule] = {}
        #: ``(rule, interval, tolerance)`` by kind, for the daemon's fast path.
        self.limits: dict[bytes, tuple[Rule, int, int]] = {}
        self.set_rules(rules)

    def set_rules(self, rules: Mapping[str, Rule]) -> None:
        """Judge by *rules* from now on (states are kept)."""
        self.rules = {name.encode(): rule for name, rule in rules.items()}
        self.limits = {
            kind: (rule, rule.interval, rule.tolerance) for kind, rule in self.rules.items()
        }

    def rule_for(self, key: bytes) -> Rule:
        """The rule of *key*'s kind.

        :raises ProtocolError: if no rule has that kind.
        """
        rule = self.rules.get(kind_of(key))
        if rule is None:
            raise ProtocolError(f"no rule for the kind of key {key[:48]!r}")
        return rule

    def _state(self, key: bytes) -> State:
        state = self.states.get(key)
        if state is None:
            state = self.states[key] = [0, 0, 0, key_hash(key)]
        return state

    def check(
        self, keys: Sequence[bytes], costs: Sequence[int], now: int, *, charge: bool = True
    ) -> Decision:
        """Admit the request (charging every key) or deny it (charging none).

        :param charge: ``False`` asks only: nothing changes, nothing is recorded.
        """
        rules = [self.rule_for(key) for key in keys]
        retry, remaining, limiting = 0, 1 << 31, -1
        news: list[int] = []
        denied: list[int] = []
        for index, key in enumerate(keys):
            rule, state = rules[index], self.states.get(key)
            tat, blocked = (state[0], state[2]) if state is not None else (0, 0)
            new = (tat if tat > now else now) + costs[index] * rule.interval
            wait = blocked - now if blocked > now else new - rule.tolerance - now
            if wait > 0:
                denied.append(index)
                if wait > retry:
                    retry, limiting = wait, index
            else:
                remaining = min(remaining, (rule.tolerance - new + now) // rule.interval)
            news.append(new)
        if denied:
            if charge:
                for index in denied:
                    self.deny(keys[index], rules[index], now)
            return Decision(False, retry, 0, limiting)
        if charge:
            sink = self.sink
            for index, key in enumerate(keys):
                state = self._state(key)
                state[0] = news[index]
                if sink is not None:
                    sink(ALLOW, key, state[3], now, state[0], state[1], state[2], costs[index])
        return Decision(True, 0, remaining, -1)

    def deny(self, key: bytes, rule: Rule, now: int) -> None:
        """Record a denial of *key*; too many strikes put it in the penalty box."""
        state = self._state(key)
        event = DENY
        if rule.penalty_strikes and state[2] <= now:
            strike = (state[1] if state[1] > now else now) + rule.strike_interval
            if strike - now > rule.penalty_strikes * rule.strike_interval:
                state[1], state[2], event = now, now + rule.penalty_for, PENALTY
            else:
                state[1] = strike
        if self.sink is not None:
            self.sink(event, key, state[3], now, state[0], state[1], state[2], 0)

    def charge(self, key: bytes, cost: int, now: int) -> Decision:
        """Charge *cost* whatever the state (after the fact: CPU time spent); may run into debt.

        :returns: whether the key is still within its limit after the charge.
        """
        rule = self.rule_for(key)
        state = self._state(key)
        state[0] = min((state[0] if state[0] > now else now) + cost * rule.interval, TIME_MAX)
        if self.sink is not None:
            self.sink(CHARGE, key, state[3], now, state[0], state[1], state[2], cost)
        over = state[0] - now - rule.tolerance
        if over > 0:
            return Decision(False, over, 0, 0)
        return Decision(True, 0, (rule.tolerance - state[0] + now) // rule.interval, -1)

    def reset(self, key: bytes, now: int) -> bool:
        """Forget *key*'s state; whether it had any."""
        state = self.states.pop(key, None)
        if state is None:
            return False
        if self.sink is not None:
            # a reset record lives as long as the state it cancels (see logfile.replay)
            self.sink(
                RESET, key, state[3], now, max(state[0], state[1], state[2], now + 1), 0, 0, 0
            )
        return True

    def sweep(self, now: int, keys: Iterable[bytes] | None = None) -> int:
        """Drop every state that has expired (it equals no state), of *keys* (default:
        every key); how many."""
        states = self.states
        if keys is None:
            keys = list(states)
        dead = 0
        for key in keys:
            s = states.get(key)
            if s is not None and s[0] <= now and s[1] <= now and s[2] <= now:
                del states[key]
                dead += 1
        return dead

    def remaining(self, key: bytes, now: int) -> int:
        """Units *key* may spend now (0 while in the penalty box)."""
        rule = self.rule_for(key)
        state = self.states.get(key)
        if state is None:
            return rule.burst
        if state[2] > now:
            return 0
        return max(0, (rule.tolerance - max(state[0], now) + now) // rule.interval)
