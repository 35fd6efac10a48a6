"""Signals: real signals sent to this process inside a running loop."""

from __future__ import annotations

import asyncio
import os
import signal
from types import FrameType

import pytest

from sleigh.daemons.runtime.signals import RELOAD, STOP, Signals


async def next_event(sigs: Signals) -> str:
    return await asyncio.wait_for(sigs.wait(), timeout=10)


async def test_sighup_is_reload_and_sigterm_is_stop() -> None:
    with Signals(asyncio.get_running_loop()) as sigs:
        os.kill(os.getpid(), signal.SIGHUP)
        assert await next_event(sigs) == RELOAD == "reload"
        os.kill(os.getpid(), signal.SIGTERM)
        assert await next_event(sigs) == STOP == "stop"
        os.kill(os.getpid(), signal.SIGINT)
        assert await next_event(sigs) == STOP
        assert sigs.stops == 2


async def test_events_queue_in_order_and_none_is_lost() -> None:
    with Signals() as sigs:
        for sig in (signal.SIGHUP, signal.SIGHUP, signal.SIGTERM, signal.SIGHUP):
            os.kill(os.getpid(), sig)
        events = [await next_event(sigs) for _ in range(4)]
        assert events == [RELOAD, RELOAD, STOP, RELOAD]
        assert sigs.pending() == 0


async def test_escalated_completes_on_the_second_stop_only() -> None:
    with Signals() as sigs:
        escalated = asyncio.create_task(sigs.escalated())
        os.kill(os.getpid(), signal.SIGTERM)
        assert await next_event(sigs) == STOP
        await asyncio.sleep(0)
        assert sigs.stops == 1 and not escalated.done()
        os.kill(os.getpid(), signal.SIGHUP)
        assert await next_event(sigs) == RELOAD
        assert not escalated.done()
        os.kill(os.getpid(), signal.SIGINT)
        await asyncio.wait_for(escalated, timeout=10)
        assert sigs.stops == 2
        await asyncio.wait_for(sigs.escalated(), timeout=10)


async def test_drain_races_escalation() -> None:
    with Signals() as sigs:
        drain = asyncio.create_task(asyncio.Event().wait())
        escalated = asyncio.create_task(sigs.escalated())
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)
        done, pending = await asyncio.wait(
            [drain, escalated], timeout=10, return_when=asyncio.FIRST_COMPLETED
        )
        assert done == {escalated} and pending == {drain}
        drain.cancel()


async def test_handlers_are_removed_and_previous_ones_restored() -> None:
    seen: list[int] = []

    def previous(signum: int, frame: FrameType | None) -> None:
        seen.append(signum)

    original = signal.signal(signal.SIGHUP, previous)
    try:
        with Signals():
            assert signal.getsignal(signal.SIGHUP) is not previous
        assert signal.getsignal(signal.SIGHUP) is previous
        os.kill(os.getpid(), signal.SIGHUP)
        await asyncio.sleep(0)
        assert seen == [signal.SIGHUP]
    finally:
        signal.signal(signal.SIGHUP, original)


async def test_record_queues_an_event_without_a_signal() -> None:
    with Signals() as sigs:
        sigs.record(STOP)
        assert await next_event(sigs) == STOP
        assert sigs.stops == 1
        with pytest.raises(ValueError, match="unknown event"):
            sigs.record("restart")
