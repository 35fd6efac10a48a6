"""The rows of ``scripts/bench_web.py`` and how they are reported.

A row is one ``wrk`` run (:class:`Result`), named by one of the ``ROW_*``
labels. This module prints the table (req/s, latency, the ratio to the bare
page on as many processes, CPU time per request by process), the rounds in
which the warm and the bare product page were measured in turn, the issue's
targets (met or not), and what the whole machine did during the run.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from machine import cpu_clock

ROW_WARM2 = "product page, warm cache, 2 workers"
ROW_COLD2 = "product page, cold cache, 2 workers"
ROW_CAT2 = "category page with facets, 2 workers"
ROW_SEARCH2 = "search page, 2 workers"
ROW_PACED = "product page, warm, 2 workers, paced"
ROW_WARM1 = "product page, warm cache, 1 worker"
ROW_FRONT = "product page kept by nginx (front tier)"
ROW_BARE2 = "bare Mako product page, 2 processes"
ROW_BARE1 = "bare Mako product page, 1 process"
ROW_LIST2 = "bare Mako list page, 2 processes"
ROW_NGINX = "nginx static 20 KB file, 2 workers"

#: A paced run's rate, as a share of the peak; its p99 is judged only if the run came
#: within ``PACED_REACHED`` of that rate (a run paced to 60% says nothing of 70%).
PACED_SHARE = 0.7
PACED_REACHED = 0.95

#: Processes of one kind serving one row are lopsided when one did less than this share.
LOPSIDED_SHARE = 0.2


@dataclass
class Result:
    """One ``wrk`` run."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    repeats: int
    size: int = 0
    note: str = ""
    cpu_us: float = 0.0
    #: CPU time per request by process (``web 1``, ``sleigh-throttle``...), microseconds.
    cpu_by: dict[str, float] = field(default_factory=dict)

    @property
    def capacity(self) -> float:
        """Requests a second the servers' CPU time per request allows on every core here."""
        return (os.cpu_count() or 1) * 1e6 / self.cpu_us if self.cpu_us else 0.0

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


ORDER = (
    ROW_WARM2,
    ROW_COLD2,
    ROW_CAT2,
    ROW_SEARCH2,
    ROW_PACED,
    ROW_WARM1,
    ROW_FRONT,
    ROW_BARE2,
    ROW_BARE1,
    ROW_LIST2,
    ROW_NGINX,
)


def ratio(a: Result | None, b: Result | None) -> float | None:
    return a.rps / b.rps if a is not None and b is not None and b.rps else None


def print_cpu_by(rows: dict[str, Result], labels: Sequence[str]) -> None:
    """Each of *labels*' CPU time per request, by process (from /proc, in clock ticks)."""
    for label in labels:
        row = rows.get(label)
        if row is not None and row.cpu_by:
            parts = ", ".join(f"{name} {us:,.0f}" for name, us in row.cpu_by.items())
            print(f"  CPU µs a request by process, {label}: {parts}")


def print_table(rows: dict[str, Result]) -> None:
    """One line a row. ``vs bare``: req/s over the bare Mako page on as many processes;
    ``CPU µs``: the servers' CPU time per request (the shop's rows include the daemons),
    which other load on the machine does not change the way it changes req/s."""
    print(
        f"\n{'row':<40} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'KB':>5} {'vs bare':>7}"
        f" {'CPU µs':>7}  note"
    )
    for label in ORDER:
        r = rows.get(label)
        if r is None:
            continue
        bare = rows.get(ROW_BARE1 if label.endswith(("1 worker", "1 process")) else ROW_BARE2)
        x = ratio(r, bare)
        vs = f"{x:.2f}x" if x is not None else "-"
        extra = f"; {r.errors} errors" if r.errors else ""
        if label == ROW_COLD2:
            extra += f"; ids repeated {r.repeats} times" if r.repeats else "; no id repeated"
        print(
            f"{label:<40} {r.rps:>8,.0f} {r.p50_ms:>7.2f} {r.p99_ms:>7.2f} {r.size / 1024:>5.1f}"
            f" {vs:>7} {r.cpu_us:>7,.0f}  {r.note}{extra}"
        )


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("MET" if ok else "NOT MET")


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def in_turn_ratio(rounds: Sequence[tuple[Result, Result]]) -> float | None:
    """The median over *rounds* of warm req/s over bare req/s."""
    ratios = [x for x in (ratio(warm, bare) for warm, bare in rounds) if x is not None]
    return statistics.median(ratios) if ratios else None


