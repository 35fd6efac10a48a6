"""The writer of ``bench_replicator.py``: paces ``SET`` commands of stamped 1 KB values into a
cache's Unix socket, and prints the wall time of the last acknowledgement and the seconds it
took. A process of its own that imports nothing but the standard library, since it shares the
machine's cores with the daemons it measures (``replication_lab.run_writer`` runs it):

    python scripts/replication_writer.py SOCKET PREFIX COUNT RATE SIZE
"""

from __future__ import annotations

import contextlib
import socket
import sys
import time

#: The writer's ticks between reads of its acknowledgements, while it sends.
ACK_EVERY = 16


def writer(sock_path: str, prefix: str, count: int, rate: float, size: int) -> None:
    """Send *count* ``SET prefix<i> <time_ns><padding>`` at *rate*/s; print the last ack time.

    Cheap per tick, since it shares the cores with the daemons it measures: the socket
    stays blocking (acks are read with ``MSG_DONTWAIT``, and only every ``ACK_EVERY``
    ticks while sending: the socket buffer holds them), so a tick is one ``send`` and one
    ``sleep`` (the SETs due, each stamped when it is sent).
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(sock_path)
    pad = b"v" * (size - 20)
    head = prefix.encode()
    sent = acked = ticks = 0
    clock, stamp = time.perf_counter, time.time_ns
    start = clock()
    while acked < count:
        due = min(count, int((clock() - start) * rate) + 1, sent + 500)
        if due > sent:
            batch = []
            for i in range(sent, due):
                key = b"%s%d" % (head, i)
                batch.append(b"*3\r\n$3\r\nSET\r\n$%d\r\n%b\r\n$%d\r\n%020d%b\r\n" % (
                    len(key), key, size, stamp(), pad))  # fmt: skip
            sock.sendall(b"".join(batch))
            sent = due
        ticks += 1
        if sent == count or ticks % ACK_EVERY == 0:
            with contextlib.suppress(BlockingIOError):
                acked += len(sock.recv(65536, socket.MSG_DONTWAIT)) // 5  # each is +OK\r\n
        time.sleep(0.0001 if sent < count else 0.00005)
    print(f"{time.time():.6f} {clock() - start:.6f}")


def main(argv: list[str]) -> int:
    if len(argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    writer(argv[0], argv[1], int(argv[2]), float(argv[3]), int(argv[4]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
