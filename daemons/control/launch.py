"""The ``main()`` every daemon shares: argv → settings → logging → the service.

Exit codes: 0 clean stop, 1 stopped by a second signal, 2 bad usage or
configuration, 3 could not start (socket, database, data file).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

import uvloop

from ...errors import SleighError
from ..runtime.config import ConfigError, Section, env_name, specs
from ..runtime.logs import setup_logging
from .settings import Settings, load_settings

#: ``serve(settings, environ, reload_settings)``: runs until stopped, returns the exit code.
Serve = Callable[[Settings, Mapping[str, str], Callable[[], Settings]], Coroutine[Any, Any, int]]

EXIT_CONFIG = 2
EXIT_CANNOT_START = 3


def options_epilog(section: type[Section]) -> str:
    """``--help`` text listing every option of *section* and its variable."""
    name = section.SECTION
    lines = [f"[{name}] options (config file, or the environment variable shown):"]
    for key, spec, default in specs(section):
        lines.append(f"  {key} = {spec.kind.show(default) or '(empty)'}  ${env_name(name, key)}")
        lines.append(f"      {spec.help}")
    return "\n".join(lines)


def daemon_parser(
    program: str, description: str, section: type[Section]
) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=program,
        description=description,
        epilog=options_epilog(section),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="config file (default: $SLEIGH_CONFIG, else /etc/sleigh/sleigh.toml if it exists)",
    )
    parser.add_argument(
        "--home", metavar="DIR", help="data directory (default: $SLEIGH_HOME or ./var)"
    )
    return parser


def daemon_main(
    program: str,
    description: str,
    section: type[Section],
    serve: Serve,
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    """Parse *argv*, load the settings, set up logging and run *serve* on uvloop."""
    args = daemon_parser(program, description, section).parse_args(argv)
    env = dict(os.environ if environ is None else environ)
    try:
        settings = load_settings(args.config, env, home=args.home)
    except ConfigError as exc:
        print(f"{program}: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    setup_logging(settings.logging, program=program)

    def reload_settings() -> Settings:
        return load_settings(args.config, env, home=args.home)

    try:
        return uvloop.run(serve(settings, env, reload_settings))
    except (SleighError, OSError) as exc:
        logging.getLogger(f"sleigh.{program}").error("cannot start: %s", exc)
        return EXIT_CANNOT_START


def reload_logging(reload_settings: Callable[[], Settings] | None, program: str) -> bool:
    """On SIGHUP: re-read the configuration and apply its log settings.

    A bad file is refused with a log line; the running configuration stays.
    :returns: whether the new settings were applied.
    """
    log = logging.getLogger(f"sleigh.{program}")
    if reload_settings is None:
        return False
    try:
        fresh = reload_settings()
    except Exception as exc:  # a bad file must not stop a serving daemon
        log.error("reload refused, keeping the running configuration: %s", exc)
        return False
    setup_logging(fresh.logging, program=program)
    return True
