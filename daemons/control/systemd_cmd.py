"""``sleigh systemd install``: put the shop's unit files where systemd reads them.

The units ship in the package (``sleigh/systemd/``, the repository's
``systemd/``). Every file is checked before any is written: one already there
with other contents (a unit the operator edited) stops the install, unless
``--force``, and nothing is written. systemd is not told anything: the command
prints what to run next (``daemon-reload``, then ``enable --now``), since
starting services is the operator's call.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from ...errors import SleighError
from .settings import Settings

__all__ = ["SystemdError", "add_parser", "install", "units"]

#: Where systemd reads units an administrator installs.
DEFAULT_DEST = Path("/etc/systemd/system")


class SystemdError(SleighError):
    """The units cannot be installed as asked (nothing was written)."""


def units() -> dict[str, bytes]:
    """The unit files shipped with the package, by name."""
    folder = resources.files("sleigh") / "systemd"
    return {
        entry.name: entry.read_bytes()
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith((".service", ".socket"))
    }


def install(dest: Path, *, force: bool = False) -> list[tuple[str, str]]:
    """Write every unit into *dest*; (name, what happened) for each: ``written``,
    ``replaced`` or ``unchanged``.

    :raises SystemdError: *dest* is not a directory, or a unit there differs and
        *force* is false (then nothing is written).
    """
    if not dest.is_dir():
        raise SystemdError(f"{dest} is not a directory")
    plan: list[tuple[str, bytes, str]] = []
    differ: list[str] = []
    for name, text in units().items():
        target = dest / name
        if not target.exists():
            plan.append((name, text, "written"))
        elif target.read_bytes() == text:
            plan.append((name, text, "unchanged"))
        else:
            differ.append(name)
            plan.append((name, text, "replaced"))
    if differ and not force:
        raise SystemdError(
            f"{', '.join(differ)} in {dest} {'differs' if len(differ) == 1 else 'differ'}"
            " from this version's; nothing was written (--force replaces what differs)"
        )
    for name, text, what in plan:
        if what != "unchanged":
            _write(dest / name, text)
    return [(name, what) for name, _, what in plan]


def _write(target: Path, text: bytes) -> None:
    """Write *target* whole or not at all (a temporary file renamed over it)."""
    partial = target.with_name(f".{target.name}.new")
    partial.write_bytes(text)
    os.chmod(partial, 0o644)
    os.replace(partial, target)


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``sleigh systemd ...`` to the top-level subparsers *sub*."""
    systemd = sub.add_parser("systemd", parents=[common], help="the daemons' systemd units")
    actions = systemd.add_subparsers(dest="systemd_command", required=True, metavar="ACTION")
    inst = actions.add_parser(
        "install", parents=[common], help="copy the unit files where systemd reads them"
    )
    inst.add_argument(
        "--dest",
        type=Path,
        default=DEFAULT_DEST,
        help=f"the directory (default: {DEFAULT_DEST})",
    )
    inst.add_argument("--force", action="store_true", help="replace units that differ")
    inst.set_defaults(run=cmd_install)


def cmd_install(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    done = install(args.dest, force=args.force)
    for name, what in done:
        print(f"{args.dest / name}: {what}")
    services = [n.removesuffix(".service") for n, _ in done if n.endswith(".service")]
    daemons = " ".join(n for n in services if not n.endswith("@"))
    print(
        "next: systemctl daemon-reload && systemctl enable --now "
        f"{daemons} sleigh-web.socket sleigh-web@{{1..4}}"
    )
    return 0
