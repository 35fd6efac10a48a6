"""Batched datagram receive and send: the cffi implementation and its Python twin."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator

import pytest

from sleigh.core_ext import mmsg

Impl = type[mmsg.BatchSocketPython] | type[mmsg.BatchSocketNative]
IMPLS = [
    pytest.param(mmsg.BatchSocketPython, id="python"),
    pytest.param(
        mmsg.BatchSocketNative,
        id="native",
        marks=pytest.mark.skipif(not mmsg.NATIVE, reason="compiled mmsg not built"),
    ),
]


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A bound receiver (blocking) and a sender connected to it (non-blocking).

    The tests send before they receive, so a blocking receive never waits.
    """
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        rx.bind(("127.0.0.1", 0))
        tx.connect(rx.getsockname())
        tx.setblocking(False)
        yield rx, tx
    finally:
        rx.close()
        tx.close()


def _receive(rx: mmsg.BatchSocketPython | mmsg.BatchSocketNative, count: int) -> list[bytes]:
    got: list[bytes] = []
    while len(got) < count:
        batch = rx.recv_batch()
        assert batch, "a batch is never empty while datagrams arrive"
        assert len(batch) <= mmsg.MAX
        got.extend(batch)
    return got


@pytest.mark.parametrize("impl", IMPLS)
def test_datagrams_go_and_come_whole_and_in_order(
    impl: Impl, pair: tuple[socket.socket, socket.socket]
) -> None:
    rx, tx = pair
    sent = [bytes([i % 256]) * (1 + i * 7 % 1200) for i in range(200)]
    assert impl(tx, 1201).send_batch(sent) == len(sent)
    assert _receive(impl(rx, 1201), len(sent)) == sent


@pytest.mark.parametrize("impl", IMPLS)
def test_a_datagram_longer_than_a_slot_is_cut_to_it(
    impl: Impl, pair: tuple[socket.socket, socket.socket]
) -> None:
    rx, tx = pair
    impl(tx, 100).send_batch([b"x" * 1500, b"short"])
    assert _receive(impl(rx, 101), 2) == [b"x" * 101, b"short"]


@pytest.mark.parametrize("impl", IMPLS)
def test_nothing_to_send_sends_nothing(
    impl: Impl, pair: tuple[socket.socket, socket.socket]
) -> None:
    assert impl(pair[1], 100).send_batch([]) == 0


@pytest.mark.parametrize("impl", IMPLS)
def test_a_non_blocking_receive_with_nothing_queued_says_so(
    impl: Impl, pair: tuple[socket.socket, socket.socket]
) -> None:
    rx = pair[0]
    rx.setblocking(False)
    with pytest.raises(BlockingIOError):
        impl(rx, 100).recv_batch()


@pytest.mark.parametrize("impl", IMPLS)
def test_a_full_send_buffer_stops_the_batch_and_says_how_many_went(impl: Impl) -> None:
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        left.setblocking(False)
        left.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        sent = impl(left, 1000).send_batch([b"y" * 1000] * 10_000)
        assert 0 < sent < 10_000
        assert impl(left, 1000).send_batch([b"z"]) == 0  # still full
    finally:
        left.close()
        right.close()


@pytest.mark.parametrize("impl", IMPLS)
def test_an_error_on_the_first_datagram_is_raised(impl: Impl) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # not connected: nowhere to send
    try:
        with pytest.raises(OSError) as info:
            impl(sock, 100).send_batch([b"a", b"b"])
        assert not isinstance(info.value, BlockingIOError)
    finally:
        sock.close()


@pytest.mark.parametrize("impl", IMPLS)
def test_shutdown_wakes_a_blocked_receive_with_an_empty_batch(
    impl: Impl, pair: tuple[socket.socket, socket.socket]
) -> None:
    rx = pair[0]
    batches: list[list[bytes]] = []
    thread = threading.Thread(target=lambda: batches.append(impl(rx, 100).recv_batch()))
    thread.start()
    threading.Event().wait(0.1)
    with contextlib.suppress(OSError):  # ENOTCONN on an unconnected socket, which still wakes
        rx.shutdown(socket.SHUT_RDWR)
    thread.join(5)
    assert not thread.is_alive() and batches == [[]]


def test_the_batch_size_is_the_compiled_one() -> None:
    if mmsg.NATIVE:
        from sleigh.core_ext._mmsg import lib

        assert lib.SLEIGH_MMSG_MAX == mmsg.MAX


def test_the_chosen_one_is_native_when_built() -> None:
    assert mmsg.BatchSocket is (mmsg.BatchSocketNative if mmsg.NATIVE else mmsg.BatchSocketPython)


def test_the_compiled_mmsg_is_there_when_required() -> None:
    if os.environ.get("SLEIGH_REQUIRE_EXTENSIONS") == "1":
        assert mmsg.NATIVE, "SLEIGH_REQUIRE_EXTENSIONS=1 but the compiled mmsg is missing"
