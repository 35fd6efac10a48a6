"""``sleigh-searchd``'s life cycle: draining on SIGTERM under load, the deadline, TCP."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

from sleigh.daemons.search.client import SearchClient, SearchUnavailable
from tests.plugins.daemons import DaemonFactory
from tests.plugins.searchd import StartSearchd, build_version, make_docs


def _hammer(client: SearchClient, outcomes: list[str], stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            client.search("red OR car OR lego", facets=["brand", "category"], limit=20)
            outcomes.append("ok")
        except SearchUnavailable as exc:
            outcomes.append(str(exc))
            return


def test_sigterm_under_load_answers_every_request(searchd_factory: StartSearchd) -> None:
    daemon = searchd_factory(docs=make_docs(3000))
    outcomes: list[str] = []
    stop = threading.Event()
    with SearchClient([daemon.endpoint], timeout=30) as client:
        client.search("red")
        threads = [
            threading.Thread(target=_hammer, args=(client, outcomes, stop)) for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        while len(outcomes) < 20:
            threads[0].join(0.01)
        daemon.daemon.send_signal(signal.SIGTERM)
        assert daemon.daemon.wait(30) == 0
        stop.set()
        for thread in threads:
            thread.join(60)
    failures = [o for o in outcomes if o != "ok"]
    # Every request either was answered or was refused at once: none waited in vain.
    assert failures and all("no reply within" not in f for f in failures), failures
    assert "Traceback" not in daemon.daemon.stderr_text()


def test_the_drain_deadline_stops_a_busy_daemon(searchd_factory: StartSearchd) -> None:
    daemon = searchd_factory(docs=make_docs(3000), shutdown_timeout="0s")
    outcomes: list[str] = []
    stop = threading.Event()
    with SearchClient([daemon.endpoint], timeout=2) as client:
        threads = [
            threading.Thread(target=_hammer, args=(client, outcomes, stop)) for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        while len(outcomes) < 10:
            threads[0].join(0.01)
        daemon.daemon.send_signal(signal.SIGTERM)
        assert daemon.daemon.wait(30) == 0
        stop.set()
        for thread in threads:
            thread.join(60)
    assert "Traceback" not in daemon.daemon.stderr_text()


def test_serves_on_a_handed_over_tcp_socket(daemon_factory: DaemonFactory, tmp_path: Path) -> None:
    home = tmp_path / "home"
    build_version(home / "search", 1, make_docs(100))
    argv = [sys.executable, "-m", "sleigh.daemons.search", "--home", str(home)]
    daemon = daemon_factory.start(argv, tcp=True, env={"SLEIGH_SEARCH_WORKERS": "1"})
    assert isinstance(daemon.address, tuple)
    host, port = daemon.address
    with SearchClient([f"tcp://{host}:{port}"], timeout=10) as client:
        assert client.ping() == 1
        assert client.search("car").total > 0
        assert client.stats()["address"] == f"tcp://{host}:{port}"
