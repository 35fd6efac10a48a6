"""``sleigh-web``: one storefront worker process.

Exit codes: 0 clean stop, 1 stopped by a second signal, 2 bad usage or
configuration, 3 could not start (socket, database).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Mapping, Sequence

import uvloop

from ..daemons.control.settings import Settings, load_settings
from ..daemons.runtime.config import ConfigError, env_name, specs
from ..daemons.runtime.logs import setup_logging
from ..errors import SleighError
from .config import WebConfig
from .service import serve

log = logging.getLogger("sleigh.web")


def _epilog() -> str:
    lines = ["[web] options (config file, or the environment variable shown):"]
    for key, spec, default in specs(WebConfig):
        lines.append(f"  {key} = {spec.kind.show(default) or '(empty)'}  ${env_name('web', key)}")
        lines.append(f"      {spec.help}")
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sleigh-web",
        description="Serve the storefront (one worker; run several on one socket).",
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--config",
        metavar="PATH",
        help="config file (default: $SLEIGH_CONFIG, else /etc/sleigh/sleigh.toml if it exists)",
    )
    p.add_argument("--home", metavar="DIR", help="data directory (default: $SLEIGH_HOME or ./var)")
    return p


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    args = parser().parse_args(argv)
    env = dict(os.environ if environ is None else environ)
    try:
        settings = load_settings(args.config, env, home=args.home)
    except ConfigError as exc:
        print(f"sleigh-web: configuration error: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.logging, program="sleigh-web")

    def reload_settings() -> Settings:
        return load_settings(args.config, env, home=args.home)

    try:
        return uvloop.run(serve(settings, env, reload_settings))
    except (SleighError, OSError) as exc:
        log.error("cannot start: %s", exc)
        return 3
