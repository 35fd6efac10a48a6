#!/usr/bin/env python3
"""Figures of the replication protocol over the simulated network (virtual time).

One host writes 1 KB values at a fixed rate to a group of three; the others
lose a share of the datagrams, independently (at the receivers) or all
together (at the sender). For each case, over several seeds: how long after
the last write every cache equalled the writer's, the repairs per write, and
the NAKs the writer got. The times are the protocol's own (delays, retries,
heartbeats, pacing) on a network with 0.2 ms one-way delay; the real
daemon's figures, with its CPU cost, are in ``scripts/bench_replicator.py``.

    .venv/bin/python scripts/sim_replication.py [--quick]
"""

from __future__ import annotations

import argparse
import statistics

from sleigh.daemons.replicator.config import ReplicatorConfig
from sleigh.daemons.replicator.sim import LinkModel, Trial, convergence_trial

TARGET_MS = 100.0  # the target: converged within 100 ms of the last send at 20% loss


def _cases() -> list[tuple[str, LinkModel]]:
    return [
        ("no loss", LinkModel(jitter=0.0001)),
        ("5% at receivers", LinkModel(loss=0.05, jitter=0.0001)),
        ("20% at receivers", LinkModel(loss=0.2, jitter=0.0001)),
        ("20% at the sender", LinkModel(sender_loss=0.2, jitter=0.0001)),
        ("20% + 2% dup + 5% reorder", LinkModel(loss=0.2, duplicate=0.02, reorder=0.05)),
    ]


def _row(name: str, rate: float, trials: list[Trial]) -> tuple[str, float]:
    times = sorted(t.converged_after * 1000 for t in trials)
    p90 = times[min(len(times) - 1, int(0.9 * len(times)))]
    writes = sum(t.writes for t in trials)
    repairs = sum(t.repairs for t in trials) / writes
    naks = sum(t.naks for t in trials) / len(trials)
    gaps = sum(t.unrecoverable for t in trials)
    line = (
        f"{name:<28} {rate:>8,.0f} {statistics.median(times):>9.1f} {p90:>8.1f} {times[-1]:>8.1f}"
        f" {repairs:>9.3f} {naks:>7.1f} {gaps:>5}"
    )
    return line, times[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer seeds and writes (a smoke run)")
    args = parser.parse_args()
    seeds, writes = (2, 200) if args.quick else (20, 1000)
    config = ReplicatorConfig()
    print(f"3 hosts, 1 KB values, {writes} writes per run, {seeds} seeds per row (virtual time)")
    print(
        f"{'loss':<28} {'writes/s':>8} {'median ms':>9} {'p90 ms':>8} {'max ms':>8}"
        f" {'rep/write':>9} {'NAKs':>7} {'gaps':>5}"
    )
    worst_20 = 0.0
    for rate in (1_000.0, 10_000.0):
        for name, link in _cases():
            trials = [
                convergence_trial(config, link, seed=s, writes=writes, rate=rate)
                for s in range(seeds)
            ]
            line, worst = _row(name, rate, trials)
            print(line)
            if "20%" in name:
                worst_20 = max(worst_20, worst)
    met = "met" if worst_20 < TARGET_MS else "not met"
    print("targets:")
    print(
        f"  convergence under 20% loss within {TARGET_MS:.0f} ms of the last write: {met}"
        f" (worst {worst_20:.1f} ms, simulated)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
