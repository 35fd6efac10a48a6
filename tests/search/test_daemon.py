"""``sleigh-searchd`` end to end: a real daemon, a real index file, real ZeroMQ."""

from __future__ import annotations

import random
import signal
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import msgpack
import pytest
import zmq

from sleigh.core_ext.search import Query, open_index
from sleigh.daemons.search.client import SearchClient
from sleigh.daemons.search.index import index_name
from tests.plugins.procfs import assert_steady
from tests.plugins.searchd import SearchDaemon, StartSearchd, build_version, make_docs

TIMEOUT_MS = 10_000


@pytest.fixture
def raw(searchd: SearchDaemon) -> Iterator[Callable[..., dict[str, Any]]]:
    """Send frames as they are; the decoded reply."""
    zctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = zctx.socket(zmq.DEALER)
    sock.connect(searchd.endpoint)

    def ask(*frames: bytes) -> dict[str, Any]:
        sock.send_multipart(list(frames))
        assert sock.poll(TIMEOUT_MS), "no reply"
        reply = sock.recv_multipart()
        assert len(reply) == 2
        assert reply[0] == (frames[0] if 0 < len(frames[0]) <= 16 else b"")
        out: dict[str, Any] = msgpack.unpackb(reply[1], strict_map_key=False)
        return out

    yield ask
    sock.close(linger=0)
    zctx.term()


def body(**fields: Any) -> bytes:
    return msgpack.packb(fields)  # type: ignore[no-any-return]


