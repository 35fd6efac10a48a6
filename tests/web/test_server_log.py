"""aiohttp's server log in a worker: a client's malformed HTTP on one line, bugs in full."""

from __future__ import annotations

import logging

import pytest
from aiohttp.http_exceptions import BadHttpMessage, LineTooLong

from sleigh.webapp.server_log import server_log


def test_malformed_http_is_one_info_line(caplog: pytest.LogCaptureFixture) -> None:
    log = server_log()
    caplog.set_level(logging.DEBUG, logger="aiohttp.server")
    log.exception(
        "Error handling request from %s", "192.0.2.7", exc_info=LineTooLong("a" * 9000, 8190)
    )
    log.exception("Error handling request from %s", None, exc_info=BadHttpMessage("bad\nheader"))
    first, second = caplog.records
    assert first.levelno == logging.INFO and first.exc_info is None
    assert first.getMessage().startswith("malformed request from 192.0.2.7: LineTooLong: Got more")
    assert len(first.getMessage()) <= 250 and "\n" not in first.getMessage()
    assert second.getMessage() == "malformed request from -: BadHttpMessage: bad header"


def test_a_bug_keeps_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    log = server_log()
    caplog.set_level(logging.DEBUG, logger="aiohttp.server")
    try:
        raise ValueError("a handler's bug")
    except ValueError:
        log.exception("Unhandled exception")
    (record,) = caplog.records
    assert record.levelno == logging.ERROR and record.exc_info is not None
    assert record.getMessage() == "Unhandled exception"
