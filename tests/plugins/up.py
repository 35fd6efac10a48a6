"""Run the whole shop with ``sleigh up``, as an operator does, and stop it by its PID.

:func:`running_shop` starts ``python -m sleigh.daemons.control up`` on a
home of its own, with the caller's ``SLEIGH_*`` and socket-activation
variables removed and the web tier on TCP port 0. ``sleigh up`` binds the
web socket before it starts anything, hands it to every worker and prints
the address once all of them said ``READY=1``: the address read from that
line is taken and served, with no port race. Its log (every daemon's and
worker's too: they inherit its stderr) goes to a file, never to a pipe
nobody reads.

At exit, a shop still running gets SIGTERM by PID and must exit 0 within
the deadline; then every child it ever ran (as its state file named them,
workers it restarted included) must be gone, and no ``Traceback`` may be
in the log.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "READY",
    "UpShop",
    "alive",
    "check_stopped",
    "running_shop",
    "shop_env",
    "start_shop",
    "stop_shop",
]

READY = re.compile(r"sleigh is up: (http://\S+)")
#: Seconds ``sleigh up`` may take to print its address (a loaded 2-core machine).
UP_DEADLINE = 90.0
#: Seconds it may take to stop after SIGTERM (each web worker drains first).
STOP_DEADLINE = 30.0


def shop_env(home: Path, **extra: str) -> dict[str, str]:
    """This process's environment for *home*: no ``SLEIGH_*``, ``LISTEN_*`` or ``NOTIFY_SOCKET``."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("SLEIGH_", "LISTEN_"))}
    keep.pop("NOTIFY_SOCKET", None)
    return {**keep, "SLEIGH_HOME": str(home), "SLEIGH_WEB_PORT": "0", **extra}


def alive(pid: int) -> bool:
    """Whether a process *pid* exists (a zombie counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@dataclass
class UpShop:
    """One running ``sleigh up``."""

    proc: subprocess.Popen[str]
    #: ``http://127.0.0.1:PORT/``, as printed.
    address: str
    home: Path
    env: dict[str, str]
    #: What it printed up to the address line.
    output: list[str]
    log_path: Path
    #: The PIDs of every child seen in the state file so far.
    children: set[int] = field(default_factory=set)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        """Everything written to stderr so far (``sleigh up``'s and its children's)."""
        return self.log_path.read_text(errors="replace")

    def state(self) -> dict[str, Any]:
        """``run/up.json``: the pids and addresses (rewritten when a child is restarted)."""
        state: dict[str, Any] = json.loads((self.home / "run" / "up.json").read_text())
        self.children.update(state["daemons"].values())
        self.children.update(state["web"]["workers"])
        return state

    def workers(self) -> list[int]:
        """The web workers' PIDs, per the state file."""
        return list(self.state()["web"]["workers"])


def _read_until_up(proc: subprocess.Popen[str], deadline: float) -> tuple[str, list[str]]:
    assert proc.stdout is not None
    lines: list[str] = []
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if ready:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            match = READY.search(line)
            if match:
                return match.group(1), lines
        elif proc.poll() is not None:
            break
    raise AssertionError(f"sleigh up did not come up: {''.join(lines)}")


def start_shop(
    home: Path,
    *,
    products: int,
    workers: int | None = None,
    config: Path | None = None,
    args: Sequence[str] = (),
    **env: str,
) -> UpShop:
    """Start ``sleigh up`` on *home* with *products* demo products; return once it serves.

    :param config: the config file (``--config``), if any.
    :param args: more of ``sleigh up``'s options (``--front on``).
    :param env: more environment variables (``SLEIGH_...`` overrides).
    :raises AssertionError: with what it printed, if it is not up within the deadline.
    """
    home.parent.mkdir(parents=True, exist_ok=True)
    environ = shop_env(home, **env)
    argv = [sys.executable, "-m", "sleigh.daemons.control", "up", "--products", str(products)]
    if workers is not None:
        argv += ["--workers", str(workers)]
    if config is not None:
        argv += ["--config", str(config)]
    argv += args
    log_path = home.with_name(home.name + ".log")
    with open(log_path, "w") as log:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log, text=True, env=environ)
    try:
        address, lines = _read_until_up(proc, time.monotonic() + UP_DEADLINE)
    except BaseException:
        proc.kill()
        proc.wait(10)
        _close(proc)
        raise
    shop = UpShop(proc, address, home, environ, lines, log_path)
    shop.state()
    return shop


def stop_shop(shop: UpShop, sig: int = signal.SIGTERM, deadline: float = STOP_DEADLINE) -> None:
    """Send *sig* to ``sleigh up`` by its PID and check that it stopped cleanly.

    :raises AssertionError: if it did not exit 0 within *deadline*, left a child
        running or logged a traceback.
    """
    with contextlib.suppress(FileNotFoundError):
        shop.state()
    os.kill(shop.pid, sig)
    try:
        status = shop.proc.wait(deadline)
    except subprocess.TimeoutExpired:
        shop.proc.kill()
        shop.proc.wait(10)
        raise AssertionError(f"sleigh up did not stop within {deadline:g}s of {sig!r}") from None
    assert status == 0, f"sleigh up exited with status {status}:\n{shop.log()[-4000:]}"
    check_stopped(shop)


def check_stopped(shop: UpShop, deadline: float = 10.0) -> None:
    """After ``sleigh up`` exited: no child left, no state file, no traceback."""
    until = time.monotonic() + deadline
    while any(alive(pid) for pid in shop.children) and time.monotonic() < until:
        time.sleep(0.1)
    left = sorted(pid for pid in shop.children if alive(pid))
    assert not left, f"children of sleigh up outlived it: {left}"
    assert not (shop.home / "run" / "up.json").exists()
    assert "Traceback" not in shop.log(), shop.log()[-4000:]


def _close(proc: subprocess.Popen[str]) -> None:
    if proc.stdout is not None:
        proc.stdout.close()


@contextlib.contextmanager
def running_shop(
    home: Path,
    *,
    products: int,
    workers: int | None = None,
    config: Path | None = None,
    args: Sequence[str] = (),
    **env: str,
) -> Iterator[UpShop]:
    """:func:`start_shop`, and at exit :func:`stop_shop` if it still runs."""
    shop = start_shop(home, products=products, workers=workers, config=config, args=args, **env)
    try:
        yield shop
    finally:
        try:
            if shop.proc.poll() is None:
                stop_shop(shop)
        finally:
            if shop.proc.poll() is None:
                shop.proc.kill()
                shop.proc.wait(10)
            _close(shop.proc)


def get_page(url: str, **headers: str) -> tuple[int, dict[str, str], str]:
    """GET *url* from the shop ``sleigh up`` runs: the status, the headers and the body."""
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, dict(response.headers), response.read().decode()
