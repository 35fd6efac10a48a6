"""A host outside the cluster: captures the group's datagrams and sends bad ones.

Run in a namespace of its own (``ip netns exec NS python -m tests.replicator.stranger``):

* ``capture FILE SECONDS GROUP PORT ADDRESS``: join the group (then print
  ``joined``) and keep every datagram heard for SECONDS in FILE
  (length-prefixed); print how many;
* ``send FILE GROUP PORT ADDRESS``: send each captured datagram four ways:
  replayed as it was, with its MAC flipped (forged), cut short (truncated),
  and padded past any MTU (oversized); prints how many of each.
"""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path


def join(group: str, port: int, address: str) -> socket.socket:
    """A socket that hears *group*:*port* on the interface at *address*."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((group, port))
    membership = socket.inet_aton(group) + socket.inet_aton(address)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
    return sock


def sender(address: str) -> socket.socket:
    """A socket that sends to a group out of the interface at *address*."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(address))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
    return sock


def variants(data: bytes) -> dict[str, bytes]:
    """A captured datagram four ways: replayed as it was, its MAC flipped (forged), cut
    short (truncated), and padded past any MTU (oversized)."""
    return {
        "replayed": data,
        "forged": data[:-1] + bytes([data[-1] ^ 0xFF]),
        "truncated": data[: len(data) // 2],
        "oversized": data + b"\0" * (1400 - len(data) if len(data) < 1400 else 8),
    }


def capture(path: Path, seconds: float, group: str, port: int, address: str) -> int:
    sock = join(group, port, address)
    print("joined", flush=True)
    kept: list[bytes] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            kept.append(sock.recv(65535))
        except TimeoutError:
            break
    path.write_bytes(b"".join(len(d).to_bytes(4, "big") + d for d in kept))
    return len(kept)


def load(path: Path) -> list[bytes]:
    raw, out, i = path.read_bytes(), [], 0
    while i < len(raw):
        n = int.from_bytes(raw[i : i + 4], "big")
        out.append(raw[i + 4 : i + 4 + n])
        i += 4 + n
    return out


def send(path: Path, group: str, port: int, address: str) -> dict[str, int]:
    sock = sender(address)
    counts = {"replayed": 0, "forged": 0, "truncated": 0, "oversized": 0}
    for data in load(path):
        for name, payload in variants(data).items():
            sock.sendto(payload, (group, port))
            counts[name] += 1
            time.sleep(0.0005)
    return counts


def main(argv: list[str]) -> int:
    if argv[0] == "capture":
        print(capture(Path(argv[1]), float(argv[2]), argv[3], int(argv[4]), argv[5]))
        return 0
    if argv[0] == "send":
        print(send(Path(argv[1]), argv[2], int(argv[3]), argv[4]))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
