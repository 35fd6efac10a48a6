"""The storefront under ``wrk`` on loopback, beside its yardsticks, in one run.

One temporary home gets the demo catalog (``--products``; in SQLite, or with
``--postgres`` in a throw-away database on a PostgreSQL server, dropped after the
run) and its search index (as ``sleigh up`` builds it); one ``sleigh-cached``, one
``sleigh-throttled`` and one ``sleigh-searchd`` serve it, and ``sleigh-web``
workers share one listening socket handed over as ``LISTEN_FDS`` (as
``sleigh up`` does). Rows:

1. the product page through the whole stack (every middleware the app has:
   request id, errors, freshness, sessions, security headers, access log;
   the object cache; the template), warm cache, 2 workers and 1;
2. the product page from a cold cache: every request names a product that no
   request of this run named before, so its parts (info, price, description,
   stock) miss the cache and load from the database, then are written back;
   the category tree and the related products' cards stay as warm as they get;
3. a category page with its facets (brand, price, age, stock counts from
   ``sleigh-searchd``), warm: the page as it comes, sorted by price, and
   narrowed by a price band and by stock; then the search page for a few
   words of popular products' titles, with the same facets;
4. the warm product page paced at 70% of row 1's peak, for its p99 (these two
   rows say what share of their throttle decisions ``sleigh-throttled`` made:
   an answer later than ``throttle.timeout`` is decided in process);
5. yardsticks: bare aiohttp + uvloop + Mako pages with no data access, on one
   socket too: the shop's own product page (``product.mako`` and the templates
   it includes, with the data its controller gives it for the same hot
   products, read from the database once at start and held in memory; no
   middleware, session, throttle, cache, access log or caching headers), on 2
   processes and 1; a minimal template of the same size (a list of links) on
   2 (both served by ``yardstick_pages.py``); and nginx serving a static 20 KB
   file. The shop's processes are started by ``webshop.py``, shared with
   ``profile_web.py``, the yardsticks by ``yardsticks.py``;
6. the product page kept by nginx in front of the shop, as ``sleigh nginx config``
   sets the front tier up (each page kept after its first request, renewed from
   the shop when its max-age runs out);
7. the warm product page and the bare product page (2 processes each, both
   running) measured in turn, five rounds of 40% of a row's time each, the
   side measured first alternating: the ratio the target names is the median
   of the rounds, since the machine drifts between rows a minute apart (the
   table's rows gave 0.75x in one run and 0.49-0.50x in others).

The load comes from ``wrk_load.py`` and the rows are printed by ``web_report.py``.
Every process is stopped by PID and the temporary directory removed. Needs ``wrk``
and ``nginx`` (Debian packages ``wrk`` and ``nginx-light``); it installs nothing. Run:

    .venv/bin/python scripts/bench_web.py [--products N] [--seconds S] [--quick]
        [--postgres [URL]]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from machine import cpu_clock
from web_report import (
    PACED_REACHED,
    ROW_BARE1,
    ROW_BARE2,
    ROW_CAT2,
    ROW_COLD2,
    ROW_FRONT,
    ROW_LIST2,
    ROW_NGINX,
    ROW_PACED,
    ROW_SEARCH2,
    ROW_WARM1,
    ROW_WARM2,
    Result,
    print_cpu_by,
    print_machine,
    print_rounds,
    print_table,
    print_targets,
)
from webshop import (
    BenchError,
    Processes,
    add_postgres_option,
    database_label,
    fetch,
    in_scratch,
    load_catalog,
    query,
    scratch_database,
    start_daemons,
    start_web,
)
from wrk_load import CONNECTIONS, Run
from yardsticks import nginx_path, start_bare, start_front, start_nginx

from sleigh.daemons.runtime.sockets import bind_tcp

HOT_PRODUCTS = 100
#: Rounds of the warm and the bare product page measured in turn (the ratio's target figure),
#: and each side's share of a row's time in a round.
ROUNDS = 5
ROUND_SHARE = 0.4
TOOLS = {"wrk": "wrk", "nginx": "nginx-light (or nginx)"}


# -- processes ---------------------------------------------------------------------


def throttle_decisions(base: str, workers: int) -> dict[str, float]:
    """Throttle decisions so far by where they were made (``daemon``, ``fallback``), summed
    over the workers: ``/metrics`` speaks for the worker that answers (``sleigh_web_pid``),
    so it is asked until every worker has answered."""
    seen: dict[str, dict[str, float]] = {}
    for _ in range(20 * workers):
        text = fetch(base + "/metrics").decode()
        pid = re.search(r"^sleigh_web_pid (\S+)$", text, re.M)
        counts: dict[str, float] = {}
        for source, value in _DECISION.findall(text):
            counts[source] = counts.get(source, 0.0) + float(value)
        seen[pid.group(1) if pid else "?"] = counts
        if len(seen) >= workers:
            break
    total: dict[str, float] = {}
    for counts in seen.values():
        for source, value in counts.items():
            total[source] = total.get(source, 0.0) + value
    return total


_DECISION = re.compile(r'^sleigh_throttle_decisions_total\{[^}]*source="(\w+)"[^}]*\} (\S+)$', re.M)


def by_daemon(before: dict[str, float], after: dict[str, float]) -> str:
    """The share of a row's throttle decisions the daemon made (the rest: in process)."""
    made = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
    total = sum(made.values())
    return f"; throttle: {made.get('daemon', 0.0) / total:.1%} by the daemon" if total else ""


