"""The throttle middleware: one question to ``sleigh-throttled`` per request.

Keys per request (their kinds name rules; a kind without a rule is left
out): ``ip:ADDR`` and ``cpu:ADDR`` (cost 0: denied only while the address
is in CPU debt), ``session:COOKIE`` when the shopper has a session, and
``CLASS:ADDR`` when the path is under a route class's prefix
(``login:ADDR`` for ``/account/signin``).

* Over a limit: ``429 Too Many Requests`` with ``Retry-After`` (whole
  seconds, rounded up) and a friendly page, or JSON when the client asks
  for JSON. The denial is kept in this worker until its Retry-After (in
  GCRA it cannot become wrong earlier), so a hammering client costs no
  round trips.
* A ``GET`` or ``HEAD`` outside the classes that fail closed runs while the
  question is on its way: the question is written before the handler
  starts (the questions of one loop turn in one write, the requests
  yielding once for it), and the answer awaited when it returns, so the round trip hides
  behind the handler's own work. A denial replaces the response before a
  byte of it is sent (the handler's work is wasted, once per key and
  worker: the denial is then kept). Every other request waits for the
  answer before its handler runs.
* After the response: the request's CPU time (this thread's, so an upper
  bound when requests interleave) is added to ``cpu:ADDR``; each worker
  sends what it gathered every ``throttle.cpu_flush``, in one message.
* An answer later than ``throttle.timeout``: that request is decided by the
  in-process GCRA below; three late in a row count as unreachable.
* Daemon unreachable: fail **open** with an
  in-process GCRA whose limits are divided by ``throttle.app_hosts``, and
  fail **closed** (503) for the classes in ``throttle.fail_closed``; a
  loud log line when it starts and when it ends, and a counter. A class
  that fails closed always asks the daemon (over its own connection, with
  the longer ``throttle.closed_timeout``): a slow moment that sent browsing
  to the fallback does not refuse a shopper's sign-in.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CollectorRegistry

from ..daemons.control.settings import Settings
from ..daemons.throttle.aclient import Sent
from ..daemons.throttle.client import AsyncThrottleClient, Reply, addresses_from
from ..daemons.throttle.config import ThrottleConfig
from ..daemons.throttle.errors import ClientError, LateReply, ThrottleError
from ..daemons.throttle.gcra import Table
from ..daemons.throttle.rules import Rule, load_rules, scaled
from .throttle_keys import Ask, Asks
from .throttle_pages import Metrics, too_many, unavailable

log = logging.getLogger("sleigh.web.throttle")

_DENIALS_MAX = 100_000
_CPU_KEYS_MAX = 32
#: Late answers in a row after which the daemon is left alone for ``retry_after_failure``
#: (one late answer on a busy machine decides only its own request in process).
LATE_IN_A_ROW = 3
#: Methods whose handler runs while the daemon's answer is on its way.
_OVERLAPPED = frozenset({"GET", "HEAD"})


class Throttle:
    """The middleware and its state for one worker.

    :param client: the daemon's client (``None``: only the in-process fallback).
    :param closed_client: the client the classes that fail closed ask through, with the
        longer timeout (``None``: they use *client*, and refuse while it is down).
    :param clock: monotonic seconds (a parameter, for tests).
    """

    def __init__(
        self,
        cfg: ThrottleConfig,
        rules: dict[str, Rule],
        client: AsyncThrottleClient | None,
        clock: Callable[[], float] = time.monotonic,
        closed_client: AsyncThrottleClient | None = None,
    ) -> None:
        self.cfg = cfg
        self.client = client
        self.closed_client = closed_client
        self.clock = clock
        self.asks = Asks(cfg, frozenset(rules))
        self.fail_closed = frozenset(n.strip() for n in cfg.fail_closed.split(",") if n.strip())
        self.exempt = tuple(p.strip() for p in cfg.exempt.split(",") if p.strip())
        self.fallback = Table(scaled(rules, cfg.app_hosts))
        self.denials: dict[bytes, float] = {}
        self.down_until = 0.0
        self.down = client is None
        self.late = 0  # answers in a row that came too late
        self.cpu: dict[bytes, int] = {}
        self.cpu_sent = clock()
        self.tasks: set[asyncio.Task[None]] = set()
        self.metrics: Metrics | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Throttle:
        """The middleware for *settings* (the rules file is read here).

        :raises ThrottleError: for a bad rules file or route list.
        """
        cfg = settings.throttle
        rules = load_rules(cfg.rules_path(settings.home))
        addresses = addresses_from(cfg, settings.home)
        client = AsyncThrottleClient(addresses, timeout=cfg.timeout)
        closed = AsyncThrottleClient(addresses, timeout=cfg.closed_timeout)
        return cls(cfg, rules, client, closed_client=closed)

    def install(self, app: web.Application, registry: CollectorRegistry) -> None:
        """Add the middleware to *app* (before it starts) and its counters to *registry*."""
        self.metrics = Metrics(registry)
        app.middlewares.append(self.middleware)
        app.on_cleanup.append(self._cleanup)

    async def _cleanup(self, app: web.Application) -> None:
        await self._flush_cpu()
        for task in list(self.tasks):
            await task
        for client in (self.client, self.closed_client):
            if client is not None:
                await client.aclose()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Ask, answer 429/503 or serve; then note the request's CPU time."""
        if request.path.startswith(self.exempt):
            return await handler(request)
        ask = self.asks.ask_for(request)
        if not ask.keys:
            return await handler(request)
        if self.denials:
            wait = self._cached_denial(ask.keys)
            if wait is not None:
                return too_many(request, wait)
        if request.method in _OVERLAPPED and ask.route not in self.fail_closed:
            asked = self._start(ask)
            if asked is not None:
                node, sent, queued = asked
                if queued:  # the questions of this loop turn go out in one write, first
                    await asyncio.sleep(0)
                return await self._overlapped(request, handler, ask, node, sent)
        denied = await self._decide(request, ask)
        if denied is not None:
            return denied
        if ask.cpu is None:
            return await handler(request)
        started = time.thread_time_ns()
        try:
            return await handler(request)
        finally:
            self._charge(ask, started)

    def _start(self, ask: Ask) -> tuple[int, Sent, bool] | None:
        """The question, asked (``None``: it must be asked the waiting way): the daemon's
        index, the future of its answer, and whether it waits for the end of the loop
        turn to be written."""
        if self.client is None or self.clock() < self.down_until:
            return None
        return self.client.start(ask.keys, ask.costs, ask.body)

    async def _overlapped(
        self, request: web.Request, handler: Handler, ask: Ask, node: int, sent: Sent
    ) -> web.StreamResponse:
        """Run the handler while the daemon's answer is on its way; a denial replaces
        the response before anything of it is sent. (The answer is awaited here, not
        through :meth:`_decide`: three coroutines fewer on every GET.)"""
        started = time.thread_time_ns()
        failed: Exception | None = None
        try:
            response = await handler(request)
        except Exception as exc:  # refused anyway if the answer says so
            failed = exc
        except BaseException:  # cancelled: the answer, when it comes, is dropped
            sent.cancel()
            raise
        self._charge(ask, started)
        reply: Reply | None = None
        try:
            reply = self._answered(self._client().answer(await sent))
        except TimeoutError:
            self._late(self._client().late(node))
        except ThrottleError as exc:
            self._went_down(exc)
        denied = self._verdict(request, ask, reply)
        if failed is not None and denied is None:
            raise failed
        return response if denied is None else denied  # (a response's truth is its length)

    def _client(self) -> AsyncThrottleClient:
        assert self.client is not None  # (a question was asked through it)
        return self.client

    def _charge(self, ask: Ask, started: int) -> None:
        if ask.cpu is not None:
            self._note_cpu(ask.cpu, (time.thread_time_ns() - started) // 1000)

    def _cached_denial(self, keys: list[bytes]) -> float | None:
        """Seconds left of a denial this worker holds for one of *keys*, if any."""
        now = self.clock()
        for key in keys:
            until = self.denials.get(key)
            if until is not None:
                if until > now:
                    self._count("cache", "denied")
                    return until - now
                del self.denials[key]
        return None

    async def _decide(self, request: web.Request, ask: Ask) -> web.StreamResponse | None:
        """``None`` to serve the request, or the answer that refuses it (the daemon asked
        and waited for)."""
        keys, costs = ask.keys, ask.costs
        if ask.route in self.fail_closed and self.closed_client is not None:
            reply = await self._ask_closed(self.closed_client, keys, costs, ask.route)
        else:
            reply = await self._ask(keys, costs)
        return self._verdict(request, ask, reply)

    def _verdict(
        self, request: web.Request, ask: Ask, reply: Reply | None
    ) -> web.StreamResponse | None:
        """``None`` to serve the request, or the answer that refuses it, given the
        daemon's *reply* (``None``: none could be had; fail open or closed)."""
        keys, costs = ask.keys, ask.costs
        if reply is None:
            if ask.route in self.fail_closed:
                self._count("fallback", "refused")
                return unavailable(request, ask.route)
            reply = self._ask_fallback(keys, costs)
            source = "fallback"
        else:
            source = "daemon"
        if reply.allowed:
            self._count(source, "allowed")
            return None
        self._count(source, "denied")
        self._remember(keys[max(reply.limiting, 0)], reply.retry_after)
        return too_many(request, reply.retry_after)

    async def _ask(self, keys: list[bytes], costs: list[int]) -> Reply | None:
        """The daemon's answer, or ``None`` when it cannot be had (then fail open/closed)."""
        if self.client is None or self.clock() < self.down_until:
            if self.metrics is not None:
                self.metrics.fail_open.inc()
            return None
        try:
            return self._answered(await self.client.check(keys, costs))
        except LateReply as exc:
            self._late(exc)
        except ThrottleError as exc:
            self._went_down(exc)
        return None

    def _answered(self, reply: Reply) -> Reply:
        """*reply* came in time: the daemon is in charge (again)."""
        self.late = 0
        if self.down and self.clock() >= self.down_until:  # not an answer still on its way
            self.down = False
            log.warning("throttle daemon answers again: limits are enforced by it")
        return reply

    async def _ask_closed(
        self, client: AsyncThrottleClient, keys: list[bytes], costs: list[int], route: str
    ) -> Reply | None:
        """The daemon's answer for a class that fails closed, or ``None`` (refuse)."""
        try:
            return await client.check(keys, costs)
        except ThrottleError as exc:
            if self.metrics is not None:
                self.metrics.errors.inc()
            log.error("throttle daemon did not answer for %s (%s): refusing it", route, exc)
            return None

    def _late(self, exc: LateReply) -> None:
        """One answer came too late: this request is decided in process; ``LATE_IN_A_ROW``
        in a row, and the daemon is left alone for ``retry_after_failure``."""
        self.late += 1
        if self.late >= LATE_IN_A_ROW:
            self._went_down(exc)
            return
        if self.metrics is not None:
            self.metrics.late.inc()
            self.metrics.fail_open.inc()
        log.debug("a late answer from the throttle daemon (%s): decided in process", exc)

    def _went_down(self, exc: ThrottleError) -> None:
        """The daemon failed: fail open (or closed) for ``retry_after_failure``."""
        self.down_until = self.clock() + self.cfg.retry_after_failure
        if self.metrics is not None:
            self.metrics.errors.inc()
            self.metrics.fail_open.inc()
        if not self.down or not isinstance(exc, ClientError):
            log.error(
                "THROTTLE DAEMON UNAVAILABLE (%s): failing open for browsing with in-process"
                " limits (1/%d of each), failing closed for %s",
                exc,
                self.cfg.app_hosts,
                ", ".join(sorted(self.fail_closed)) or "nothing",
            )
        self.down = True

    def _ask_fallback(self, keys: list[bytes], costs: list[int]) -> Reply:
        decision = self.fallback.check(keys, costs, time.time_ns())
        return Reply(
            decision.allowed, decision.retry_after / 1e9, decision.remaining, decision.limiting
        )

    def _remember(self, key: bytes, retry: float) -> None:
        if len(self.denials) >= _DENIALS_MAX:
            now = self.clock()
            self.denials = {k: u for k, u in self.denials.items() if u > now}
        if len(self.denials) < _DENIALS_MAX:
            self.denials[key] = self.clock() + retry
        if self.metrics is not None:
            self.metrics.cached.set(len(self.denials))

    def _count(self, source: str, result: str) -> None:
        if self.metrics is not None:
            self.metrics.decision(source, result)

    def _note_cpu(self, key: bytes, micros: int) -> None:
        """Add *micros* to the request's ``cpu:`` key; send the gathered charges when due."""
        if micros <= 0:
            return
        self.cpu[key] = self.cpu.get(key, 0) + micros
        if len(self.cpu) >= _CPU_KEYS_MAX or self.clock() - self.cpu_sent >= self.cfg.cpu_flush:
            self._spawn(self._flush_cpu())  # it takes the charges now: one flush per batch

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _flush_cpu(self) -> Coroutine[Any, Any, None]:
        """Take the CPU time gathered since the last flush (at once, so requests until the
        flush runs start a new batch); the coroutine that charges it in one message."""
        self.cpu_sent = self.clock()
        charges, self.cpu = self.cpu, {}
        return self._charge_cpu(charges)

    async def _charge_cpu(self, charges: dict[bytes, int]) -> None:
        if not charges:
            return
        keys, costs = list(charges), list(charges.values())
        if self.client is not None and self.clock() >= self.down_until:
            try:
                await self.client.charge(keys, costs)
                return
            except LateReply as exc:
                self._late(exc)
            except ThrottleError as exc:
                self._went_down(exc)
        now = time.time_ns()
        for key, cost in charges.items():
            self.fallback.charge(key, cost, now)
