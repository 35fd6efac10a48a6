"""RESP2 replies (and RESP3's null), encoded for the wire; see protocol.py's diagram.

Pure functions returning bytes, on the hot path of every command.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

OK: bytes = b"+OK\r\n"
PONG: bytes = b"+PONG\r\n"
NULL_BULK: bytes = b"$-1\r\n"
NULL_ARRAY: bytes = b"*-1\r\n"
EMPTY_ARRAY: bytes = b"*0\r\n"
#: RESP3's null, for connections that said ``HELLO 3``.
NULL: bytes = b"_\r\n"

_ERROR_CODE = re.compile(r"[A-Z]+(?: |$)")


def simple(text: str) -> bytes:
    """``+text\\r\\n``, a status reply.

    :raises ValueError: if ``text`` holds a CR or LF (it would end the reply early).
    """
    if "\r" in text or "\n" in text:
        raise ValueError(f"a simple string cannot hold CR or LF: {text!r}")
    return b"+%s\r\n" % text.encode()


def error(text: str) -> bytes:
    """``-CODE text\\r\\n``, an error reply.

    If the first word of ``text`` (up to the first space) is all capitals
    A-Z, it is the error code and ``text`` goes out as is (``"WRONGTYPE
    ..."``, ``"ERR ..."``, ``"OOM ..."``); otherwise ``"ERR "`` is put in front
    (``"Protocol error: ..."`` becomes ``"ERR Protocol error: ..."``). CR and
    LF in ``text`` become spaces.
    """
    text = text.replace("\r", " ").replace("\n", " ")
    if _ERROR_CODE.match(text) is None:
        text = f"ERR {text}" if text else "ERR"
    return b"-%s\r\n" % text.encode()


def integer(n: int) -> bytes:
    """``:n\\r\\n``, an integer reply."""
    return b":%d\r\n" % n


def bulk(data: bytes | bytearray | memoryview | None) -> bytes:
    """``$len\\r\\ndata\\r\\n``, a bulk string reply; None gives the null bulk ``$-1\\r\\n``."""
    if data is None:
        return NULL_BULK
    size = data.nbytes if isinstance(data, memoryview) else len(data)
    return b"".join((b"$%d\r\n" % size, data, b"\r\n"))


def array(items: Sequence[bytes | bytearray | memoryview | None], null: bytes = NULL_BULK) -> bytes:
    """An array of bulk strings (None gives *null*: ``NULL_BULK``, or ``NULL`` in RESP3)."""
    return b"".join(
        [b"*%d\r\n" % len(items)]
        # %b takes any buffer at run time; typeshed only knows bytes.
        + [null if x is None else b"$%d\r\n%b\r\n" % (len(x), x) for x in items]  # type: ignore[str-format]
    )


def array_raw(encoded: Sequence[bytes]) -> bytes:
    """An array whose elements are replies already encoded (nested arrays, mixed types)."""
    return b"".join([b"*%d\r\n" % len(encoded), *encoded])