# -- the run -----------------------------------------------------------------------


def search_paths(home: Path, database_url: str, count: int) -> list[str]:
    """``/search?q=word`` for a title word of each of the *count* most popular products."""
    sql = f"SELECT title FROM products ORDER BY popularity DESC LIMIT {int(count)}"
    titles = query(home, database_url, sql)
    words = [next(w for w in t.lower().split() if len(w) > 3) for (t,) in titles]
    return [f"/search?q={word}" for word in dict.fromkeys(words)]


def listing_paths(
    base: str, category: str, home: Path, database_url: str
) -> tuple[list[str], list[str]]:
    """The category page's variants and the search pages; both must show counted facets."""
    variants = ["", "?sort=price_asc", "?price=10-25", "?in_stock=1"]
    pages = [category + v for v in variants], search_paths(home, database_url, 4)
    for path in (*pages[0], *pages[1]):
        if b'id="facet-in_stock"' not in fetch(base + path):
            raise BenchError(f"{path} shows no facets: sleigh-searchd did not answer")
    return pages


def pick_category(base: str) -> str:
    """A sub-category's path from the home page's links (a section if there is none)."""
    links: list[str] = re.findall(r'href="(/c/[a-z0-9/-]+)"', fetch(base + "/").decode())
    if not links:
        raise BenchError("the home page links to no category")
    return next((link for link in links if link.count("/") > 2), links[0])


def bench_shop(
    run: Run,
    procs: Processes,
    shop: tuple[Path, str],
    ids: list[int],
    rounds: list[tuple[Result, Result]],
) -> dict[str, Result]:
    """The shop's rows: cold first (the cache is empty), then warm, then one worker; the
    rounds of the warm and the bare product page measured in turn go to *rounds*.
    *shop*: its home and its database's URL (empty: SQLite in the home)."""
    home = shop[0]
    sock = bind_tcp("127.0.0.1", 0)
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    cached = list(run.servers)  # sleigh-cached, sleigh-throttled and sleigh-searchd
    out: dict[str, Result] = {}
    try:
        hot = [f"/p/{i}" for i in ids[: 10 if run.quick else HOT_PRODUCTS]]
        cold = [f"/p/{i}" for i in reversed(ids[HOT_PRODUCTS:])]
        web = start_web(procs, home, sock, 2)
        run.servers = cached + [p.pid for p in web]
        out[ROW_COLD2] = run.measure(base, cold, f"{len(cold):,} product ids, each once")
        category = pick_category(base)
        run.warm(base, [*hot, category])
        decided = throttle_decisions(base, 2)
        out[ROW_WARM2] = run.measure(base, hot, f"{len(hot)} hot products")
        _note_throttle(out[ROW_WARM2], base, decided)
        browse, search = listing_paths(base, category, *shop)
        run.warm(base, [*browse, *search])
        out[ROW_CAT2] = run.measure(base, browse, f"{category}: as is, sorted, 2 filters")
        out[ROW_SEARCH2] = run.measure(base, search, f"{len(search)} words, facets counted")
        decided = throttle_decisions(base, 2)
        out[ROW_PACED] = run.paced(base, hot, out[ROW_WARM2].rps)
        _note_throttle(out[ROW_PACED], base, decided)
        rounds.extend(in_turn(run, procs, bare_product(*shop, ids[: len(hot)]), base, hot))
        out[ROW_FRONT] = bench_front(run, procs, home, base, hot)
        for proc in web:
            procs.stop(proc)
        web = start_web(procs, home, sock, 1)
        run.servers = cached + [p.pid for p in web]
        run.warm(base, hot)
        out[ROW_WARM1] = run.measure(base, hot, f"{len(hot)} hot products")
        for proc in web:
            procs.stop(proc)
    finally:
        sock.close()
    return out


