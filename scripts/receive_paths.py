"""The receive path for ``bench_replicator.py``: how much CPU a datagram costs a
blocking ``recv`` thread and an asyncio (uvloop) datagram endpoint, each fed by a
subprocess blasting 1,100-byte datagrams to a multicast group on loopback.

    python scripts/receive_paths.py --blast GROUP PORT COUNT   (the sender)
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import threading
import time


def blast(group: str, port: int, count: int) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
    payload = b"x" * 1100
    for _ in range(count):
        sock.sendto(payload, (group, port))
    sock.sendto(b"end", (group, port))


def _receiver(group: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    sock.bind((group, port))
    membership = socket.inet_aton(group) + socket.inet_aton("127.0.0.1")
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
    return sock


def receive_thread(group: str, port: int, count: int) -> tuple[int, float]:
    sock = _receiver(group, port)
    got, first = 0, 0.0
    sender = subprocess.Popen([sys.executable, __file__, "--blast", group, str(port), str(count)])
    # The daemon's loop: a blocking socket without a timeout, in a thread of its own.
    stop = threading.Timer(30, lambda: sock.shutdown(socket.SHUT_RDWR))
    stop.start()
    cpu = 0.0
    while data := sock.recv(1201):
        if not first:
            first, cpu = time.perf_counter(), time.process_time()
        if data == b"end":
            break
        got += 1
    stop.cancel()
    cpu = time.process_time() - cpu
    sender.wait()
    sock.close()
    return got, cpu / max(got, 1) * 1e6


def receive_asyncio(group: str, port: int, count: int) -> tuple[int, float]:
    import uvloop

    async def main() -> tuple[int, float]:
        sock = _receiver(group, port)
        done = asyncio.Event()
        state = {"got": 0, "first": 0.0}

        class Proto(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: object) -> None:
                if not state["first"]:
                    state["first"] = time.process_time()
                if data == b"end":
                    done.set()
                else:
                    state["got"] += 1

        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(Proto, sock=sock)
        sender = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--blast", group, str(port), str(count)
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), 30)
        cpu = time.process_time() - state["first"]
        await sender.wait()
        transport.close()
        got = int(state["got"])
        return got, cpu / max(got, 1) * 1e6

    return uvloop.run(main())


if __name__ == "__main__":
    if sys.argv[1:2] != ["--blast"] or len(sys.argv) != 5:
        raise SystemExit("usage: receive_paths.py --blast GROUP PORT COUNT")
    blast(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