def targets(
    rows: dict[str, Result], rounds: Sequence[tuple[Result, Result]] = ()
) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met) for each target of the storefront issue; the ratio to the
    bare page is the median of *rounds* when there are any (else the table's rows)."""
    warm, cold, paced = rows.get(ROW_WARM2), rows.get(ROW_COLD2), rows.get(ROW_PACED)
    vs_cold = ratio(warm, cold)
    vs_bare = in_turn_ratio(rounds) if rounds else ratio(warm, rows.get(ROW_BARE2))
    shown = _x(vs_bare) + (f", median of {len(rounds)} in turn" if rounds else "")
    bad = [label for label, r in rows.items() if r.errors]
    return [
        (
            "warm product page / bare product page, 2 procs >= 0.7",
            shown,
            None if vs_bare is None else vs_bare >= 0.7,
        ),
        (
            "warm product page, 2 workers >= 4,000 req/s",
            "-" if warm is None else f"{warm.rps:,.0f} req/s",
            None if warm is None else warm.rps >= 4000,
        ),
        ("warm / cold product page >= 5", _x(vs_cold), None if vs_cold is None else vs_cold >= 5),
        _paced_target(paced, warm),
        ("every answer 2xx/3xx, no socket errors", ", ".join(bad) or "none failed", not bad),
    ]


def _paced_target(paced: Result | None, warm: Result | None) -> tuple[str, str, bool | None]:
    """The p99 target, judged only for a paced run that reached its rate."""
    name = f"p99 at {PACED_SHARE:.0%} of the warm peak < 20 ms"
    if paced is None or warm is None or not warm.rps:
        return name, "-", None
    share = paced.rps / warm.rps
    shown = f"{paced.p99_ms:.2f} ms at {paced.rps:,.0f} req/s ({share:.0%} of the peak)"
    if share < PACED_REACHED * PACED_SHARE:
        return name, shown + f": short of {PACED_SHARE:.0%}, so no p99 at it", False
    return name, shown, paced.p99_ms < 20


def lopsided(result: Result) -> bool:
    """Whether one of *result*'s server processes of one kind (``web 1``, ``web 2``...)
    did less than ``LOPSIDED_SHARE`` of their work, by CPU time."""
    kinds: dict[str, list[float]] = {}
    for name, us in result.cpu_by.items():
        head, _, number = name.rpartition(" ")
        if head and number.isdigit():
            kinds.setdefault(head, []).append(us)
    return any(
        len(cpu) > 1 and sum(cpu) > 0 and min(cpu) < LOPSIDED_SHARE * sum(cpu)
        for cpu in kinds.values()
    )


def print_rounds(rounds: Sequence[tuple[Result, Result]]) -> None:
    """Each round of the warm and the bare product page measured in turn."""
    if not rounds:
        return
    seconds = rounds[0][0].seconds
    print(
        "\nwarm product page and bare product page, 2 processes each, measured in turn"
        f" ({seconds:.0f} s each)"
    )
    for n, (warm, bare) in enumerate(rounds, start=1):
        sides = (("warm", warm), ("bare", bare))
        notes = "".join(f"; {side}: {r.note}" for side, r in sides if r.note)
        print(
            f"  round {n}: warm {warm.rps:>7,.0f} req/s ({warm.cpu_us:,.0f} µs CPU), bare"
            f" {bare.rps:>7,.0f} req/s ({bare.cpu_us:,.0f} µs CPU): {_x(ratio(warm, bare))}" + notes
        )


def print_targets(rows: dict[str, Result], rounds: Sequence[tuple[Result, Result]] = ()) -> None:
    print("\ntargets (measured req/s, on this machine as loaded during the run)")
    for label, value, ok in targets(rows, rounds):
        print(f"  {label:<56} {value:<28} {verdict(ok)}")
    warm, bare, listed = rows.get(ROW_WARM2), rows.get(ROW_BARE2), rows.get(ROW_LIST2)
    if warm and bare and warm.cpu_us and bare.cpu_us:
        print(
            f"  by CPU time per request: warm product page {warm.cpu_us:,.0f} µs, bare product"
            f" page {bare.cpu_us:,.0f} µs ({bare.cpu_us / warm.cpu_us:.2f}x); with every core"
            f" here to itself the shop would serve at most {warm.capacity:,.0f} req/s"
            " (an upper bound, not a measurement: wrk needs CPU too)"
        )
    if warm and listed and warm.cpu_us and listed.cpu_us:
        print(
            f"  against the minimal list page of the same size: {_x(ratio(warm, listed))} by"
            f" req/s, {listed.cpu_us / warm.cpu_us:.2f}x by CPU time ({listed.cpu_us:,.0f} µs)"
        )


def print_machine(start: tuple[float, float, float]) -> None:
    wall, busy, ours = (b - a for a, b in zip(start, cpu_clock(), strict=True))
    cores = os.cpu_count() or 1
    print(
        f"\nduring the run ({wall:.0f} s): the machine's {cores} cores were busy"
        f" {busy / wall:.2f} cores on average; this run's processes used {ours / wall:.2f},"
        f" others {max(0.0, busy - ours) / wall:.2f}"
    )
