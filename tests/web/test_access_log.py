"""The access log's line: written straight to the sleigh handler when nothing else
listens, and the same line as the logging path writes when something does."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from sleigh.daemons.runtime.logs import LoggingConfig, direct, setup_logging
from sleigh.webapp.access import FORMAT, AccessLogger

ACCESS = logging.getLogger("sleigh.web.access")


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """A stream to log to; the root logger is put back as it was afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield io.StringIO()
    root.handlers[:] = handlers
    root.setLevel(level)
    ACCESS.filters.clear()
    ACCESS.propagate = True


def only_sleigh(stream: io.StringIO, cfg: LoggingConfig) -> None:
    """Log to *stream* as a worker does, with nothing else on the root logger (pytest
    adds its capture handlers as each test starts: they are set aside here)."""
    logging.getLogger().handlers.clear()
    setup_logging(cfg, program="sleigh-web", stream=stream)


def _log_one() -> None:
    request = make_mocked_request("GET", "/p/5?ref=home%20page")
    response = web.Response(text="x" * 10, headers={"X-Request-Id": "r-1"})  # not sent: 0 bytes
    AccessLogger(ACCESS, FORMAT).log(request, response, 0.0123456)


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _body(line: str) -> str:
    return line.split(" ", 1)[1]  # without the time


def test_plain_line_is_the_same_both_ways(stream: io.StringIO) -> None:
    only_sleigh(stream, LoggingConfig())
    assert direct(ACCESS) is not None
    _log_one()
    captured = Captured()
    logging.getLogger().addHandler(captured)
    assert direct(ACCESS) is None  # another handler listens: the logging path
    _log_one()
    first, second = stream.getvalue().splitlines()
    assert _body(first) == _body(second)
    assert _body(first).startswith("INFO sleigh.web.access: ")
    assert first.endswith(' - "GET /p/5?ref=home%20page HTTP/1.1" 200 0 0.012346 r-1')
    [record] = captured.records
    assert (record.request_id, record.status, record.seconds) == ("r-1", 200, 0.012346)  # type: ignore[attr-defined]


def test_json_line_is_the_same_both_ways(stream: io.StringIO) -> None:
    only_sleigh(stream, LoggingConfig(format="json"))
    assert direct(ACCESS) is not None
    _log_one()
    logging.getLogger().addHandler(Captured())
    _log_one()
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    del first["ts"], second["ts"]
    assert first == second
    assert first["request_id"] == "r-1" and first["status"] == 200 and first["level"] == "INFO"
    assert first["logger"] == "sleigh.web.access" and first["program"] == "sleigh-web"


def test_nothing_goes_straight_past_a_filter_a_level_or_a_stop(stream: io.StringIO) -> None:
    only_sleigh(stream, LoggingConfig())
    assert direct(ACCESS) is not None
    ACCESS.propagate = False
    assert direct(ACCESS) is None
    ACCESS.propagate = True
    ACCESS.addFilter(lambda record: False)
    assert direct(ACCESS) is None
    _log_one()
    assert stream.getvalue() == ""  # the filter was obeyed
    ACCESS.filters.clear()
    only_sleigh(stream, LoggingConfig(level="warning"))
    assert direct(ACCESS) is None
    _log_one()
    assert stream.getvalue() == ""


def test_behind_a_proxy_the_client_is_the_address_it_passes(stream: io.StringIO) -> None:
    only_sleigh(stream, LoggingConfig())
    assert AccessLogger.trusting("") is AccessLogger
    headers = {"X-Real-IP": "203.0.113.9"}
    request = make_mocked_request("GET", "/p/5", headers=headers)
    response = web.Response(text="x", headers={"X-Request-Id": "r-2"})
    AccessLogger.trusting("X-Real-IP")(ACCESS, FORMAT).log(request, response, 0.001)
    AccessLogger(ACCESS, FORMAT).log(request, response, 0.001)  # (the peer: none here)
    behind, direct_line = stream.getvalue().splitlines()
    assert ' 203.0.113.9 "GET /p/5 HTTP/1.1" 200 ' in behind
    assert ' - "GET /p/5 HTTP/1.1" 200 ' in direct_line