def bench_front(run: Run, procs: Processes, home: Path, base: str, paths: list[str]) -> Result:
    """The product pages through nginx as ``sleigh nginx config`` sets it up, in front
    of the shop at *base* (running): after one request each, every page is kept."""
    shop_servers = list(run.servers)
    front, port = start_front(procs, run.tmp, home, base.removeprefix("http://"))
    try:
        front_base = f"http://127.0.0.1:{port}"
        run.servers = [front.pid, *shop_servers]  # (a kept page expires: the app renews it)
        run.warm(front_base, paths)
        with urllib.request.urlopen(front_base + paths[0], timeout=10) as answer:
            kept = answer.headers.get("X-Cache-Status")
        if kept != "HIT":
            raise BenchError(f"nginx did not keep {paths[0]} (X-Cache-Status: {kept})")
        return run.measure(front_base, paths, "pages kept after their first request")
    finally:
        run.servers = shop_servers
        procs.stop(front)


def bare_product(home: Path, database_url: str, ids: list[int]) -> list[str]:
    """The arguments of ``yardstick_pages.py`` for the bare product page of *ids*."""
    argv = ["product", "--home", str(home), "--ids", ",".join(map(str, ids))]
    return [*argv, "--database-url", database_url] if database_url else argv


def in_turn(
    run: Run, procs: Processes, bare_argv: list[str], shop: str, paths: list[str]
) -> list[tuple[Result, Result]]:
    """(warm, bare) product page results, measured in turn ``ROUNDS`` times for
    ``ROUND_SHARE`` of a row's time each: the shop's two workers at *shop* (running) and
    two bare processes (*bare_argv*) serving the same *paths*. Drift of the machine
    between the rows of the table moves their ratio; within a round both sides share
    it, and the side measured first alternates, so a steady drift favours neither."""
    sock = bind_tcp("127.0.0.1", 0)
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    shop_servers = list(run.servers)
    rounds: list[tuple[Result, Result]] = []
    try:
        bare = start_bare(procs, sock, 2, bare_argv)
        bare_servers = [p.pid for p in bare]
        run.servers = bare_servers
        run.warm(base, paths)
        seconds = max(1.0, run.seconds * ROUND_SHARE)
        sides = ((shop_servers, shop), (bare_servers, base))
        for at in range(1 if run.quick else ROUNDS):
            got: list[Result] = []
            for servers, url in sides if at % 2 == 0 else sides[::-1]:
                run.servers = servers
                got.append(run.balanced(url, paths, seconds))
            rounds.append((got[0], got[1]) if at % 2 == 0 else (got[1], got[0]))
        for proc in bare:
            procs.stop(proc)
    finally:
        run.servers = shop_servers
        sock.close()
    return rounds


def _note_throttle(row: Result, base: str, before: dict[str, float]) -> None:
    """Add to *row*'s note the share of its throttle decisions the daemon made."""
    row.note += by_daemon(before, throttle_decisions(base, 2))


