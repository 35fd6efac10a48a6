"""Benchmark the RESP request parser of ``sleigh-cached`` against hiredis's ``Reader``.

The workload is what the web tier sends: small GET and SET commands (keys
like ``product:123456:inventory``, values of 16-256 bytes, 4 GETs to 1 SET),
as RESP arrays, fed in batches of 1 command (one request per round trip) and
of 32 (a pipeline). Each contender gets one ``feed`` per batch and drains it.

Contenders, side by side with the ratio to the Python parser:

- ``python``: this package's pure-Python parser (``RequestParserPy``: limits
  checked as headers arrive, every element checked to be a bulk string);
- ``native``: its compiled twin, ``sleigh.core_ext._resp.RequestParser``, the
  same contract (left out, with a note, when it is not built);
- ``hiredis+checks``: hiredis's C ``Reader`` doing the parsing, preceded by the
  Python header walk the contract needs anyway (limits before buffering; no
  ``+``/``:`` elements, which ``Reader`` would accept as bytes/int); only its
  fast path is written here (whole, valid arrays), so it is a lower bound;
- ``hiredis bare``: ``Reader`` alone, no limits and no element checks, which
  does not meet the contract; the ceiling, for scale.

Run: ``.venv/bin/python scripts/bench_resp_parser.py [--commands N] [--repeat R]``
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from collections.abc import Callable

import hiredis

from sleigh.daemons.cache.protocol import ProtocolError, RequestParserPy

try:
    from sleigh.core_ext._resp import RequestParser as RequestParserC
except ImportError:
    RequestParserC = None  # type: ignore[assignment, misc]

_REQUEST_MAX = 2 * 1024 * 1024
# The same patterns as protocol.py's fast path.
_FIRST_HEADERS = re.compile(rb"\*([1-9][0-9]{0,18})\r\n\$(0|[1-9][0-9]{0,18})\r\n")
_NEXT_HEADER = re.compile(rb"\r\n\$(0|[1-9][0-9]{0,18})\r\n")
_MAX_ARGS = 100_000


def _encode(command: list[bytes]) -> bytes:
    parts = [b"*%d\r\n" % len(command)]
    parts += [b"$%d\r\n%b\r\n" % (len(arg), arg) for arg in command]
    return b"".join(parts)


def workload(count: int, seed: int = 2000) -> list[bytes]:
    """``count`` encoded commands, deterministic for ``seed``."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        key = b"product:%d:%s" % (rng.randrange(10**6), rng.choice([b"inventory", b"desc"]))
        if rng.random() < 0.8:
            out.append(_encode([b"GET", key]))
        else:
            value = rng.randbytes(rng.randrange(16, 257))
            out.append(_encode([b"SET", key, value, b"EX", b"%d" % rng.randrange(5, 3600)]))
    return out


def batches(encoded: list[bytes], size: int) -> list[bytes]:
    return [b"".join(encoded[i : i + size]) for i in range(0, len(encoded), size)]


class HiredisChecked:
    """hiredis ``Reader`` behind the header walk the contract requires (fast path only).

    The walk is the Python parser's fast path without the slicing: strict
    lengths, ``$`` before every argument, CRLF after it, the limits. What it
    cannot take whole (inline, split or bad requests) is out of scope here.
    """

    def __init__(self, *, request_max: int, max_args: int) -> None:
        self._reader = hiredis.Reader()
        self._request_max = request_max
        self._max_count = max_args + 1
        self._whole = 0

    def feed(self, data: bytes) -> None:
        end = len(data)
        pos = 0
        first, following = _FIRST_HEADERS.match, _NEXT_HEADER.match
        while pos < end:
            m = first(data, pos)
            if m is None or int(m[1]) > self._max_count:
                raise ProtocolError("not on the fast path")
            stop = m.end() + int(m[2])
            for _ in range(int(m[1]) - 1):
                m = following(data, stop)
                if m is None:
                    raise ProtocolError("not on the fast path")
                stop = m.end() + int(m[1])
            if data[stop : stop + 2] != b"\r\n" or stop + 2 - pos > self._request_max:
                raise ProtocolError("not on the fast path")
            pos = stop + 2
            self._whole += 1
        self._reader.feed(data)

    def commands(self) -> list[list[bytes]]:
        gets = self._reader.gets
        out = [gets() for _ in range(self._whole)]
        self._whole = 0
        return out


class HiredisBare:
    """hiredis ``Reader`` alone: no limits, no element checks (the ceiling)."""

    def __init__(self, *, request_max: int, max_args: int) -> None:
        self._reader = hiredis.Reader()

    def feed(self, data: bytes) -> None:
        self._reader.feed(data)

    def commands(self) -> list[list[bytes]]:
        out = []
        gets = self._reader.gets
        while (reply := gets()) is not False:
            out.append(reply)
        return out


def run(factory: Callable[..., object], feeds: list[bytes], expected: int, repeat: int) -> float:
    """Best commands/s over ``repeat`` passes, each through a fresh parser."""
    best = 0.0
    for _ in range(repeat):
        parser = factory(request_max=_REQUEST_MAX, max_args=_MAX_ARGS)
        feed, commands = parser.feed, parser.commands  # type: ignore[attr-defined]
        got = 0
        start = time.perf_counter()
        for data in feeds:
            feed(data)
            got += len(commands())
        elapsed = time.perf_counter() - start
        if got != expected:
            raise SystemExit(f"{factory.__name__} parsed {got} commands, expected {expected}")
        best = max(best, got / elapsed)
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--commands", type=int, default=64_000, help="commands per pass")
    ap.add_argument("--repeat", type=int, default=7, help="passes; the best counts")
    args = ap.parse_args(argv)
    encoded = workload(args.commands)
    reference = [list(c) for c in _parse_all(encoded)]
    contenders: list[tuple[str, Callable[..., object]]] = [("python", RequestParserPy)]
    out = sys.stdout
    if RequestParserC is not None:
        contenders.append(("native", RequestParserC))
    else:
        out.write("native parser not built (setup.py build_ext --inplace): left out\n")
    contenders += [("hiredis+checks", HiredisChecked), ("hiredis bare", HiredisBare)]
    for name, factory in contenders:
        if _parse_all(encoded, factory) != reference:
            raise SystemExit(f"{name} disagrees with the Python parser")
    out.write(f"{args.commands} commands, best of {args.repeat}; ratio = contender / python\n")
    out.write(f"{'batch':>5}  {'contender':<15} {'commands/s':>12}  {'ratio':>6}\n")
    for size in (1, 32):
        feeds = batches(encoded, size)
        base = 0.0
        for name, factory in contenders:
            rate = run(factory, feeds, len(encoded), args.repeat)
            base = base or rate
            out.write(f"{size:>5}  {name:<15} {rate:>12,.0f}  {rate / base:>6.2f}\n")
    return 0


def _parse_all(
    encoded: list[bytes], factory: Callable[..., object] = RequestParserPy
) -> list[list[bytes]]:
    parser = factory(request_max=_REQUEST_MAX, max_args=_MAX_ARGS)
    parser.feed(b"".join(encoded))  # type: ignore[attr-defined]
    result: list[list[bytes]] = parser.commands()  # type: ignore[attr-defined]
    return result


if __name__ == "__main__":
    raise SystemExit(main())
