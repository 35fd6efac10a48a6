"""``activation_kwargs``: a child finds the handed-over sockets at fd 3, 4, … and nothing else."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from sleigh.daemons.runtime.activation import activation_kwargs

#: Prints what the child sees: LISTEN_* and, for fds 3..9, the bound port or null.
PROBE = """
import json, os, socket
seen = {}
for fd in range(3, 10):
    try:
        s = socket.socket(fileno=os.dup(fd))
    except OSError:
        seen[fd] = None
        continue
    seen[fd] = s.getsockname()[1]
    s.close()
print(json.dumps({"fds": os.environ["LISTEN_FDS"], "pid_ok": os.environ["LISTEN_PID"]
                  == str(os.getpid()), "seen": seen}))
"""


@pytest.fixture
def listeners() -> Iterator[list[socket.socket]]:
    """Two listening sockets at descriptors above 3 (some files opened first)."""
    files = [open(os.devnull, "rb") for _ in range(4)]  # noqa: SIM115
    socks = []
    for _ in range(2):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        socks.append(sock)
    try:
        assert min(s.fileno() for s in socks) > 4
        yield socks
    finally:
        for sock in socks:
            sock.close()
        for f in files:
            f.close()


def _check(out: str, socks: list[socket.socket]) -> None:
    seen = json.loads(out)
    ports = [s.getsockname()[1] for s in socks]
    assert seen["fds"] == "2"
    assert seen["pid_ok"]
    assert [seen["seen"]["3"], seen["seen"]["4"]] == ports
    assert all(v is None for k, v in seen["seen"].items() if int(k) > 4)


def test_subprocess_child_gets_the_sockets_at_3_and_4(listeners: list[socket.socket]) -> None:
    kwargs = activation_kwargs([sys.executable, "-c", PROBE], listeners, dict(os.environ))
    done = subprocess.run(**kwargs, capture_output=True, text=True, timeout=60, check=True)
    _check(done.stdout, listeners)


async def test_asyncio_child_gets_the_sockets_at_3_and_4(listeners: list[socket.socket]) -> None:
    kwargs = activation_kwargs([sys.executable, "-c", PROBE], listeners, dict(os.environ))
    proc = await asyncio.create_subprocess_exec(
        *kwargs.pop("args"), stdout=subprocess.PIPE, start_new_session=True, **kwargs
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0
    _check(out.decode(), listeners)