def bench_yardsticks(
    run: Run, procs: Processes, shop: tuple[Path, str], hot: list[int], size: int
) -> dict[str, Result]:
    """The bare Mako pages (the product page on 2 processes, then 1; the list page of
    the same size on 2) and nginx's static file."""
    out: dict[str, Result] = {}
    product = bare_product(*shop, hot)
    pages = [f"/p/{i}" for i in hot]
    for workers, row, what, paths, note in (
        (2, ROW_BARE2, product, pages, f"{len(hot)} hot products, data in memory"),
        (1, ROW_BARE1, product, pages, f"{len(hot)} hot products, data in memory"),
        (2, ROW_LIST2, ["list", "--size", str(size)], ["/"], "a minimal template"),
    ):
        sock = bind_tcp("127.0.0.1", 0)
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        try:
            bare = start_bare(procs, sock, workers, what)
            run.servers = [p.pid for p in bare]
            run.warm(base, paths)
            out[row] = run.measure(base, paths, note)
            for proc in bare:
                procs.stop(proc)
        finally:
            sock.close()
    nginx, port = start_nginx(procs, run.tmp)
    run.servers = [nginx.pid]
    base = f"http://127.0.0.1:{port}"
    run.warm(base, ["/page.html"])
    out[ROW_NGINX] = run.measure(base, ["/page.html"], "sendfile, no access log")
    procs.stop(nginx)
    return out


def header(args: argparse.Namespace) -> None:
    version = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout
    load1, load5, _ = os.getloadavg()
    where = database_label(args.postgres)
    print(f"bench_web: {args.products:,} demo products ({where}), {args.seconds:g} s a row")
    print(
        f"  {(version.splitlines() or ['wrk'])[0].strip()}; 1 thread, {CONNECTIONS} connections,"
        " keep-alive, loopback TCP; latency from each request's send to its response"
    )
    print(
        f"  {os.cpu_count()} cores, load {load1:.2f}/{load5:.2f} before the run;"
        " figures are comparable ONLY within this one run"
    )
    print(
        "  cold: every request names a product no earlier request named (ids from the end of"
        " the catalog, none in the hot set); its description always misses the cache, its"
        " info, price and stock miss unless an earlier page showed it as a related product"
    )
    print(
        "  paced: wrk (not wrk2, which Debian lacks) with a Lua delay after each response,"
        " found by short trial runs (each corrects the wait by the cycle it missed the target"
        f" rate by); judged only if it came within {1 - PACED_REACHED:.0%} of the target;"
        " wrk measures from each send, so a late send's wait is not counted (coordinated"
        " omission)"
    )


def missing_tools() -> list[str]:
    found = {
        "wrk": shutil.which("wrk"),
        "nginx": nginx_path() if shutil.which(nginx_path()) else None,
    }
    return [f"{tool} (Debian package {TOOLS[tool]})" for tool, path in found.items() if not path]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=50_000, help="demo catalog size")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each wrk run")
    parser.add_argument(
        "--quick", action="store_true", help="a smoke test: 8,000 products, 1 s a row"
    )
    add_postgres_option(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.products, args.seconds = 8000, 1.0
    if args.products <= HOT_PRODUCTS * 2:
        parser.error(f"--products must be over {HOT_PRODUCTS * 2}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    missing = missing_tools()
    if missing:
        print(
            "bench_web: missing " + ", ".join(missing) + "; install them with"
            " `apt-get install wrk nginx-light`",
            file=sys.stderr,
        )
        return 2
    header(args)
    start = cpu_clock()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(3))

    def body(tmp: Path, procs: Processes) -> None:
        with scratch_database(args.postgres) as url:
            shop = (tmp / "home", url)
            ids = load_catalog(*shop, args.products)
            run = Run(tmp, args.seconds, args.quick, start_daemons(procs, shop[0]))
            rounds: list[tuple[Result, Result]] = []
            rows = bench_shop(run, procs, shop, ids, rounds)
            hot = ids[: 10 if args.quick else HOT_PRODUCTS]
            rows.update(bench_yardsticks(run, procs, shop, hot, rows[ROW_WARM2].size))
            procs.stop_all()
        print_table(rows)
        print_cpu_by(rows, (ROW_WARM2, ROW_BARE2))
        print_rounds(rounds)
        print_targets(rows, rounds)
        print_machine(start)

    return in_scratch("bench_web", body)


if __name__ == "__main__":
    sys.exit(main())
