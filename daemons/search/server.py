"""The ZeroMQ plumbing of ``sleigh-searchd``: a ROUTER front, a broker, worker threads.

::

    clients (DEALER) ──▶ front ROUTER ─┐                 ┌─ worker 1 (DEALER) ─┐
                                       │ broker thread   ├─ worker 2           ├─ index
                                       └─ back ROUTER ◀──┴─ worker N ──────────┘ (GIL released)
                                          inproc

The broker hands a request only to an idle worker (least recently used
first) and reads the front only while one is idle, so a slow query never
holds up a fast one behind it (a DEALER backend would deal requests round
robin to busy workers). Back frames::

    worker → broker   [b"READY"]                      once, at start
    broker → worker   [peer, request id, body]        a request
    worker → broker   [peer, request id, reply]       its reply; the worker is idle again
    broker → worker   [b"STOP"]                       exit

Draining (:meth:`Server.drain`): new requests are answered at once with an
``unavailable`` error reply (so clients fail over to another replica) while
the requests in flight finish; then the workers stop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import zmq

from .handlers import Context, answer
from .protocol import encode, error_reply, request_id_of

log = logging.getLogger("sleigh.search.server")

__all__ = ["Server"]

_READY = b"READY"
_STOP = b"STOP"
_DRAIN = b"DRAIN"
_NOW = b"NOW"
_UNAVAILABLE = encode(error_reply("unavailable", "the search daemon is stopping; try another"))


@dataclass
class _BrokerState:
    idle: deque[bytes] = field(default_factory=deque)
    busy: set[bytes] = field(default_factory=set)
    draining: bool = False
    stopped_workers: int = 0


def readable(sock: zmq.Socket[bytes]) -> bool:
    """Whether a message waits on *sock* (cheaper than a failed non-blocking read)."""
    events = sock.get(zmq.EVENTS)
    return isinstance(events, int) and bool(events & zmq.POLLIN)


class Server:
    """The front socket, the broker thread and the workers.

    :param zctx: the ZeroMQ context (the caller terminates it).
    :param front: the bound ROUTER socket; the broker thread takes it over.
    :param ctx: what the handlers use.
    """

    def __init__(
        self, zctx: zmq.Context[zmq.Socket[bytes]], front: zmq.Socket[bytes], ctx: Context
    ) -> None:
        self.zctx = zctx
        self.front = front
        self.ctx = ctx
        self._name = f"inproc://searchd-{id(self):x}"
        self._back = zctx.socket(zmq.ROUTER)
        self._back.bind(self._name + "-back")
        self._control = zctx.socket(zmq.PAIR)
        self._control.bind(self._name + "-control")
        self._workers = [
            threading.Thread(target=self._work, name=f"searchd-worker-{i}", daemon=True)
            for i in range(ctx.workers)
        ]
        self._broker = threading.Thread(target=self._broke, name="searchd-broker", daemon=True)
        self.finished = threading.Event()

    def start(self) -> None:
        for worker in self._workers:
            worker.start()
        self._broker.start()

    def drain(self) -> None:
        """Refuse new requests, finish those in flight, stop the workers (returns at once)."""
        self._command(_DRAIN)

    def stop_now(self) -> None:
        """Stop at once: requests in flight get no reply."""
        self._command(_NOW)

    def _command(self, what: bytes) -> None:
        if not self.finished.is_set():
            self._control.send(what)

    def close(self) -> None:
        """Close the sockets of this thread (after :attr:`finished`)."""
        self._control.close(linger=0)

    # -- worker threads -----------------------------------------------------

    def _work(self) -> None:
        sock = self.zctx.socket(zmq.DEALER)
        try:
            sock.connect(self._name + "-back")
            sock.send(_READY)
            while True:
                frames = sock.recv_multipart(copy=True)
                if frames == [_STOP]:
                    return
                peer, request = frames[0], frames[1:]
                started = time.perf_counter_ns()
                op, reply = answer(self.ctx, request)
                body = encode(reply)
                sock.send_multipart([peer, request_id_of(request), body])
                micros = (time.perf_counter_ns() - started) // 1000
                self.ctx.stats.record(op, micros, bool(reply["ok"]))
        except zmq.ContextTerminated:
            return
        finally:
            sock.close(linger=0)

    # -- the broker thread --------------------------------------------------

    def _broke(self) -> None:
        control = self.zctx.socket(zmq.PAIR)
        control.connect(self._name + "-control")
        state = _BrokerState()
        poller = zmq.Poller()
        poller.register(self._back, zmq.POLLIN)
        poller.register(control, zmq.POLLIN)
        reading_front = False
        try:
            while not (state.draining and state.stopped_workers == len(self._workers)):
                want_front = bool(state.idle) or state.draining
                if want_front != reading_front:
                    if want_front:
                        poller.register(self.front, zmq.POLLIN)
                    else:
                        poller.unregister(self.front)
                    reading_front = want_front
                events = dict(poller.poll())
                if control in events and self._on_control(control.recv(), state):
                    break
                if self._back in events:
                    self._on_back(state)
                if self.front in events:
                    self._on_front(state)
        except Exception:
            log.exception("the broker failed; the daemon stops")
        finally:
            self._shutdown(state, control)

    def _on_control(self, what: bytes, state: _BrokerState) -> bool:
        if what == _NOW:
            return True
        state.draining = True
        log.info("draining: %d requests in flight", len(state.busy))
        self._stop_idle(state)
        return False

    def _stop_idle(self, state: _BrokerState) -> None:
        while state.idle:
            self._back.send_multipart([state.idle.popleft(), _STOP])
            state.stopped_workers += 1

    def _on_back(self, state: _BrokerState) -> None:
        for _ in range(64):
            if not readable(self._back):
                return
            frames = self._back.recv_multipart()
            worker, rest = frames[0], frames[1:]
            if rest != [_READY]:
                state.busy.discard(worker)
                self.front.send_multipart(rest)
            state.idle.append(worker)
            if state.draining:
                self._stop_idle(state)

    def _on_front(self, state: _BrokerState) -> None:
        for _ in range(64):
            if not (state.idle or state.draining) or not readable(self.front):
                return
            frames = self.front.recv_multipart()
            if len(frames) < 2:
                continue  # nothing to route a reply to
            if state.draining:
                self.ctx.stats.busy()
                self.front.send_multipart([frames[0], request_id_of(frames[1:]), _UNAVAILABLE])
                continue
            worker = state.idle.popleft()
            state.busy.add(worker)
            self._back.send_multipart([worker, *frames])

    def _shutdown(self, state: _BrokerState, control: zmq.Socket[bytes]) -> None:
        for worker in state.idle:
            self._back.send_multipart([worker, _STOP])
        self.front.close(linger=0)
        self._back.close(linger=0)
        control.close(linger=0)
        self.finished.set()
