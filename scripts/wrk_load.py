"""Load from ``wrk`` for the web benchmarks (``bench_web.py``, ``profile_web.py``).

:func:`wrk` runs ``wrk`` (one thread, :data:`CONNECTIONS` connections) through a
list of paths with a Lua script that reports its figures as JSON and counts how
often the list wrapped around; :class:`Run` adds what the servers' processes used
(CPU time per request, by process), runs again a run one process sat out, warms
pages up, and paces a run to a share of a peak rate.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from web_report import PACED_REACHED, PACED_SHARE, Result, lopsided
from webshop import BenchError, cpu_seconds, fetch, process_name

CONNECTIONS = 32
#: Trial runs, at most, that find a paced run's wait; a trial within this share of
#: the target rate ends the search.
PACED_TRIALS = 4
PACED_CLOSE = 0.03
#: Full paced runs at most, until one comes within ``PACED_REACHED`` of the target.
PACED_RUNS = 2
#: wrk runs of a row, at most, until its server processes share the work (``Run.balanced``).
LOPSIDED_TRIES = 3

_LUA = """
paths = {%(paths)s}
i = 0
repeats = 0
local n = #paths
local threads = {}
setup = function(thread) table.insert(threads, thread) end
request = function()
  i = i + 1
  if i > n then i = 1 end
  if i == 1 and wrapped then repeats = repeats + 1 end
  if i == n then wrapped = true end
  return wrk.format(nil, paths[i])
end
%(delay)s
done = function(summary, latency, requests)
  local rep = 0
  for _, t in ipairs(threads) do rep = rep + (t:get("repeats") or 0) end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %%d, "us": %%d, "p50": %%d, "p99": %%d, "errors": %%d, "repeats": %%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout, rep))
end
"""


def wrk(
    tmp: Path,
    base: str,
    paths: Sequence[str],
    seconds: float,
    *,
    delay_ms: float | None = None,
    connections: int = CONNECTIONS,
) -> Result:
    """``wrk`` against *base* cycling through *paths*, one thread, *connections*.

    :param delay_ms: each connection waits this long after a response before its
        next request (wrk's Lua ``delay``), for a paced run.
    """
    lua = tmp / "bench.lua"
    delay = "" if delay_ms is None else f"delay = function() return {delay_ms:.3f} end"
    lua.write_text(_LUA % {"paths": ",".join(json.dumps(p) for p in paths), "delay": delay})
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "5s"]
    done = subprocess.run(
        [*argv, "-s", str(lua), base], capture_output=True, text=True, timeout=seconds + 60
    )
    lua.unlink()
    found = re.search(r"^BENCH (\{.*\})$", done.stdout, re.M)
    if done.returncode != 0 or found is None:
        raise BenchError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    fig = json.loads(found.group(1))
    return Result(
        fig["requests"],
        fig["us"] / 1e6,
        fig["p50"] / 1000,
        fig["p99"] / 1000,
        fig["errors"],
        fig["repeats"],
    )


@dataclass
class Run:
    """What every measurement of one run shares; *servers*: the pids whose CPU time a
    row counts (the shop's rows count the daemons too)."""

    tmp: Path
    seconds: float
    quick: bool
    servers: list[int]

    def wrk(
        self, base: str, paths: Sequence[str], seconds: float, delay_ms: float | None = None
    ) -> Result:
        before = {pid: cpu_seconds([pid]) for pid in self.servers}
        result = wrk(self.tmp, base, paths, seconds, delay_ms=delay_ms)
        used = {pid: cpu_seconds([pid]) - was for pid, was in before.items()}
        per_request = 1e6 / result.requests if result.requests else 0.0
        result.cpu_us = sum(used.values()) * per_request
        names = [process_name(pid) for pid in used]
        for name, pid in zip(names, used, strict=True):
            if names.count(name) > 1:
                name = f"{name} {sum(1 for n in result.cpu_by if n.startswith(name)) + 1}"
            result.cpu_by[name] = used[pid] * per_request
        result.size = len(fetch(base + paths[0]))
        return result

    def measure(self, base: str, paths: Sequence[str], note: str = "") -> Result:
        result = self.balanced(base, paths, self.seconds)
        result.note = note + (result.note and f"; {result.note}")
        return result

    def balanced(self, base: str, paths: Sequence[str], seconds: float) -> Result:
        """A ``wrk`` run in which no server process sat idle while another served.

        The processes of a row share one listening socket, and whichever wakes first
        accepts a connection: now and then one process takes all of wrk's connections
        and the other serves nothing, and the row measures one process. Such a run is
        run again, up to ``LOPSIDED_TRIES`` times in all; the result's note says so."""
        for attempt in range(1, LOPSIDED_TRIES + 1):
            result = self.wrk(base, paths, seconds)
            if not lopsided(result) or attempt == LOPSIDED_TRIES:
                break
        if attempt > 1:
            result.note = f"{attempt - 1} lopsided run(s) run again"
        if lopsided(result):
            result.note += ("; " if result.note else "") + "LOPSIDED: one process served little"
        return result

    def warm(self, base: str, paths: Sequence[str]) -> None:
        """Fill the cache with *paths* (and the connections and the code paths)."""
        for path in paths:
            fetch(base + path)
        if not self.quick:
            wrk(self.tmp, base, paths, 1)

    def paced(self, base: str, paths: Sequence[str], peak: float) -> Result:
        """*paths* at about ``PACED_SHARE`` of *peak* req/s: each connection waits
        between a response and its next request.

        A connection's cycle is its wait plus its response time plus wrk's own
        turn, and the response time grows with the rate, so the wait is found by
        trial: short runs, each taking the cycle it fell short by (or went over by)
        off the wait (or onto it), until one lands within ``PACED_CLOSE`` of the
        target (at most ``PACED_TRIALS``). The machine drifts: a full run that misses
        the target by more than ``PACED_REACHED`` allows is corrected and run again
        (``PACED_RUNS`` in all)."""
        target = PACED_SHARE * peak
        delay, trials = CONNECTIONS * 1000 / target, 0
        while not self.quick and trials < PACED_TRIALS:
            trials += 1
            trial = wrk(self.tmp, base, paths, max(2, self.seconds / 3), delay_ms=delay)
            if not trial.rps or abs(trial.rps / target - 1) <= PACED_CLOSE:
                break
            delay = _corrected(delay, target, trial.rps)
        for runs in range(1, PACED_RUNS + 1):
            result = self.wrk(base, paths, self.seconds, delay_ms=delay)
            if self.quick or not result.rps or result.rps >= PACED_REACHED * target:
                break
            if runs < PACED_RUNS:
                delay = _corrected(delay, target, result.rps)
        result.note = (
            f"{result.rps / peak:.0%} of the warm peak (target {PACED_SHARE:.0%}:"
            f" {target:,.0f} req/s; delay {delay:.2f} ms after {trials} trial run(s)"
            f"{f' and {runs} full runs' if runs > 1 else ''})"
        )
        return result


def _corrected(delay_ms: float, target: float, got: float) -> float:
    """The wait after each response that moves a paced run at *got* req/s to *target*:
    the wait, less the cycle it missed by (a connection's cycle is ``CONNECTIONS`` over
    the rate)."""
    return max(0.0, delay_ms + CONNECTIONS * 1000 / target - CONNECTIONS * 1000 / got)
