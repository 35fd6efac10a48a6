"""What the machine is doing around a benchmark: its cores' condition before and after
(``bench_cache.py`` prints it), and the CPU time of the machine and of the run
between two moments (``bench_cache.py``, ``bench_web.py``). The machines are shared and
noisy; these lines say how much."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path


def _cpu_ticks() -> tuple[int, int, int]:
    """All, idle (with iowait) and stolen ticks of every CPU (guest time is inside user)."""
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:9]]
    return sum(f), f[3] + f[4], f[7]


def _proc_ticks() -> dict[int, tuple[str, int]]:
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = (entry / "stat").read_text()
                rest = stat[stat.rindex(")") + 2 :].split()
                out[int(entry.name)] = (
                    stat[stat.index("(") + 1 : stat.rindex(")")],
                    int(rest[11]) + int(rest[12]),
                )
    return out


def condition(interval: float = 1.0) -> str:
    """Cores, load and an *interval*-second sample of what keeps them busy."""
    (total0, idle0, steal0), procs0 = _cpu_ticks(), _proc_ticks()
    time.sleep(interval)
    (total1, idle1, steal1), procs1 = _cpu_ticks(), _proc_ticks()
    cores = os.cpu_count() or 1
    span = max(1, total1 - total0) / cores  # ticks per core in the window
    busy = total1 - total0 - (idle1 - idle0) - (steal1 - steal0)
    used = {
        f"{name}[{pid}]": ticks - procs0.get(pid, (name, 0))[1]
        for pid, (name, ticks) in procs1.items()
    }
    top = sorted(((d, label) for label, d in used.items() if d > 0), reverse=True)[:4]
    who = ", ".join(f"{label} {100 * d / span:.0f}%" for d, label in top) or "none"
    gone = max(0, busy - sum(d for d in used.values() if d > 0))
    stolen = 100 * (steal1 - steal0) / span
    load1, load5, _ = os.getloadavg()
    return (
        f"{cores} cores, load {load1:.2f}/{load5:.2f}; over {interval:.0f} s busy"
        f" {100 * busy / span:.0f}% of {100 * cores}%, stolen {stolen:.0f}%; top: {who};"
        f" processes that ended, or the kernel: {100 * gone / span:.0f}% (% of one core)"
    )


def cpu_clock() -> tuple[float, float, float]:
    """Wall seconds, busy CPU-seconds of the machine, CPU-seconds of this process and its
    reaped children."""
    total, idle, steal = _cpu_ticks()
    t = os.times()
    ours = t.user + t.system + t.children_user + t.children_system
    return time.monotonic(), (total - idle - steal) / os.sysconf("SC_CLK_TCK"), ours


def during(start: tuple[float, float, float]) -> str:
    """What else ran while the benchmark did, from *start* (:func:`cpu_clock`) to now."""
    wall, busy, ours = (b - a for a, b in zip(start, cpu_clock(), strict=True))
    others = max(0.0, busy - ours)
    return (
        f"during the run ({wall:.0f} s wall): this benchmark used {ours:.0f} CPU-s,"
        f" everything else {others:.0f} CPU-s (on average {100 * others / wall:.0f}% of one core)"
    )
