"""setup_logging: plain and JSON lines, parsed back."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
from collections.abc import Iterator

import pytest

from sleigh.daemons.runtime import logs
from sleigh.daemons.runtime.config import ConfigError, load_section
from sleigh.daemons.runtime.logs import LoggingConfig, PlainFormatter, setup_logging

PLAIN = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (\w+) ([\w.]+): (.*)$")


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """A stream to log to; the root logger is put back as it was afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield io.StringIO()
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


def test_plain_line_format(stream: io.StringIO) -> None:
    setup_logging(LoggingConfig(), program="test", stream=stream)
    logging.getLogger("sleigh.web").info("hello %s", "shopper")
    [line] = stream.getvalue().splitlines()
    match = PLAIN.match(line)
    assert match, line
    assert match.groups() == ("INFO", "sleigh.web", "hello shopper")


def test_plain_timestamp_is_utc_with_milliseconds() -> None:
    record = logging.LogRecord("sleigh.web", logging.WARNING, "f", 1, "m", None, None)
    record.created = 1795771800.1239  # 2026-11-27 09:30:00.1239 UTC
    assert PlainFormatter().format(record) == "2026-11-27T09:30:00.123Z WARNING sleigh.web: m"


def test_plain_traceback_follows_the_line(stream: io.StringIO) -> None:
    setup_logging(LoggingConfig(), program="test", stream=stream)
    try:
        raise ValueError("bad basket")
    except ValueError:
        logging.getLogger("sleigh.cart").exception("checkout failed")
    first, *rest = stream.getvalue().splitlines()
    assert PLAIN.match(first) and first.endswith("ERROR sleigh.cart: checkout failed")
    assert rest[0] == "Traceback (most recent call last):"
    assert rest[-1] == "ValueError: bad basket"


def test_level_filters(stream: io.StringIO) -> None:
    setup_logging(LoggingConfig(level="warning"), program="test", stream=stream)
    log = logging.getLogger("sleigh.test")
    log.info("hidden")
    log.warning("shown")
    [line] = stream.getvalue().splitlines()
    assert line.endswith("WARNING sleigh.test: shown")


def test_setup_twice_writes_each_record_once(stream: io.StringIO) -> None:
    second = io.StringIO()
    setup_logging(LoggingConfig(), program="test", stream=stream)
    setup_logging(LoggingConfig(level="debug"), program="test", stream=second)
    logging.getLogger("sleigh.test").debug("once")
    assert stream.getvalue() == ""
    assert len(second.getvalue().splitlines()) == 1


def test_json_lines(stream: io.StringIO) -> None:
    setup_logging(LoggingConfig(format="json"), program="sleigh-web", stream=stream)
    log = logging.getLogger("sleigh.web")
    log.info("two\nlines", extra={"request_id": "r-42", "status": 200, "opaque": object()})
    stock: dict[str, int] = {}
    try:
        stock["missing"]
    except KeyError:
        log.error("lookup failed", exc_info=True)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["level"] == "INFO" and first["logger"] == "sleigh.web"
    assert first["msg"] == "two\nlines"
    assert first["program"] == "sleigh-web" and first["pid"] == os.getpid()
    assert (first["request_id"], first["status"]) == ("r-42", 200)
    assert "opaque" not in first and "exc" not in first
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["ts"])
    assert second["level"] == "ERROR"
    assert second["exc"].startswith("Traceback") and "KeyError: 'missing'" in second["exc"]


def test_config_section_from_environment() -> None:
    cfg = load_section(LoggingConfig, {}, {"SLEIGH_LOGGING_LEVEL": "debug"})
    assert (cfg.level, cfg.format) == ("debug", "plain")
    assert load_section(LoggingConfig, {"format": "json"}, {}).format == "json"
    with pytest.raises(ConfigError, match=r"^logging.format: expected one of plain, json"):
        load_section(LoggingConfig, {"format": "xml"}, {})
    with pytest.raises(ConfigError, match="SLEIGH_LOGGING_LEVEL"):
        load_section(LoggingConfig, {}, {"SLEIGH_LOGGING_LEVEL": "loud"})


def _access(message: str) -> None:
    """An access line by the direct path (as :mod:`sleigh.webapp.access` writes it)."""
    [handler] = [h for h in logging.getLogger().handlers if isinstance(h, logs._SleighHandler)]
    handler.info_line("sleigh.web.access", message, {})


def test_in_a_loop_access_lines_are_written_together_at_the_next_turn(
    stream: io.StringIO,
) -> None:
    setup_logging(LoggingConfig(), program="test", stream=stream)
    writes: list[str] = []
    write = stream.write

    def counted(text: str) -> int:
        writes.append(text)
        return write(text)

    stream.write = counted  # type: ignore[method-assign]

    async def turn() -> tuple[str, str]:
        for n in range(3):
            _access(f"request {n}")
        waiting = stream.getvalue()
        await asyncio.sleep(0)  # the next turn
        return waiting, stream.getvalue()

    waiting, written = asyncio.run(turn())
    assert waiting == ""
    assert [line.rsplit(": ", 1)[1] for line in written.splitlines()] == [
        "request 0",
        "request 1",
        "request 2",
    ]
    assert len(writes) == 1


def test_a_record_is_written_at_once_after_what_waits(stream: io.StringIO) -> None:
    setup_logging(LoggingConfig(), program="test", stream=stream)
    log = logging.getLogger("sleigh.web")

    async def turn() -> str:
        _access("first")
        log.info("second")  # a daemon's own lines are never held back
        return stream.getvalue()

    lines = asyncio.run(turn()).splitlines()
    assert [line.rsplit(": ", 1)[1] for line in lines] == ["first", "second"]


def test_lines_left_by_a_stopped_loop_are_written_by_the_next(stream: io.StringIO) -> None:
    setup_logging(LoggingConfig(), program="test", stream=stream)
    loop = asyncio.new_event_loop()
    loop.call_soon(_access, "from a loop that stops")
    loop.call_soon(loop.stop)
    loop.run_forever()  # stops before the turn that would have written the line
    loop.close()
    assert stream.getvalue() == ""

    async def later() -> None:
        _access("from the next loop")
        await asyncio.sleep(0)

    asyncio.run(later())
    lines = stream.getvalue().splitlines()
    assert [line.rsplit(": ", 1)[1] for line in lines] == [
        "from a loop that stops",
        "from the next loop",
    ]
    _access("outside any loop")
    assert stream.getvalue().splitlines()[-1].endswith("outside any loop")
