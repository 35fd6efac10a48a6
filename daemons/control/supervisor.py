"""Start, watch and stop the shop's processes, as systemd would on one host.

Each child gets its listening sockets handed over (``LISTEN_FDS``) and its
own ``NOTIFY_SOCKET`` (an abstract datagram socket), so the supervisor knows
which child said ``READY=1``. A child that dies while the shop runs is
restarted after a pause, at most ``max_restarts`` times a minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import secrets
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..runtime.activation import activation_kwargs

log = logging.getLogger("sleigh.up")


class ChildFailed(Exception):
    """A child exited or stayed silent before it said ``READY=1``."""


def renice(name: str, pid: int, nice: int) -> bool:
    """Give process *pid*, every thread it has (niceness is a thread's on Linux; threads
    started later take their creator's), the niceness *nice*; whether it could (lowering
    it takes root or ``CAP_SYS_NICE``)."""
    try:
        threads = [int(task) for task in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        threads = [pid]
    try:
        for thread in threads:
            with contextlib.suppress(ProcessLookupError):  # (a thread that ended)
                os.setpriority(os.PRIO_PROCESS, thread, nice)
    except PermissionError:
        log.info("%s runs at the usual priority (nice %d takes root or CAP_SYS_NICE)", name, nice)
        return False
    return os.path.exists(f"/proc/{pid}")


@dataclass
class Child:
    """One process the supervisor runs."""

    name: str
    argv: Sequence[str]
    sockets: Sequence[socket.socket] = ()
    #: Its niceness, as its systemd unit's ``Nice=`` (kept at 0 without the privilege).
    nice: int = 0
    #: Variables its environment has beside the supervisor's.
    env: Mapping[str, str] = field(default_factory=dict)
    #: For a program that does not say ``READY=1``: returns once it serves (polled by
    #: the caller until the start deadline).
    probe: Callable[[], Awaitable[bool]] | None = None
    #: The signal that stops it cleanly.
    stop_signal: int = signal.SIGTERM
    proc: asyncio.subprocess.Process | None = None
    status: str = ""
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    restarts: list[float] = field(default_factory=list)
    _notify: socket.socket | None = None

    @property
    def program(self) -> str:
        """The program this child is an instance of (``web`` for ``web#2``)."""
        return self.name.partition("#")[0]

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def _open_notify(self) -> str:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        name = f"sleigh-up/{os.getpid()}/{self.name}/{secrets.token_hex(4)}"
        sock.bind(b"\0" + name.encode())
        sock.setblocking(False)
        asyncio.get_running_loop().add_reader(sock.fileno(), self._on_notify)
        self._notify = sock
        return "@" + name

    def _on_notify(self) -> None:
        assert self._notify is not None
        try:
            data = self._notify.recv(4096)
        except BlockingIOError:
            return
        for line in data.decode("utf-8", "replace").splitlines():
            key, _, value = line.partition("=")
            if key == "READY" and value == "1":
                self.ready.set()
            elif key == "STATUS":
                self.status = value

    def _close_notify(self) -> None:
        if self._notify is not None:
            asyncio.get_running_loop().remove_reader(self._notify.fileno())
            self._notify.close()
            self._notify = None

    async def start(self, environ: Mapping[str, str], deadline: float) -> None:
        """Start the process and wait for ``READY=1``.

        :raises ChildFailed: if it exits first or stays silent for *deadline* seconds.
        """
        self._close_notify()
        self.ready.clear()
        env = {**environ, **self.env, "NOTIFY_SOCKET": self._open_notify()}
        kwargs = activation_kwargs(self.argv, self.sockets, env)
        args = kwargs.pop("args")
        place_fds = kwargs.pop("preexec_fn")

        def preexec() -> None:
            place_fds()
            _die_with_parent()

        # Its own session: a terminal's Ctrl-C reaches the supervisor only,
        # which then stops each child once, with SIGTERM.
        self.proc = await asyncio.create_subprocess_exec(
            *args, preexec_fn=preexec, start_new_session=True, **kwargs
        )
        if self.nice:
            renice(self.name, self.proc.pid, self.nice)
        exited = asyncio.create_task(self.proc.wait())
        ready = asyncio.create_task(self.ready.wait() if self.probe is None else self._probed())
        done, _ = await asyncio.wait(
            {exited, ready}, timeout=deadline, return_when="FIRST_COMPLETED"
        )
        ready.cancel()
        if ready in done:
            exited.cancel()
            log.info("%s is ready (pid %d)%s", self.name, self.proc.pid, _said(self.status))
            return
        if exited in done:
            raise ChildFailed(
                f"{self.name} exited with status {exited.result()} before it was ready"
            )
        exited.cancel()
        self.proc.kill()
        await self.proc.wait()
        raise ChildFailed(f"{self.name} was not ready within {deadline:g}s")

    async def _probed(self) -> None:
        assert self.probe is not None
        while True:  # (a program that says nothing: asked until it answers)
            if await self.probe():
                self.ready.set()
                return
            await asyncio.sleep(0.05)

    async def stop(self, deadline: float) -> int | None:
        """Its stop signal, wait up to *deadline*, then SIGKILL; the exit status."""
        proc, self.proc = self.proc, None
        self._close_notify()
        if proc is None:
            return None
        if proc.returncode is None:
            proc.send_signal(self.stop_signal)
            try:
                await asyncio.wait_for(proc.wait(), deadline)
            except TimeoutError:
                log.warning(
                    "%s (pid %d) did not stop in %gs: killing it", self.name, proc.pid, deadline
                )
                proc.kill()
                await proc.wait()
        self.kill_leftovers(proc.pid)
        return proc.returncode

    def kill_leftovers(self, pid: int) -> None:
        """SIGKILL whatever is left of the process group of the child that was *pid* (its
        own session: nginx's workers, orphaned when their master was killed)."""
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        log.warning("%s left processes behind (group %d): killed them", self.name, pid)

    def may_restart(self, now: float, max_restarts: int) -> bool:
        """Record a restart at *now*; false once there were too many in a minute."""
        self.restarts = [t for t in self.restarts if now - t < 60.0] + [now]
        return len(self.restarts) <= max_restarts


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child: have the kernel send SIGTERM if the supervisor dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _said(status: str) -> str:
    return f": {status}" if status else ""


class Supervisor:
    """Runs children until told to stop; restarts the ones that die.

    :param environ: the environment children inherit.
    :param ready_timeout: how long a child may take to say ``READY=1``.
    :param stop_timeout: how long a child may take to exit after SIGTERM.
    :param on_restart: called after a child was restarted.
    """

    def __init__(
        self,
        children: Sequence[Child],
        environ: Mapping[str, str],
        *,
        ready_timeout: float = 60.0,
        stop_timeout: float = 15.0,
        max_restarts: int = 5,
        on_restart: Callable[[], None] | None = None,
    ) -> None:
        self.children = list(children)
        self.environ = dict(environ)
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.max_restarts = max_restarts
        self.on_restart = on_restart

    async def start(self) -> None:
        """Start every child in order, each ready before the next starts.

        :raises ChildFailed: after stopping the ones already started.
        """
        try:
            for child in self.children:
                await child.start(self.environ, self.ready_timeout)
        except BaseException:
            await self.stop()
            raise

    async def watch(self, stop: asyncio.Future[Any]) -> None:
        """Restart children that die until *stop* completes.

        :raises ChildFailed: when a child dies too often.
        """
        while not stop.done():
            waits = {
                asyncio.ensure_future(c.proc.wait()): c for c in self.children if c.proc is not None
            }
            await asyncio.wait({stop, *waits}, return_when="FIRST_COMPLETED")
            for task in waits:
                task.cancel()
            if stop.done():
                return
            for task, child in waits.items():
                if task.done() and not task.cancelled():
                    await self._restart(child, task.result())

    async def _restart(self, child: Child, status: int) -> None:
        log.error("%s (pid %s) exited unexpectedly with status %d", child.name, child.pid, status)
        if child.pid is not None:
            child.kill_leftovers(child.pid)
        if not child.may_restart(time.monotonic(), self.max_restarts):
            raise ChildFailed(f"{child.name} keeps dying; giving up")
        await asyncio.sleep(1.0)
        await child.start(self.environ, self.ready_timeout)
        if self.on_restart is not None:
            self.on_restart()

    async def stop(self) -> dict[str, int | None]:
        """Stop every child, the last program started first (the instances of
        one program together); their exit statuses by name."""
        groups: dict[str, list[Child]] = {}
        for child in self.children:
            groups.setdefault(child.program, []).append(child)
        statuses: dict[str, int | None] = {}
        for group in reversed(groups.values()):
            codes = await asyncio.gather(*(c.stop(self.stop_timeout) for c in group))
            for child, code in zip(group, codes, strict=True):
                statuses[child.name] = code
                if code not in (0, None):
                    log.warning("%s exited with status %s", child.name, code)
        return statuses
