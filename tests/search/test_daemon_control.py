"""``sleigh search ...``, ``prepare``, ``child`` and ``status`` on the demo catalog."""

from __future__ import annotations

import argparse
import asyncio
import io
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from sleigh.daemons.control import search_cmd
from sleigh.daemons.control.settings import Settings, load_settings
from sleigh.daemons.search.index import index_files
from tests.plugins.database import DEMO_PRODUCTS
from tests.plugins.searchd import StartSearchd


def _settings(home: Path, db_url: str, **search: str) -> Settings:
    env = {"SLEIGH_DATABASE_URL": db_url}
    env.update({f"SLEIGH_SEARCH_{k.upper()}": v for k, v in search.items()})
    return load_settings(None, env, home=home)


def _parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="sleigh")
    sub = top.add_subparsers(dest="command", required=True)
    search_cmd.add_parser(sub, argparse.ArgumentParser(add_help=False))
    return top


def test_the_commands_parse() -> None:
    args = _parser().parse_args(
        ["search", "query", "red", "car", "--brand", "3", "--brand", "4", "--limit", "5"]
    )
    assert args.run is search_cmd.cmd_query
    assert (args.text, args.brand, args.limit) == (["red", "car"], [3, 4], 5)
    assert _parser().parse_args(["search", "reindex", "--no-swap"]).no_swap is True
    assert _parser().parse_args(["search", "stats"]).run is search_cmd.cmd_stats


def test_child_runs_the_daemon_on_the_home(tmp_path: Path) -> None:
    settings = load_settings(None, {}, home=tmp_path)
    child = search_cmd.child(settings)
    assert child.name == "searchd"
    assert list(child.argv[1:]) == ["-m", "sleigh.daemons.search", "--home", str(tmp_path)]


async def test_status_is_down_without_a_daemon(tmp_path: Path) -> None:
    settings = load_settings(None, {}, home=tmp_path)
    component = await search_cmd.status(settings)
    assert component.state == "down"
    assert "no search daemon answered" in component.details["error"]


async def test_prepare_reindex_query_and_status(
    demo_engine: AsyncEngine,
    db_url: str,
    tmp_path: Path,
    searchd_factory: StartSearchd,
    capsys: pytest.CaptureFixture[str],
) -> None:
    home = tmp_path / "shop"
    settings = _settings(home, db_url)
    out = io.StringIO()
    first = await search_cmd.prepare(settings, out)
    assert first is not None and first.exists()
    assert f"{DEMO_PRODUCTS:,} products" in out.getvalue()
    assert await search_cmd.prepare(settings, out) is None

    daemon = searchd_factory(home=home)
    settings = _settings(home, db_url, socket=str(daemon.socket_path), keep_indexes="1")
    before = await search_cmd.status(settings)
    assert before.state == "up", before
    old_version = before.details["index_version"]

    out = io.StringIO()
    assert await asyncio.to_thread(search_cmd.reindex, settings, out=out) == 0
    assert "now serves version" in out.getvalue()
    assert len(index_files(settings.search.index_path(home))) == 1
    after = await search_cmd.status(settings)
    assert after.details["index_version"] > old_version
    assert after.details["products"] == DEMO_PRODUCTS

    args = _parser().parse_args(["search", "query", "--facets", "--limit", "3"])
    assert await asyncio.to_thread(args.run, args, settings, {}) == 0
    printed = capsys.readouterr().out
    assert f"{DEMO_PRODUCTS:,} found" in printed
    assert "brand:" in printed
    product = int(printed.split("\n")[1].split()[0])
    args = _parser().parse_args(["search", "update", str(product), "--in-stock", "no"])
    assert await asyncio.to_thread(args.run, args, settings, {}) == 0
    assert "1 product(s) changed" in capsys.readouterr().out
    args = _parser().parse_args(["search", "update", str(product)])
    assert await asyncio.to_thread(args.run, args, settings, {}) == 2
    args = _parser().parse_args(["search", "stats"])
    assert await asyncio.to_thread(args.run, args, settings, {}) == 0
    assert "index_version" in capsys.readouterr().out
