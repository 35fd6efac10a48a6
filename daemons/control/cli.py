"""``sleigh``: the operator's command.

Exit codes: 0 success, 1 the command ran and something is wrong (a
component down, a child failed), 2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import uvloop
from sqlalchemy.ext.asyncio import AsyncEngine

from ...errors import SleighError
from ...webapp.db.engine import create_engine, database_url, redacted
from ...webapp.db.migrate import current_revision, head_revision, upgrade
from ...webapp.demo.catalog import LoadReport, load_demo
from ..runtime.config import ConfigError
from ..runtime.logs import setup_logging
from . import cache_cmd, front, nginx_cmd, replication_cmd, search_cmd, systemd_cmd, throttle_cmd
from . import status as status_mod
from .settings import Settings, defaults_toml, load_settings, toml_value
from .up import run_up

T = TypeVar("T")

DEMO_PRODUCTS = 100_000
QUIET_COMMANDS = frozenset(
    {"status", "config", "db", "cache", "replication", "search", "throttle", "nginx", "systemd"}
)


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="config file (default: $SLEIGH_CONFIG, else /etc/sleigh/sleigh.toml if it exists)",
    )
    common.add_argument(
        "--home",
        metavar="DIR",
        default=argparse.SUPPRESS,
        help="the shop's data directory (default: $SLEIGH_HOME, else ./var)",
    )
    return common


def parser() -> argparse.ArgumentParser:
    common = _common()
    top = argparse.ArgumentParser(
        prog="sleigh", description="Run and manage a sleigh shop.", parents=[common]
    )
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (
        _add_up,
        _add_status,
        _add_db,
        _add_demo,
        _add_config,
        cache_cmd.add_parser,
        replication_cmd.add_parser,
        throttle_cmd.add_parser,
        search_cmd.add_parser,
        nginx_cmd.add_parser,
        systemd_cmd.add_parser,
    ):
        add(sub, common)
    return top


def _add_up(sub: Any, common: argparse.ArgumentParser) -> None:
    up = sub.add_parser("up", parents=[common], help="run the whole shop in the foreground")
    up.add_argument(
        "--products",
        type=int,
        default=DEMO_PRODUCTS,
        metavar="N",
        help=f"demo products to load into an empty database (default {DEMO_PRODUCTS:,}; 0: none)",
    )
    up.add_argument("--workers", type=int, metavar="N", help="web workers (default: [web] workers)")
    up.add_argument(
        "--front",
        choices=front.CHOICES,
        default="off",
        help="nginx in front of the web workers, keeping public pages (auto: when nginx is"
        " installed; default: off)",
    )
    up.add_argument(
        "--nginx", metavar="PATH", help="the nginx binary (default: on PATH, else in /usr/sbin)"
    )
    up.set_defaults(run=cmd_up)


def _add_status(sub: Any, common: argparse.ArgumentParser) -> None:
    st = sub.add_parser("status", parents=[common], help="show every component and its state")
    st.add_argument("--json", action="store_true", help="print one JSON object")
    st.set_defaults(run=cmd_status)


def _add_db(sub: Any, common: argparse.ArgumentParser) -> None:
    db = sub.add_parser("db", parents=[common], help="manage the database schema")
    dbsub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    dbup = dbsub.add_parser("upgrade", parents=[common], help="migrate to the newest schema")
    dbup.add_argument("--revision", default="head", help="target revision (default: head)")
    dbup.set_defaults(run=cmd_db_upgrade)
    dbsub.add_parser("current", parents=[common], help="show the schema revision").set_defaults(
        run=cmd_db_current
    )


def _add_demo(sub: Any, common: argparse.ArgumentParser) -> None:
    demo = sub.add_parser("demo", parents=[common], help="the demo catalog")
    demosub = demo.add_subparsers(dest="demo_command", required=True, metavar="ACTION")
    load = demosub.add_parser("load", parents=[common], help="load the deterministic demo catalog")
    load.add_argument(
        "--products",
        type=int,
        default=DEMO_PRODUCTS,
        metavar="N",
        help=f"how many products (default {DEMO_PRODUCTS:,})",
    )
    load.add_argument("--seed", type=int, default=2000, help="catalog seed (default 2000)")
    load.set_defaults(run=cmd_demo_load)


def _add_config(sub: Any, common: argparse.ArgumentParser) -> None:
    cfg = sub.add_parser("config", parents=[common], help="check or describe the configuration")
    cfgsub = cfg.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    check = cfgsub.add_parser(
        "check", parents=[common], help="validate the config and print the effective settings"
    )
    check.add_argument("file", nargs="?", help="the config file to check (default: as --config)")
    check.add_argument("--json", action="store_true", help="print one JSON object")
    check.set_defaults(run=cmd_config_check)
    cfgsub.add_parser(
        "defaults", parents=[common], help="print every option with its default and help"
    ).set_defaults(run=cmd_config_defaults, no_settings=True)


def cmd_up(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    if args.products < 0 or (args.workers is not None and not 1 <= args.workers <= 64):
        print("sleigh up: --products must be >= 0 and --workers from 1 to 64", file=sys.stderr)
        return 2
    if args.nginx is not None and args.front == "off":
        print("sleigh up: --nginx goes with --front auto or on", file=sys.stderr)
        return 2
    return uvloop.run(
        run_up(
            settings,
            environ,
            demo_products=args.products,
            workers=args.workers,
            front=args.front,
            nginx=args.nginx,
        )
    )


def cmd_status(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    components = uvloop.run(status_mod.collect(settings))
    if args.json:
        print(status_mod.as_json(settings, components))
    else:
        print(status_mod.as_table(components))
    return 0 if all(c.ok for c in components) else 1


async def _with_engine(settings: Settings, action: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    engine = create_engine(settings.database, settings.home)
    try:
        return await action(engine)
    finally:
        await engine.dispose()


def cmd_db_upgrade(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    settings.home.mkdir(parents=True, exist_ok=True)
    url = redacted(database_url(settings.database, settings.home))
    uvloop.run(_with_engine(settings, lambda e: upgrade(e, args.revision)))
    revision = uvloop.run(_with_engine(settings, current_revision))
    print(f"{url}: at revision {revision}")
    return 0


def cmd_db_current(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    revision = uvloop.run(_with_engine(settings, current_revision))
    head = head_revision()
    print(f"{revision or '(empty database)'} (newest: {head})")
    return 0 if revision == head else 1


def cmd_demo_load(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    if not 1 <= args.products <= 10_000_000:
        print("sleigh demo load: --products must be from 1 to 10,000,000", file=sys.stderr)
        return 2
    settings.home.mkdir(parents=True, exist_ok=True)

    async def run(engine: AsyncEngine) -> LoadReport:
        await upgrade(engine)
        return await load_demo(engine, products=args.products, seed=args.seed)

    report = uvloop.run(_with_engine(settings, run))
    print(
        f"demo catalog: {report.products_added:,} products added, "
        f"{report.products_total:,} in all, in {report.seconds:.1f}s"
    )
    return 0


def cmd_config_check(
    args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]
) -> int:
    if args.json:
        print(json.dumps({**settings.as_dict(), "sources": dict(settings.sources)}, indent=2))
        return 0
    where = settings.config_file or "(no config file: built-in defaults)"
    print(f"# config file: {where}\n# home: {settings.home}\n# every value is valid\n")
    for section, values in settings.as_dict().items():
        if not isinstance(values, dict):
            continue
        print(f"[{section}]")
        for key, value in values.items():
            origin = settings.sources.get(f"{section}.{key}", "default")
            print(f"{key} = {toml_value(value)}  # {origin}")
        print()
    return 0


def cmd_config_defaults(
    args: argparse.Namespace, settings: Settings | None, environ: Mapping[str, str]
) -> int:
    print(defaults_toml())
    return 0


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    args = parser().parse_args(argv)
    env = dict(os.environ if environ is None else environ)
    if getattr(args, "no_settings", False):
        return int(args.run(args, None, env))
    config = getattr(args, "file", None) or getattr(args, "config", None)
    try:
        settings = load_settings(config, env, home=getattr(args, "home", None))
    except ConfigError as exc:
        print(f"sleigh: configuration error: {exc}", file=sys.stderr)
        return 2
    logging_cfg = settings.logging
    if args.command in QUIET_COMMANDS and logging_cfg.level in ("debug", "info"):
        # Their answer is on stdout; progress lines on stderr would only be noise.
        logging_cfg = dataclasses.replace(logging_cfg, level="warning")
    setup_logging(logging_cfg, program="sleigh")
    try:
        return int(args.run(args, settings, env))
    except SleighError as exc:
        print(f"sleigh {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (| head): not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        print(f"sleigh {args.command}: {exc}", file=sys.stderr)
        return 1
