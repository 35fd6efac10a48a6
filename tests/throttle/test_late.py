"""A late answer decides its own request in process; three in a row, and the web tier
leaves the daemon alone for ``retry_after_failure`` (a real daemon, paused with SIGSTOP)."""

from __future__ import annotations

import asyncio
import logging
import select
import signal
import time

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from sleigh.daemons.throttle.client import AsyncThrottleClient
from sleigh.daemons.throttle.config import ThrottleConfig
from sleigh.daemons.throttle.rules import load_rules
from sleigh.webapp.throttle import LATE_IN_A_ROW, Throttle
from tests.throttle.conftest import Throttled


def state(throttle: Throttle) -> tuple[int, bool]:
    """Late answers in a row, and whether the daemon is left alone."""
    return throttle.late, throttle.down


async def page(request: web.Request) -> web.Response:
    return web.Response(text="the page")


@pytest.mark.asyncio
async def test_late_answers_then_unreachable_then_back(
    throttled: Throttled, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = ThrottleConfig(
        client_ip_header="X-Real-IP", timeout=0.05, retry_after_failure=0.3, cpu_flush=3600
    )  # (no CPU charges are sent during the test: only the checks can be late)
    client = AsyncThrottleClient([throttled.socket_path], timeout=cfg.timeout)
    throttle = Throttle(cfg, load_rules(throttled.home / "rules.toml"), client)
    app = web.Application()
    app.router.add_get("/", page)
    registry = CollectorRegistry()
    throttle.install(app, registry)
    headers = {"X-Real-IP": "10.3.0.1", "Accept": "application/json"}

    async def status() -> int:
        async with http.get("/", headers=headers) as response:
            await response.read()
            return response.status

    caplog.set_level(logging.DEBUG, "sleigh.web.throttle")
    async with TestClient(TestServer(app)) as http:
        assert await status() == 200  # asked the daemon
        throttled.daemon.send_signal(signal.SIGSTOP)
        try:
            assert await status() == 200  # late: decided in process
            assert state(throttle) == (1, False)
            assert registry.get_sample_value("sleigh_throttle_late_total") == 1
            for _ in range(LATE_IN_A_ROW - 1):
                assert await status() == 200
            assert state(throttle) == (LATE_IN_A_ROW, True)  # three late in a row: unreachable
            assert "THROTTLE DAEMON UNAVAILABLE" in caplog.text
            loop = asyncio.get_running_loop()
            started = loop.time()
            assert await status() == 200  # in process, without waiting for the daemon
            assert loop.time() - started < cfg.timeout
        finally:
            throttled.daemon.send_signal(signal.SIGCONT)
        await asyncio.sleep(cfg.retry_after_failure)
        assert await status() == 200
        assert state(throttle) == (0, False)
        assert "answers again" in caplog.text
    with throttled.client() as sync:
        # the daemon counted what it answered and what reached it late; the request
        # decided without asking it (while unreachable) never reached it
        assert sync.show(b"ip:10.3.0.1")["remaining"] == 5 - 2 - LATE_IN_A_ROW


@pytest.mark.asyncio
async def test_one_late_answer_leaves_the_daemon_in_charge(throttled: Throttled) -> None:
    cfg = ThrottleConfig(client_ip_header="X-Real-IP", timeout=0.05)
    client = AsyncThrottleClient([throttled.socket_path], timeout=cfg.timeout)
    throttle = Throttle(cfg, load_rules(throttled.home / "rules.toml"), client)
    app = web.Application()
    app.router.add_get("/", page)
    throttle.install(app, CollectorRegistry())
    headers = {"X-Real-IP": "10.3.0.2", "Accept": "application/json"}
    async with TestClient(TestServer(app)) as http:
        for pause in (False, True, False):
            if pause:
                throttled.daemon.send_signal(signal.SIGSTOP)
            try:
                async with http.get("/", headers=headers) as response:
                    assert response.status == 200
            finally:
                if pause:
                    throttled.daemon.send_signal(signal.SIGCONT)
        assert state(throttle) == (0, False)


@pytest.mark.asyncio
async def test_a_loop_turn_longer_than_the_timeout_fails_no_question_it_held(
    throttled: Throttled,
) -> None:
    """A question queued for the end of a turn that outlasts the timeout has its full
    timeout once written: uvloop runs the timers of the next turn before the callback
    that writes it (and, the turn before, read the reply in flight: nothing waits unread)."""
    timeout = 0.05
    client = AsyncThrottleClient([throttled.socket_path], timeout=timeout)
    await client.check([b"ip:10.3.0.3"])  # connected
    first = client.start_check([b"ip:10.3.0.3"])
    second = client.start_check([b"ip:10.3.0.4"])
    assert first is not None and second is not None
    assert not first[1] and second[1]  # the first written at once, the second queued
    # This turn goes on past the timeout (other work: blocking is the point), and the
    # first's answer has come by its end, so the loop reads it before the next timers.
    conn = client.conns[0]
    assert conn is not None
    assert select.select([conn.fd], [], [], 1.0)[0]
    time.sleep(2 * timeout)  # noqa: ASYNC251
    assert (await first[0]).allowed
    assert (await second[0]).allowed
    await client.aclose()
