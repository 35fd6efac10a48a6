"""Profile a web worker serving the warm product page under ``wrk``, by component.

The shop is started as ``scripts/bench_web.py`` starts it (the demo catalog in
SQLite, ``sleigh-cached`` at nice -5, ``sleigh-throttled`` at -10, ``sleigh-searchd``,
two ``sleigh-web`` workers on one socket); the hot product pages are warmed,
then ``wrk`` keeps both workers busy while ``py-spy`` samples the first one
(native frames included). Printed: the share of the samples by component
(the innermost of: aiohttp, the access log, each middleware, the controller,
the product model, the object cache, the database, the template), the top frames
by their own samples, and the top Python functions including what they call.

py-spy samples a thread that is running or waiting for a core; a thread
preempted as a system call returns is seen in that call (``clock_gettime``
under ``Throttle._overlapped`` is mostly that), so a share is of the
worker's time on or waiting for a core, not of its CPU time alone. With
``--pinned``, one worker runs alone on the first core and every other process
(the daemons, ``wrk``, this script) on the others: its samples are then
nearly all of its CPU time, the way to see where that time goes.

Needs ``wrk`` (Debian package) and ``py-spy`` (``pip install py-spy``, in the
``test`` extra), and the right to trace the worker (root, or ptrace allowed).
Every process is stopped by PID and the temporary directory removed. Run:

    .venv/bin/python scripts/profile_web.py [--seconds S] [--products N] [--cold | --path P]
        [--pinned] [--postgres [URL]]
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_web import HOT_PRODUCTS
from webshop import (
    BenchError,
    Processes,
    add_postgres_option,
    database_label,
    fetch,
    in_scratch,
    load_catalog,
    scratch_database,
    start_daemons,
    start_web,
)
from wrk_load import CONNECTIONS

from sleigh.daemons.runtime.sockets import bind_tcp

#: Seconds of load before py-spy starts sampling.
WARM_UP = 1.5
#: (component, patterns of a frame): a sample belongs to the innermost frame that
#: matches one; one that matches none is the event loop's.
COMPONENTS: list[tuple[str, tuple[str, ...]]] = [
    (
        "aiohttp: parse, dispatch",
        ("RequestHandler.data_received", "RequestHandler.start", "Application._handle"),
    ),
    ("aiohttp: write the response", ("RequestHandler.finish_response",)),
    ("access log", ("RequestHandler.log_access",)),
    ("middleware: metrics", ("Requests.middleware",)),
    ("middleware: request id", ("request_id (",)),
    ("middleware: errors", ("errors (",)),
    ("middleware: navigation", ("Navigation.middleware",)),
    ("middleware: freshness", ("freshness (",)),
    ("middleware: sessions", ("sessions.<locals>.middleware",)),
    ("middleware: throttle", ("Throttle.", "throttle_keys.py", "throttle/aclient.py")),
    ("controller and view glue", ("controllers/catalog.py", "Views.render (")),
    ("model: catalog", ("Catalog.",)),
    (
        "object cache, reads and writes",
        ("get_many_shared", "get_many_decoded", "AsyncCacheClient."),
    ),
    ("database", ("greenlet_spawn", "aiosqlite", "Through._load_missing")),
    ("template render", ("Views.render_text",)),
]
_SAMPLE = re.compile(r"^(.*) (\d+)$")


def samples(raw: str) -> Iterable[tuple[list[str], int]]:
    """(frames from the outermost, count) of py-spy's ``--format raw`` output; a frame
    may hold a newline (a template's source line), so lines are joined until a count."""
    pending = ""
    for line in raw.splitlines():
        pending = f"{pending} {line}" if pending else line
        found = _SAMPLE.match(pending)
        if found:
            yield found.group(1).split(";"), int(found.group(2))
            pending = ""


def component(frames: Sequence[str]) -> str:
    found = "event loop, other"
    for frame in frames:
        for name, patterns in COMPONENTS:
            if any(p in frame for p in patterns):
                found = name
    return found


def function(frame: str) -> str:
    """``name (file.py)`` of a Python frame, without the line; native frames as they are."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.split(':')[0].rsplit('/', 1)[-1]})" if ".py:" in where else frame


def report(raw: str, top: int) -> None:
    by_component: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    within: collections.Counter[str] = collections.Counter()
    total = 0
    for frames, count in samples(raw):
        if not any("Runner.run" in f for f in frames):
            continue  # another thread of the worker
        total += count
        by_component[component(frames)] += count
        own[frames[-1]] += count
        for name in {function(f) for f in frames if ".py:" in f}:
            within[name] += count
    if not total:
        raise BenchError("py-spy recorded no sample of the worker's event loop")
    print(f"\n{total:,} samples of the worker's event loop thread")
    print("\nby component (innermost)")
    for name, count in by_component.most_common():
        print(f"  {100 * count / total:5.1f}%  {name}")
    print(f"\ntop {top} frames by their own samples")
    for frame, count in own.most_common(top):
        print(f"  {100 * count / total:5.1f}%  {frame[:110]}")
    print(f"\ntop {top} Python functions, with what they call")
    for name, count in within.most_common(top + 8)[8:]:  # the first are the loop's frames
        print(f"  {100 * count / total:5.1f}%  {name[:110]}")


def profile(args: argparse.Namespace, tmp: Path, procs: Processes, database_url: str) -> str:
    home = tmp / "home"
    ids = load_catalog(home, database_url, args.products)
    daemons = start_daemons(procs, home)
    sock = bind_tcp("127.0.0.1", 0)
    try:
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        web = start_web(procs, home, sock, 1 if args.pinned else 2)
        others = set(range(1, os.cpu_count() or 1))
        if args.pinned:
            if not others:
                raise BenchError("--pinned needs at least two cores")
            os.sched_setaffinity(web[0].pid, {0})
            for pid in [*daemons, os.getpid()]:
                os.sched_setaffinity(pid, others)
        hot = [f"/p/{i}" for i in ids[:HOT_PRODUCTS]]
        for path in hot:
            fetch(base + path)
        if args.cold:  # product ids no request has named, from the end of the catalog
            hot = [f"/p/{i}" for i in reversed(ids[HOT_PRODUCTS:])]
        elif args.path:
            hot = args.path
            for path in hot:
                fetch(base + path)
        load = subprocess.Popen(
            ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{round(args.seconds + WARM_UP) + 3}s",
             "-s", str(_paths_script(tmp, hot)), base],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        if args.pinned:
            os.sched_setaffinity(load.pid, others)
        try:
            return record(args, tmp, web[0].pid)
        finally:
            load.terminate()
            load.wait(timeout=30)
    finally:
        sock.close()


def record(args: argparse.Namespace, tmp: Path, pid: int) -> str:
    """py-spy's samples (raw format) of process *pid*, once the load has run ``WARM_UP``
    seconds: the database pool grows to what 32 connections need (a thread and a
    connection each) before, not during, the samples."""
    time.sleep(WARM_UP)
    out = tmp / "worker.raw"
    spy = subprocess.run(
        [py_spy() or "py-spy", "record", "--pid", str(pid), "--duration",
         str(round(args.seconds)), "--rate", str(args.rate), "--native",
         "--format", "raw", "--output", str(out)],
        capture_output=True, text=True, timeout=args.seconds + 60,
    )  # fmt: skip
    if spy.returncode != 0 or not out.exists():
        raise BenchError(f"py-spy failed ({spy.returncode}): {spy.stderr.strip()[-800:]}")
    return out.read_text(errors="replace")


def _paths_script(tmp: Path, paths: list[str]) -> Path:
    script = tmp / "paths.lua"
    quoted = ",".join(f'"{p}"' for p in paths)
    script.write_text(
        f"paths = {{{quoted}}}\ni = 0\n"
        "request = function()\n  i = i % #paths + 1\n  return wrk.format(nil, paths[i])\nend\n"
    )
    return script


def py_spy() -> str | None:
    """py-spy on PATH, else beside this Python (a virtualenv not activated)."""
    beside = Path(sys.executable).parent / "py-spy"
    return shutil.which("py-spy") or (str(beside) if beside.exists() else None)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="how long py-spy samples")
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples a second")
    parser.add_argument("--products", type=int, default=20_000, help="demo catalog size")
    parser.add_argument("--top", type=int, default=15, help="frames and functions listed")
    parser.add_argument(
        "--cold", action="store_true", help="product pages no request named before (database)"
    )
    parser.add_argument(
        "--path",
        action="append",
        metavar="PATH",
        help="profile this page (e.g. /c/toys, /search?q=wooden; repeat for several, in"
        " turn) instead of the warm product pages",
    )
    parser.add_argument(
        "--pinned",
        action="store_true",
        help="one worker alone on the first core, everything else on the others",
    )
    add_postgres_option(parser)
    parser.add_argument(
        "--raw",
        type=Path,
        metavar="FILE",
        help="also write py-spy's samples (its raw format: whole stacks) to FILE",
    )
    args = parser.parse_args(argv)
    if args.cold and args.path:
        parser.error("--cold profiles product pages: give --cold or --path, not both")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    found = {"wrk": shutil.which("wrk"), "py-spy": py_spy()}
    missing = [tool for tool, path in found.items() if not path]
    if missing:
        print(
            f"profile_web: missing {' and '.join(missing)}; install them with"
            " `apt-get install wrk` and `pip install py-spy`",
            file=sys.stderr,
        )
        return 2

    def body(tmp: Path, procs: Processes) -> None:
        with scratch_database(args.postgres) as url:
            raw = profile(args, tmp, procs, url)
            procs.stop_all()
        pinned = ", one worker pinned to a core of its own" if args.pinned else ""
        page = "cold product" if args.cold else "warm product" if not args.path else ""
        pages = f"the {page} page" if page else ", ".join(args.path)
        where = database_label(args.postgres)
        print(
            f"profile_web: {pages} ({where}), {args.seconds:g} s at {args.rate} samples/s" + pinned
        )
        report(raw, args.top)
        if args.raw is not None:
            args.raw.write_text(raw)
            print(f"py-spy's samples, whole stacks: {args.raw}")

    return in_scratch("profile_web", body)


if __name__ == "__main__":
    sys.exit(main())