def wait_for(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_search_matches_the_index_in_process(searchd: SearchDaemon) -> None:
    index = open_index(searchd.index_dir / index_name(1))
    queries = [
        Query(text="red car", limit=10, facets=True),
        Query(text="lego OR doll", sort="price_asc", offset=5, limit=7, facets=True),
        Query(text="", category=1, in_stock=True, sort="popularity", limit=20),
        Query(text="castle -red", brands=(2, 3), price_min=500, price_max=20_000, age=6),
    ]
    with SearchClient([searchd.endpoint], timeout=10) as client:
        for q in queries:
            expected = index.search(q)
            got = client.search(
                q.text,
                category=q.category,
                brands=q.brands,
                price=(q.price_min, q.price_max),
                age=q.age,
                in_stock=q.in_stock,
                sort=q.sort,
                offset=q.offset,
                limit=q.limit,
                facets=("category", "brand", "price_band", "age_band") if q.facets else (),
            )
            assert (got.ids, got.total, got.facets) == (
                expected.ids,
                expected.total,
                expected.facets,
            )
            assert got.version == 1


def test_suggest_and_did_you_mean(searchd: SearchDaemon) -> None:
    with SearchClient([searchd.endpoint], timeout=10) as client:
        assert any(c.startswith("dino") for c in client.suggest("dino", 5))
        assert client.search("dinosuar").suggestion == "dinosaur"


MALFORMED = [
    ("one frame", [b"1"], "malformed"),
    ("three frames", [b"1", b"x", b"y"], "malformed"),
    ("empty id", [b"", body(op="ping")], "malformed"),
    ("id too long", [b"x" * 17, body(op="ping")], "malformed"),
    ("not msgpack", [b"1", b"\xc1\xc1"], "malformed"),
    ("not a map", [b"1", msgpack.packb([1, 2])], "malformed"),
    ("a key that is an array", [b"1", b"\x81\x90\x00"], "malformed"),
    ("a key that is a map", [b"1", b"\x81\x80\x00"], "malformed"),
    ("too large", [b"1", body(op="search", q="a" * 70_000)], "too_large"),
    ("unknown op", [b"1", body(op="drop")], "unknown_op"),
    ("no op", [b"1", body(q="car")], "unknown_op"),
    ("unknown field", [b"1", body(op="search", qq="car")], "unknown_field"),
    ("text not a string", [b"1", body(op="search", q=5)], "bad_type"),
    ("limit not an int", [b"1", body(op="search", limit="20")], "bad_type"),
    ("in_stock not a bool", [b"1", body(op="search", in_stock=1)], "bad_type"),
    ("brands not a list", [b"1", body(op="search", brands=3)], "bad_type"),
    ("unknown sort", [b"1", body(op="search", sort="cheapest")], "bad_value"),
    ("unknown facet", [b"1", body(op="search", facets=["colour"])], "bad_value"),
    ("price min over max", [b"1", body(op="search", price=[500, 100])], "bad_value"),
    ("age_to below age", [b"1", body(op="search", age=6, age_to=3)], "bad_value"),
    ("age_to without age", [b"1", body(op="search", age_to=3)], "bad_value"),
    ("negative offset", [b"1", body(op="search", offset=-1)], "bad_value"),
    ("too many terms", [b"1", body(op="search", q=" ".join(["car"] * 40))], "too_many_terms"),
    ("query too long", [b"1", body(op="search", q="x" * 300)], "query_too_long"),
    ("limit too large", [b"1", body(op="search", limit=201)], "limit_too_large"),
    ("suggest limit too large", [b"1", body(op="suggest", q="le", limit=101)], "limit_too_large"),
    ("offset too large", [b"1", body(op="search", offset=10_001)], "offset_too_large"),
    ("bad change", [b"1", body(op="update", changes=[[1, 2]])], "bad_type"),
    ("stats with a field", [b"1", body(op="stats", verbose=True)], "unknown_field"),
]


def test_bad_requests_get_error_replies_and_change_nothing(
    raw: Callable[..., dict[str, Any]],
) -> None:
    for name, frames, code in MALFORMED:
        reply = raw(*frames)
        assert reply["ok"] is False, name
        assert reply["error"] == code, (name, reply)
        assert reply["message"], name
        assert raw(b"2", body(op="ping")) == {"ok": True, "version": 1}, name


def test_a_stream_of_bad_requests_leaks_nothing(
    searchd: SearchDaemon, raw: Callable[..., dict[str, Any]]
) -> None:
    """Every bad request above, over and over, on one connection and on connections
    of their own, and noise that is not ZeroMQ at all: no descriptor or memory kept."""
    rng = random.Random(3)
    zctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()

    def once_on_its_own(frames: list[bytes]) -> None:
        sock = zctx.socket(zmq.DEALER)
        sock.connect(searchd.endpoint)
        sock.send_multipart(frames)
        assert sock.poll(TIMEOUT_MS), "no reply"
        sock.recv_multipart()
        sock.close(linger=0)

    def noise() -> None:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(str(searchd.socket_path))
            sock.sendall(rng.randbytes(rng.randrange(1, 4000)))

    def round_of_garbage(n: int) -> None:
        for i in range(n):
            _, frames, _ = MALFORMED[i % len(MALFORMED)]
            raw(*frames)
            if i % 5 == 0:
                once_on_its_own(frames)
                noise()
        time.sleep(0.5)  # the noise's connections, closed by us, are closed by it

    try:
        assert_steady([searchd.daemon.pid], round_of_garbage, 300, 1500)
    finally:
        zctx.term()
    assert raw(b"2", body(op="ping")) == {"ok": True, "version": 1}


def test_stats_show_rates_latencies_and_the_index(searchd: SearchDaemon) -> None:
    with SearchClient([searchd.endpoint], timeout=10) as client:
        for _ in range(20):
            client.search("car")
        stats = client.stats()
    assert stats["by_op"]["search"] == 20
    assert stats["requests"] >= 20
    assert stats["qps_10s"] > 0
    latency = stats["latency_us"]
    assert sum(latency["counts"]) == stats["requests"]
    assert len(latency["counts"]) == len(latency["buckets"])
    assert latency["p50"] is not None
    index = stats["index"]
    assert index["version"] == 1
    assert index["products"] == 300
    assert 0 <= index["age_s"] < 600
    assert stats["workers"] == 2


def test_many_threads_query_at_once(searchd: SearchDaemon) -> None:
    from concurrent.futures import ThreadPoolExecutor

    words = ["red", "car", "lego castle", "doll OR robot", "train -red", "", "book"]
    index = open_index(searchd.index_dir / index_name(1))
    expected = {w: index.search(Query(text=w, limit=10)).ids for w in words}
    with SearchClient([searchd.endpoint], timeout=20) as client:

        def run(n: int) -> int:
            for i in range(40):
                word = words[(n + i) % len(words)]
                assert client.search(word, limit=10).ids == expected[word]
            return n

        with ThreadPoolExecutor(max_workers=12) as pool:
            assert sorted(pool.map(run, range(12))) == list(range(12))
        assert client.stats()["by_op"]["search"] == 12 * 40


def test_update_changes_results_and_survives_a_swap(searchd: SearchDaemon) -> None:
    docs = make_docs(300)
    cheapest = min(docs, key=lambda d: d.price_cents)
    target = max(docs, key=lambda d: d.price_cents)
    with SearchClient([searchd.endpoint], timeout=10) as client:
        first = client.search("", sort="price_asc", limit=1)
        assert first.ids == [cheapest.id]
        applied = client.update([(target.id, 1, True), (10**9, 5, None)])
        assert applied == {searchd.endpoint: 1}
        assert client.search("", sort="price_asc", limit=1).ids == [target.id]
        build_version(searchd.index_dir, 2, docs)  # built from the "database": old price
        searchd.daemon.send_signal(signal.SIGHUP)
        wait_for(lambda: client.ping() == 2, "version 2")
        assert client.search("", sort="price_asc", limit=1).ids == [target.id]
        stats = client.stats()
        assert (stats["updates_applied"], stats["updates_replayed"]) == (1, 1)


def test_reload_under_load_fails_no_query(searchd_factory: StartSearchd) -> None:
    import threading

    daemon = searchd_factory(reload_interval="50ms")
    failures: list[BaseException] = []
    versions: set[int | None] = set()
    stop = threading.Event()
    with SearchClient([daemon.endpoint], timeout=20) as client:

        def loop() -> None:
            while not stop.is_set():
                try:
                    result = client.search("red OR car", facets=["brand"], limit=5)
                    assert result.total > 0
                    versions.add(result.version)
                except BaseException as exc:
                    failures.append(exc)
                    return

        threads = [threading.Thread(target=loop) for _ in range(4)]
        for thread in threads:
            thread.start()
        try:
            for version in range(2, 7):
                build_version(daemon.index_dir, version, make_docs(300, seed=version))
                if version % 2:
                    daemon.daemon.send_signal(signal.SIGHUP)
                wait_for(lambda v=version: client.ping() == v, f"version {version}")  # type: ignore[misc]
                for old in daemon.index_dir.glob("index-*.sidx"):
                    if old.name < index_name(version - 1):
                        old.unlink()
        finally:
            stop.set()
            for thread in threads:
                thread.join(30)
    assert failures == []
    assert 6 in versions and len(versions) >= 2


def test_a_corrupt_new_file_is_refused_and_the_old_index_serves(
    searchd_factory: StartSearchd,
) -> None:
    daemon = searchd_factory(reload_interval="50ms")
    good = daemon.index_dir / index_name(1)
    data = bytearray(good.read_bytes())
    data[len(data) // 2] ^= 0x40
    bad = daemon.index_dir / index_name(2)
    tmp = bad.with_name(".tmp-corrupt")
    tmp.write_bytes(data)
    tmp.rename(bad)
    with SearchClient([daemon.endpoint], timeout=10) as client:
        wait_for(lambda: "refused index file" in daemon.daemon.stderr_text(), "the refusal")
        assert client.ping() == 1
        assert client.search("car").total > 0
        daemon.daemon.send_signal(signal.SIGHUP)
        wait_for(lambda: daemon.daemon.stderr_text().count("refused index file") >= 2, "again")
        assert client.ping() == 1
        assert client.stats()["refused_files"] >= 2
        build_version(daemon.index_dir, 3, make_docs(300, seed=3))
        wait_for(lambda: client.ping() == 3, "version 3")


def test_no_index_yet_answers_unavailable_then_serves_one(
    searchd_factory: StartSearchd, tmp_path: Any
) -> None:
    from sleigh.daemons.search.client import SearchUnavailable

    home = tmp_path / "empty-home"
    home.mkdir()
    daemon = searchd_factory(home=home, docs=[], reload_interval="50ms")
    (daemon.index_dir / index_name(1)).unlink()
    with SearchClient([daemon.endpoint], timeout=5) as client:
        assert client.ping() in (None, 1)
        build_version(daemon.index_dir, 7, make_docs(50))
        wait_for(lambda: client.ping() == 7, "version 7")
        assert client.search("car").version == 7
    assert SearchUnavailable.__doc__


def test_sigterm_answers_new_requests_unavailable_and_exits_zero(
    searchd: SearchDaemon, raw: Callable[..., dict[str, Any]]
) -> None:
    assert raw(b"1", body(op="ping"))["ok"] is True
    searchd.daemon.send_signal(signal.SIGTERM)
    assert searchd.daemon.wait(20) == 0
    assert "stopped" in searchd.daemon.stderr_text()
    assert "Traceback" not in searchd.daemon.stderr_text()
