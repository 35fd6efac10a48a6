"""Sending mail: an interface, and the backends that need no mail server.

``file`` (the default) writes each message as an ``.eml`` file into a
directory (``SLEIGH_HOME/mail``), where a developer can open it;
``console`` logs it. A production shop plugs an SMTP or API backend in
behind the same :class:`Mailer` interface.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import time
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Protocol

log = logging.getLogger("sleigh.web.mail")

SENDER = "sleigh shop <orders@sleigh.invalid>"


class Mailer(Protocol):
    async def send(self, to: str, subject: str, body: str) -> None:
        """Send a plain-text message to *to*."""
        ...


def message(to: str, subject: str, body: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = SENDER
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = make_msgid(domain="sleigh.invalid")
    msg.set_content(body)
    return msg


class FileMailer:
    """Writes each message to ``DIR/<time>-<random>.eml`` (atomically)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _write(self, data: bytes) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{time.time():.6f}-{secrets.token_hex(4)}.eml"
        tmp = self.directory / f".{name}.tmp"
        with open(tmp, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        final = self.directory / name
        tmp.replace(final)
        return final

    async def send(self, to: str, subject: str, body: str) -> None:
        path = await asyncio.to_thread(self._write, bytes(message(to, subject, body)))
        log.info("mail to %s (%s) written to %s", to, subject, path)


class ConsoleMailer:
    """Logs each message (at INFO, on stderr with the rest of the log)."""

    async def send(self, to: str, subject: str, body: str) -> None:
        log.info("mail to %s: %s\n%s", to, subject, body)
