"""Logging for every sleigh program: one line per record on stderr.

Two formats, chosen by the ``[logging]`` section (``SLEIGH_LOGGING_FORMAT``):

``plain``
    ``2026-11-27T09:30:00.123Z INFO sleigh.web: message``, in UTC with
    milliseconds, followed by the traceback lines when there is one.
``json``
    one JSON object per line with ``ts``, ``level``, ``logger``,
    ``program``, ``pid``, ``msg``, ``exc`` (the formatted traceback, only
    when there is one) and every JSON-serialisable field given through
    ``extra={...}``.

:func:`setup_logging` owns exactly one handler on the root logger, so
calling it again (after a reload, or from tests) replaces that handler
rather than adding a second one.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from typing import ClassVar, TextIO

from .config import Section, choice, setting

__all__ = ["LoggingConfig", "direct", "setup_logging"]

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}

# The attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None)).keys()
) | {"message", "asctime", "taskName"}


@dataclass(frozen=True)
class LoggingConfig(Section):
    """The ``[logging]`` section."""

    SECTION: ClassVar[str] = "logging"
    level: str = setting("info", kind=choice(*LEVELS), help="Least severe level written to stderr.")
    format: str = setting(
        "plain", kind=choice("plain", "json"), help="plain lines for people, json for machines."
    )


def _utc_timestamp(created: float) -> str:
    """``created`` (seconds since the epoch) as ``YYYY-MM-DDTHH:MM:SS.mmmZ``."""
    seconds = int(created)
    millis = int((created - seconds) * 1000)
    return f"{_utc_second(seconds)}.{millis:03d}Z"


@functools.lru_cache(maxsize=8)
def _utc_second(seconds: int) -> str:
    """The second's part of :func:`_utc_timestamp`, formatted once per second."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


class PlainFormatter(logging.Formatter):
    """``<utc time> <LEVEL> <logger>: <message>`` plus traceback lines."""

    def line(self, created: float, level: str, name: str, message: str, _: object = None) -> str:
        """A record's line from its parts (no traceback)."""
        return f"{_utc_timestamp(created)} {level} {name}: {message}"

    def format(self, record: logging.LogRecord) -> str:
        line = self.line(record.created, record.levelname, record.name, record.getMessage())
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def __init__(self, program: str) -> None:
        super().__init__()
        self.program = program

    def _entry(self, created: float, level: str, name: str, message: str) -> dict[str, object]:
        return {
            "ts": _utc_timestamp(created),
            "level": level,
            "logger": name,
            "program": self.program,
            "pid": os.getpid(),
            "msg": message,
        }

    def line(
        self, created: float, level: str, name: str, message: str, fields: dict[str, object]
    ) -> str:
        """A record's line from its parts and its JSON-serialisable *fields*."""
        entry = self._entry(created, level, name, message)
        for key, value in fields.items():
            entry.setdefault(key, value)
        return json.dumps(entry, ensure_ascii=False, default=str)

    def format(self, record: logging.LogRecord) -> str:
        entry = self._entry(record.created, record.levelname, record.name, record.getMessage())
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        for key, value in vars(record).items():
            if key in _STANDARD_ATTRS or key in entry:
                continue
            try:
                json.dumps(value)
            except (TypeError, ValueError):
                continue
            entry[key] = value
        return json.dumps(entry, ensure_ascii=False, default=str)


class _SleighHandler(logging.StreamHandler[TextIO]):
    """The handler :func:`setup_logging` installs; recognised by its class.

    Records are written at once. The lines of the direct path (:meth:`info_line`,
    the access log's) are, in an event loop's thread, written together at the
    start of the loop's next turn, in one write (a web worker's access log was a
    write a request: about 10% of a warm product page's CPU, measured with the
    access log on and off); a record is written after what waits. A process
    killed with SIGKILL loses at most the access lines of its last loop turn.
    """

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self._lines: list[str] = []
        self._flush_on: asyncio.AbstractEventLoop | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._add(self.format(record), at_once=True)
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def info_line(self, name: str, message: str, fields: dict[str, object]) -> None:
        """Write what an INFO record of logger *name* with *message* and the extra
        *fields* would be written as, without making the record (see :func:`direct`)."""
        formatter = self.formatter
        assert isinstance(formatter, (PlainFormatter, JsonFormatter))
        self.acquire()  # as Handler.handle holds it around emit
        try:
            self._add(formatter.line(time.time(), "INFO", name, message, fields), at_once=False)
        finally:
            self.release()

    def _add(self, text: str, *, at_once: bool) -> None:
        """Queue *text*; write what waits now if *at_once* or outside a loop."""
        self._lines.append(text)
        if at_once or not self._deferred():
            self.flush()

    def _deferred(self) -> bool:
        """Whether the waiting lines will be written at the next loop turn."""
        due = self._flush_on
        if due is not None and due.is_running():  # (asking for the loop costs a getpid)
            return True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        loop.call_soon(self.flush)
        self._flush_on = loop
        return True

    def flush(self) -> None:
        self.acquire()
        try:
            self._flush_on = None
            if self._lines:
                lines, self._lines = self._lines, []
                self.stream.write("\n".join(lines) + "\n")
            super().flush()
        finally:
            self.release()


def direct(logger: logging.Logger) -> _SleighHandler | None:
    """The handler :func:`setup_logging` installed, if an INFO record of *logger*
    would reach it and nothing else, with no filter on the way: then a hot path
    (the access log) may write its line with :meth:`_SleighHandler.info_line`."""
    if logger.disabled or not logger.isEnabledFor(logging.INFO):
        return None
    node: logging.Logger | None = logger
    while node is not None:
        if node.filters:
            return None
        if node.parent is None:  # the root
            handlers = node.handlers
            if len(handlers) != 1 or type(handlers[0]) is not _SleighHandler:
                return None
            handler = handlers[0]
            return handler if handler.level <= logging.INFO and not handler.filters else None
        if node.handlers or not node.propagate:
            return None
        node = node.parent
    return None


def setup_logging(cfg: LoggingConfig, *, program: str, stream: TextIO | None = None) -> None:
    """Send every log record at or above ``cfg.level`` to *stream* (stderr by default).

    :param cfg: the ``[logging]`` section.
    :param program: the program's name, written into JSON records.
    :param stream: where to write; ``sys.stderr`` as it is at call time if ``None``.
    """
    # Nothing here writes the caller's file and line, the thread or the process
    # name, so records are made without looking them up (the logging HOWTO's
    # "Optimization"); the JSON format's pid comes from os.getpid().
    logging._srcfile = None
    logging.logThreads = False
    logging.logMultiprocessing = False
    logging.logProcesses = False
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _SleighHandler)]:
        root.removeHandler(old)
        old.close()
    handler = _SleighHandler(stream if stream is not None else sys.stderr)
    formatter: logging.Formatter
    formatter = JsonFormatter(program) if cfg.format == "json" else PlainFormatter()
    handler.setFormatter(formatter)
    root.addHandler(handler)
    root.setLevel(LEVELS[cfg.level])
