"""The whole shop, end to end: ``sleigh up`` with every daemon, driven over real HTTP.

Each database (the embedded SQLite, and PostgreSQL named by the config
file's ``[database] url``) gets one shop for the module, started as an
operator starts it: ``sleigh-cached``, ``sleigh-mcastd``,
``sleigh-throttled``, ``sleigh-searchd`` and two web workers on one
socket. A shopper browses, searches, fills a cart, signs up and in (the
guest cart joins the account's), checks out with the sandbox card, gets the
confirmation page and mail, and finds the order in the history. A cart and
a session outlive the worker that served them (``kill -9``). A burst of
sign-in attempts gets ``429`` with ``Retry-After`` from the throttle daemon.

The request limits are the built-in login and reset rules and, for every
other kind, limits far above what the tests send, so that requests in quick
succession on a loaded machine (and the CPU they cost) meet no limit but
the one under test. The shop trusts ``X-Real-IP`` as behind nginx, so each
test's browser is its own client; the throttle client waits up to 2 s (not
5 ms) for the daemon, so that a busy machine does not make sign-in fail
closed.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from collections.abc import AsyncIterator, Iterator
from email import message_from_bytes
from pathlib import Path
from urllib.parse import urlencode

import pytest
import pytest_asyncio

from sleigh.core_ext import tokenize
from sleigh.daemons.control.settings import toml_value
from sleigh.daemons.throttle.rules import DEFAULT_RULES, load_rules
from sleigh.webapp.models.orders import SHIPPING, STATUS_LABELS
from sleigh.webapp.models.values import format_price
from sleigh.webapp.security.sessions import COOKIE
from tests.e2e.browser import Browser, browse
from tests.plugins.database import DEMO_PRODUCTS, postgres_database
from tests.plugins.up import UpShop, alive, running_shop
from tests.web.test_account import post_form, signin, signup
from tests.web.test_cart import add, cart_lines, csrf_of
from tests.web.test_checkout import DETAILS, place, review

pytestmark = pytest.mark.slow

#: Far above anything these tests send; login and reset keep the shop's own rules.
RULES = """\
[rules.ip]
rate = 1000000
burst = 1000000

[rules.session]
rate = 1000000
burst = 1000000

[rules.cpu]
rate = 1000000000
burst = 1000000000

[rules.search]
rate = 1000000
burst = 1000000

[rules.cart]
rate = 1000000
burst = 1000000

[rules.checkout]
rate = 1000000
burst = 1000000

[rules.login]
rate = 5
per = "1m"
burst = 5
penalty_strikes = 20
penalty_window = "10m"
penalty_for = "15m"

[rules.reset]
rate = 3
per = "10m"
burst = 3
penalty_strikes = 10
penalty_window = "1h"
penalty_for = "1h"
"""
#: How long a restarted worker may take to be back (sleigh up waits 1 s first).
RESTART_DEADLINE = 60.0
ORDER_PATH = re.compile(r"/orders/(\d{6}-[A-Z0-9]{6})")


@pytest_asyncio.fixture(
    scope="module",
    loop_scope="module",
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
async def database_url(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """The ``[database] url`` of the module's shop: empty (SQLite in the home) or PostgreSQL."""
    if request.param == "sqlite":
        yield ""
        return
    async with postgres_database() as url:
        yield url


def write_config(root: Path, database_url: str) -> Path:
    """The shop's config file (and its rules file) under *root*."""
    rules = root / "rules.toml"
    rules.write_text(RULES)
    config = root / "sleigh.toml"
    config.write_text(
        '[web]\nworkers = 2\nmail = "file"\n\n'
        f"[throttle]\nrules = {toml_value(str(rules))}\n"
        'client_ip_header = "X-Real-IP"\ntimeout = "2s"\n\n'
        f"[database]\nurl = {toml_value(database_url)}\n"
    )
    return config


@pytest.fixture(scope="module")
def shop(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpShop]:
    root = tmp_path_factory.mktemp("e2e")
    config = write_config(root, database_url)
    with running_shop(root / "home", products=DEMO_PRODUCTS, config=config) as shop:
        assert len(shop.workers()) == 2
        yield shop


def test_the_rules_keep_the_shops_login_and_reset_limits(tmp_path: Path) -> None:
    rules = load_rules(write_config(tmp_path, "").with_name("rules.toml"))
    assert set(rules) == set(DEFAULT_RULES)
    assert rules["login"] == DEFAULT_RULES["login"]
    assert rules["reset"] == DEFAULT_RULES["reset"]


