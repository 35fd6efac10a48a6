"""How ``bench_cache.py`` prints its rows and its targets (met or not)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cache_workload import WRITE_RATE


@dataclass
class Row:
    label: str
    ops: float
    ns: float | None
    p50: float
    p99: float
    p999: float | None
    ratio: str


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def print_table(rows: list[Row]) -> None:
    print(
        f"{'row':<46} {'ops/s':>10} {'ns/op':>8} {'p50 µs':>9} {'p99 µs':>9} {'p99.9 µs':>9}  ratio"
    )
    for r in rows:
        print(
            f"{r.label:<46} {r.ops:>10,.0f} {_num(r.ns, ',.0f'):>8} {r.p50:>9.1f} "
            f"{r.p99:>9.1f} {_num(r.p999, '.1f'):>9}  {r.ratio}"
        )


def row_from(label: str, m: dict[str, float], ratio: str) -> Row:
    """A client row from its measured figures *m*."""
    return Row(label, m["ops"], m["ns"], m["p50"], m["p99"], m["p999"], ratio)


def benchmark_row(label: str, fig: tuple[float, float, float], ratio: str) -> Row:
    return Row(f"redis-benchmark {label}", fig[0], None, fig[1], fig[2], None, ratio)


def benchmark_rows(rb: dict[tuple[str, str, int], Any]) -> list[Row]:
    """The redis-benchmark rows, sleigh beside Redis, plain and pipelined."""
    rows = []
    for p in (1, 32):
        mode = "" if p == 1 else " -P 32"
        for test in ("GET", "SET"):
            s, r = rb["sleigh", test, p], rb["Redis", test, p]
            rows.append(benchmark_row(f"{test} sleigh{mode}", s, f"{s[0] / r[0]:.2f}x Redis"))
            rows.append(benchmark_row(f"{test} Redis{mode}", r, "reference"))
        f, s = rb["sleigh sync=full", "SET", p], rb["sleigh", "SET", p]
        rows.append(
            benchmark_row(f"SET sleigh sync=full{mode}", f, f"{f[0] / s[0]:.2f}x sync=none")
        )
    return rows


def print_targets(m: dict[str, Any], rb: dict[tuple[str, str, int], Any]) -> None:
    writer = m["writer"]["rate"]
    checks = [
        ("direct read / raw py-lmdb get (ops/s)", m["direct"]["ops"] / m["raw"]["ops"], 0.5, "x"),
        ("direct read / Redis GET via redis-py", m["direct"]["ops"] / m["redis"]["ops"], 20, "x"),
    ]
    for p in (1, 32):
        for test in ("GET", "SET"):
            ratio = rb["sleigh", test, p][0] / rb["Redis", test, p][0]
            checks.append(
                (f"redis-benchmark {test}{' -P 32' if p > 1 else ''} sleigh/Redis", ratio, 0.5, "x")
            )
    print("\ntargets")
    for name, value, floor, unit in checks:
        verdict = "MET" if value >= floor else "NOT MET"
        print(f"  {name:<44} {value:>8.2f}{unit}  >= {floor}{unit}  {verdict}")
    p99 = m["loaded"]["p99"]
    note = "" if writer >= 0.95 * WRITE_RATE else f" (writer reached only {writer:,.0f} sets/s)"
    print(
        f"  {'p99 direct read under 10k sets/s':<44} {p99:>7.1f}µs  < 10µs  "
        f"{'MET' if p99 < 10 and not note else 'NOT MET'}{note}"
    )
