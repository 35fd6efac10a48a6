"""Signals for daemons: the handlers only record, the event loop acts.

``SIGTERM`` and ``SIGINT`` mean *stop*, ``SIGHUP`` means *reload*. Each
signal becomes one event in a queue that :meth:`Signals.wait` hands out in
arrival order, so two quick signals are two events and none is lost. A
second stop signal means *stop now*: :meth:`Signals.escalated` completes
when it arrives, so a drain can race it::

    with Signals(loop) as sigs:
        while await sigs.wait() == "reload":
            reload()
        drain = asyncio.create_task(service.drain())
        escalated = asyncio.create_task(sigs.escalated())
        done, _ = await asyncio.wait(
            [drain, escalated], timeout=deadline, return_when=asyncio.FIRST_COMPLETED
        )
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, Final

__all__ = ["RELOAD", "STOP", "Signals"]

log = logging.getLogger("sleigh.runtime.signals")

STOP: Final = "stop"
RELOAD: Final = "reload"

_Handler = Callable[[int, Any], Any] | int | None


class Signals:
    """Records stop and reload signals for the loop; a context manager.

    :param loop: the running loop the handlers are installed on
        (``asyncio.get_running_loop()`` if ``None``, when entered).
    :param stop: signals that mean stop.
    :param reload: signals that mean reload.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop | None = None,
        *,
        stop: Iterable[signal.Signals] = (signal.SIGTERM, signal.SIGINT),
        reload: Iterable[signal.Signals] = (signal.SIGHUP,),
    ) -> None:
        self._loop = loop
        self._meaning: dict[signal.Signals, str] = {sig: STOP for sig in stop}
        self._meaning.update({sig: RELOAD for sig in reload})
        self._events: asyncio.Queue[str] = asyncio.Queue()
        self._second_stop = asyncio.Event()
        self._stops = 0
        self._previous: dict[signal.Signals, _Handler] = {}

    @property
    def stops(self) -> int:
        """How many stop signals have arrived so far."""
        return self._stops

    def __enter__(self) -> Signals:
        loop = self._loop if self._loop is not None else asyncio.get_running_loop()
        self._loop = loop
        for sig in self._meaning:
            self._previous[sig] = signal.getsignal(sig)
            loop.add_signal_handler(sig, self._record, sig)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._loop is not None
        for sig, previous in self._previous.items():
            self._loop.remove_signal_handler(sig)
            if previous is not None:
                signal.signal(sig, previous)
        self._previous.clear()

    def _record(self, sig: signal.Signals) -> None:
        """The handler: runs in the loop, only records."""
        event = self._meaning[sig]
        if event == STOP:
            self._stops += 1
            if self._stops >= 2:
                self._second_stop.set()
        log.info("received %s (%s)", sig.name, event)
        self._events.put_nowait(event)

    def record(self, event: str) -> None:
        """Queue *event* (``"stop"`` or ``"reload"``) as if a signal had arrived.

        :raises ValueError: for any other event.
        """
        if event not in (STOP, RELOAD):
            raise ValueError(f"unknown event {event!r}; expected {STOP!r} or {RELOAD!r}")
        sig = next((s for s, meaning in self._meaning.items() if meaning == event), None)
        if sig is None:
            raise ValueError(f"no signal is mapped to {event!r}")
        self._record(sig)

    async def wait(self) -> str:
        """The next recorded event, ``"stop"`` or ``"reload"``, waiting for one."""
        return await self._events.get()

    def pending(self) -> int:
        """How many recorded events :meth:`wait` has not handed out yet."""
        return self._events.qsize()

    async def escalated(self) -> None:
        """Complete when a second stop signal has arrived (at once if one has)."""
        await self._second_stop.wait()