async def test_a_shopper_browses_searches_buys_and_finds_the_order(shop: UpShop) -> None:
    async with Browser(shop.address, "192.0.2.10") as browser:
        first, second = await browse(browser, 2)
        found = await browser.page("/search?" + urlencode({"q": first.title}))
        assert f'href="{first.path}"' in found
        word = max(tokenize(first.title), key=len)
        suggest = await browser.get("/search/suggest", params={"q": word})
        assert suggest.status == 200
        assert word in (await suggest.json())["completions"]

        await add(browser, first.id)
        await add(browser, second.id)
        token = csrf_of(await browser.page("/cart"))
        change = {"csrf": token, "product": str(first.id), "quantity": "3"}
        changed = await browser.post("/cart/update", data=change)
        assert changed.url.path == "/cart" and "Your cart was updated" in await changed.text()
        remove = {"csrf": token, "product": str(second.id), "quantity": "1", "remove": "1"}
        removed = await browser.post("/cart/update", data=remove)
        assert removed.url.path == "/cart" and "The item was removed" in await removed.text()
        assert await cart_lines(browser) == {first.id: 3}

        await signup(browser)  # the guest cart becomes the account's
        assert (await post_form(browser, "/account", {}, "/account/signout")).status == 303
        assert await cart_lines(browser) == {}
        await add(browser, second.id, 2)  # a guest again, with a cart of its own
        await add(browser, first.id)
        assert (await signin(browser)).status == 303  # the carts join; quantities add up
        assert await cart_lines(browser) == {first.id: 4, second.id: 2}

        where = await place(browser, await review(browser, shipping="express"))
        match = ORDER_PATH.fullmatch(where)
        assert match is not None, where
        number = match.group(1)
        confirmation = await browser.page(where)
        assert "Thank you" in confirmation and number in confirmation
        assert format_price(SHIPPING["express"][1]) in confirmation
        assert await cart_lines(browser) == {}
        account = await browser.page("/account")
        assert number in account and STATUS_LABELS["paid"] in account

    (mail,) = (shop.home / "mail").glob("*.eml")
    message = message_from_bytes(mail.read_bytes())
    assert message["To"] == DETAILS["email"].lower()
    assert number in message["Subject"]


async def gone(pid: int, deadline: float = 30.0) -> None:
    """Wait until process *pid* is dead and reaped."""
    until = time.monotonic() + deadline
    while alive(pid):
        assert time.monotonic() < until, f"process {pid} is still there"
        await asyncio.sleep(0.05)


async def restarted(shop: UpShop, before: list[int], victim: int) -> int:
    """Wait until ``sleigh up`` has replaced the worker *victim* (of *before*); the new PID."""
    until = time.monotonic() + RESTART_DEADLINE
    while True:
        new = set(shop.workers()) - set(before)
        if new and victim not in shop.workers() and all(map(alive, shop.workers())):
            (pid,) = new
            return pid
        assert time.monotonic() < until, f"worker {victim} was not replaced: {shop.log()[-2000:]}"
        await asyncio.sleep(0.1)


async def test_the_cart_and_session_outlive_the_worker_that_held_them(shop: UpShop) -> None:
    async with Browser(shop.address, "192.0.2.20") as browser:
        first, second = await browse(browser, 2)
        await signup(browser, "kit@example.com")
        await add(browser, first.id, 2)
        assert await cart_lines(browser) == {first.id: 2}
        session = browser.cookie(COOKIE)
        assert session is not None
        victim = await browser.worker()  # on the connection that served all of the above
        workers = shop.workers()
        assert victim in workers

        os.kill(victim, signal.SIGKILL)
        await gone(victim)
        assert await cart_lines(browser) == {first.id: 2}
        assert await browser.worker() != victim
        assert browser.cookie(COOKIE) == session
        assert "Hello, Bo" in await browser.page("/account")

        await restarted(shop, workers, victim)
        await add(browser, second.id)
        assert await cart_lines(browser) == {first.id: 2, second.id: 1}
        assert browser.cookie(COOKIE) == session
    assert "exited unexpectedly" in shop.log()


async def test_a_burst_of_sign_in_attempts_gets_429_with_retry_after(shop: UpShop) -> None:
    async with (
        Browser(shop.address, "192.0.2.30") as hammer,
        Browser(shop.address, "192.0.2.31") as other,
    ):
        statuses, waits = [], []
        for _ in range(DEFAULT_RULES["login"].burst + 5):
            response = await hammer.get("/account/signin")
            await response.read()
            statuses.append(response.status)
            if response.status == 429:
                waits.append(response.headers["Retry-After"])
        assert statuses[0] == 200 and 429 in statuses, statuses
        assert set(statuses) == {200, 429}, statuses
        assert all(wait.isdigit() and int(wait) >= 1 for wait in waits), waits

        asked = await hammer.get("/account/signin", headers={"Accept": "application/json"})
        assert asked.status == 429
        assert (await asked.json())["retry_after"] == int(asked.headers["Retry-After"])
        assert (await hammer.get("/")).status == 200  # other route classes are not held back
        assert (await other.get("/account/signin")).status == 200  # nor other clients
