"""``sleigh up --front``: nginx in front of the web workers, run, checked and stopped by
``sleigh up`` (real nginx, real HTTP)."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sleigh.daemons.control import front
from tests.control.test_nginx import _nginx
from tests.plugins.up import UpShop, alive, get_page, running_shop, shop_env


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[UpShop]:
    _nginx()  # (skips, or fails where nginx is required, without it)
    with running_shop(tmp_path / "home", products=60, args=["--front", "on"]) as shop:
        yield shop


def _sleigh(shop: UpShop, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sleigh.daemons.control", *args],
        capture_output=True, text=True, timeout=60, env=shop.env,
    )  # fmt: skip


def _access_lines(shop: UpShop, path: str, least: int = 0) -> list[str]:
    """The web workers' access log lines for *path* (their log is ``sleigh up``'s), once
    there are *least* of them or 10 s have passed: a worker writes its lines after the
    response, and ``sleigh up`` passes them on, so the last may still be on its way."""
    deadline = time.monotonic() + 10
    while True:
        lines = [
            line
            for line in shop.log().splitlines()
            if "sleigh.web.access" in line and f'"GET {path} ' in line
        ]
        if len(lines) >= least or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


@pytest.mark.slow
def test_front_keeps_public_pages_and_never_a_shoppers_own(shop: UpShop) -> None:
    base = shop.address.rstrip("/")
    state = shop.state()
    nginx = state["front"]["pid"]
    assert alive(nginx) and state["daemons"]["nginx"] == nginx
    assert state["web"]["address"] == f"unix:{shop.home / 'run' / 'web.sock'}"
    assert any("front: nginx keeps public pages" in line for line in shop.output)

    status, headers, body = get_page(f"{base}/p/7")
    assert status == 200 and headers["X-Cache-Status"] == "MISS"
    again = get_page(f"{base}/p/7")
    assert again[1]["X-Cache-Status"] == "HIT" and again[2] == body
    assert len(_access_lines(shop, "/p/7", 1)) == 1  # the kept copy never reached a worker
    purge = _sleigh(shop, "nginx", "purge", "--proxy", base, "/p/7")
    assert purge.returncode == 0 and "/p/7: 200 (BYPASS)" in purge.stdout, purge.stderr
    assert get_page(f"{base}/p/7")[1]["X-Cache-Status"] == "HIT"
    assert len(_access_lines(shop, "/p/7", 2)) == 2

    first = get_page(f"{base}/cart")
    cookie = first[1]["Set-Cookie"].split(";")[0]
    second = get_page(f"{base}/cart", Cookie=cookie)
    assert first[1]["X-Cache-Status"] == second[1]["X-Cache-Status"] == "MISS"
    assert first[1]["Cache-Control"] == "private, no-store"
    assert len(_access_lines(shop, "/cart", 2)) == 2

    css = get_page(f"{base}/static/style.css")
    assert css[0] == 200 and css[1]["Content-Type"] == "text/css"
    assert "X-Cache-Status" not in css[1] and not _access_lines(shop, "/static/style.css")

    # The workers take the shopper's address from nginx, which sets it: a client's own
    # X-Real-IP is replaced, never believed.
    get_page(f"{base}/p/8", **{"X-Real-IP": "203.0.113.9"})
    (line,) = _access_lines(shop, "/p/8", 1)
    assert "203.0.113.9" not in line and "127.0.0.1" in line

    log = (shop.home / "run" / "nginx" / "access.log").read_text()
    assert re.search(r'"GET /p/7 HTTP/1.1" 200 \d+ \S+ cache=HIT', log)

    report = _sleigh(shop, "status", "--json")
    assert report.returncode == 0, report.stdout + report.stderr
    components = json.loads(report.stdout)["components"]
    assert components["front"]["state"] == "up"
    assert components["front"]["address"] == shop.address
    assert components["front"]["details"]["pid"] == nginx
    assert components["front"]["details"]["kept_pages"] >= 2
    assert components["web"]["state"] == "up"  # (asked on the workers' own socket)


def test_front_on_without_nginx_is_an_error_and_starts_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = shop_env(home)
    argv = [sys.executable, "-m", "sleigh.daemons.control", "up", "--front", "on"]
    missing = subprocess.run(
        [*argv, "--nginx", str(tmp_path / "no-nginx")],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert missing.returncode == 1
    assert "--nginx:" in missing.stderr and "is not an executable file" in missing.stderr
    assert not (home / "sleigh.db").exists() and not (home / "run").exists()

    lone = subprocess.run(
        [*argv[:-2], "--nginx", "/usr/sbin/nginx"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert lone.returncode == 2
    assert "--nginx goes with --front auto or on" in lone.stderr


def test_front_auto_without_nginx_serves_without_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(front, "SBIN", str(tmp_path))
    out = io.StringIO()
    assert front.choose_nginx("auto", None, {"PATH": str(tmp_path)}, out) is None
    assert "no nginx found, so shoppers reach the web workers directly" in out.getvalue()
    assert front.choose_nginx("off", None, {"PATH": "/usr/sbin"}, out) is None
    with pytest.raises(front.FrontError, match="no nginx on PATH"):
        front.choose_nginx("on", None, {"PATH": str(tmp_path)}, out)


@pytest.mark.slow
def test_a_killed_front_is_restarted_and_its_workers_do_not_linger(shop: UpShop) -> None:
    master = shop.state()["front"]["pid"]
    workers = [int(p) for p in Path(f"/proc/{master}/task/{master}/children").read_text().split()]
    assert workers and all(alive(pid) for pid in workers)
    os.kill(master, signal.SIGKILL)  # (nginx's workers outlive their master)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        state = shop.state()
        if state["front"]["pid"] != master and not any(alive(pid) for pid in workers):
            break
        time.sleep(0.2)
    assert state["front"]["pid"] != master, "nginx was not restarted"
    assert not any(alive(pid) for pid in workers), "the killed master's workers lingered"
    assert get_page(f"{shop.address.rstrip('/')}/p/3")[0] == 200
    assert f"nginx (pid {master}) exited unexpectedly" in shop.log()
    assert "left processes behind" in shop.log()


def test_the_front_s_access_log_is_rotated_as_the_readme_says(shop: UpShop) -> None:
    """Move ``run/nginx/access.log`` aside and send nginx's master (``sleigh status`` names
    it) SIGUSR1: nginx opens a new file, and the next requests go there."""
    base = shop.address.rstrip("/")
    log = shop.home / "run" / "nginx" / "access.log"
    assert get_page(f"{base}/p/4")[0] == 200
    deadline = time.monotonic() + 10
    while "GET /p/4 " not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    rotated = log.with_name("access.log.1")
    log.rename(rotated)
    status = json.loads(_sleigh(shop, "status", "--json").stdout)
    os.kill(int(status["components"]["front"]["details"]["pid"]), signal.SIGUSR1)
    deadline = time.monotonic() + 10
    while not log.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert get_page(f"{base}/p/5")[0] == 200
    while "GET /p/5 " not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "GET /p/5 " in log.read_text() and "GET /p/4 " not in log.read_text()
    assert "GET /p/4 " in rotated.read_text() and "GET /p/5 " not in rotated.read_text()


def test_the_front_s_files_start_with_no_page_kept_from_an_earlier_run(tmp_path: Path) -> None:
    from sleigh.daemons.control.settings import load_settings
    from sleigh.daemons.runtime.sockets import bind_tcp

    settings = load_settings(None, {}, home=tmp_path)
    stale = tmp_path / "run" / "nginx" / "pages" / "a" / "bc" / "stale"
    stale.parent.mkdir(parents=True)
    stale.write_text("an old page")
    with bind_tcp("127.0.0.1", 0) as listening:
        tier = front.Front(settings, "/usr/sbin/nginx", listening)
        main = tier.write_files()
        port = listening.getsockname()[1]
    assert not stale.exists()
    site = (tmp_path / "run" / "nginx" / "sleigh.conf").read_text()
    assert f"listen 127.0.0.1:{port};" in site
    assert f"server unix:{tmp_path / 'run' / 'web.sock'} " in site
    assert f"include {tmp_path / 'run' / 'nginx' / 'sleigh.conf'};" in main.read_text()
    assert tier.worker_env() == {"SLEIGH_THROTTLE_CLIENT_IP_HEADER": "X-Real-IP"}


@pytest.mark.slow
async def test_a_shopper_buys_through_the_front(shop: UpShop) -> None:
    from tests.e2e.browser import Browser, browse
    from tests.web.test_account import post_form, signin, signup
    from tests.web.test_cart import add, cart_lines
    from tests.web.test_checkout import place, review

    async with Browser(shop.address, "192.0.2.40") as browser:
        first, second = await browse(browser, 2)  # (kept pages, and the header fragment)
        await add(browser, first.id, 2)
        await signup(browser)  # the guest cart becomes the account's
        assert (await post_form(browser, "/account", {}, "/account/signout")).status == 303
        assert await cart_lines(browser) == {}
        await add(browser, second.id)  # a guest again, with a cart of its own
        assert (await signin(browser)).status == 303  # the carts join
        assert await cart_lines(browser) == {first.id: 2, second.id: 1}
        where = await place(browser, await review(browser))
        confirmation = await browser.get(where)
        assert confirmation.status == 200 and "Thank you" in await confirmation.text()
        assert confirmation.headers["X-Cache-Status"] == "MISS"  # a shopper's own: never kept
        assert await cart_lines(browser) == {}
    kept = (shop.home / "run" / "nginx" / "access.log").read_text()
    assert f'"GET {first.path} HTTP/1.1" 200' in kept
