"""The ``[search]`` section: defaults, bounds, composed sort rules, endpoints."""

from __future__ import annotations

from pathlib import Path

import pytest

from sleigh.core_ext.search import plan
from sleigh.daemons.runtime.config import ConfigError, load_section
from sleigh.daemons.search.config import (
    INDEX_MAX_LIMIT,
    INDEX_MAX_TERMS,
    INDEX_MAX_TEXT,
    SORT_KEYS,
    SearchConfig,
    parse_sort_rules,
)
from sleigh.daemons.search.service import limits


def test_defaults(tmp_path: Path) -> None:
    cfg = load_section(SearchConfig, {}, {})
    assert cfg.index_path(tmp_path) == tmp_path / "search"
    assert cfg.socket_path(tmp_path) == tmp_path / "run" / "searchd.sock"
    assert cfg.worker_count() >= 1
    assert cfg.tcp_endpoint() is None
    assert cfg.sort_rule_map() == {
        "instock_first": ("in_stock", "relevance"),
        "instock_price_asc": ("in_stock", "price_asc"),
    }
    assert {"relevance", "instock_first"} <= limits(cfg).sorts


def test_the_ceilings_are_the_index_s() -> None:
    assert (INDEX_MAX_TERMS, INDEX_MAX_TEXT, INDEX_MAX_LIMIT) == (
        plan.MAX_TERMS,
        plan.MAX_TEXT,
        plan.MAX_LIMIT,
    )
    assert set(SORT_KEYS) == set(plan.KEYS)


def test_environment_overrides_and_rules() -> None:
    env = {
        "SLEIGH_SEARCH_WORKERS": "3",
        "SLEIGH_SEARCH_TCP": "127.0.0.1:7300",
        "SLEIGH_SEARCH_SORT_RULES": "cheap_first = in_stock, price_asc ; new=newest",
    }
    cfg = load_section(SearchConfig, {}, env)
    assert cfg.worker_count() == 3
    assert cfg.tcp_endpoint() == "tcp://127.0.0.1:7300"
    assert cfg.sort_rule_map() == {"cheap_first": ("in_stock", "price_asc"), "new": ("newest",)}


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("sort_rules", "fast=speed", "unknown sort key"),
        ("sort_rules", "price_asc=newest", "is taken"),
        ("sort_rules", "Bad Name=newest", "write a rule as"),
        ("tcp", "7300", "HOST:PORT"),
        ("tcp", "localhost:99999", "HOST:PORT"),
        ("endpoints", "http://x", "endpoints are"),
        ("max_limit", "5000", "at most"),
        ("max_terms", "0", "at least"),
    ],
)
def test_bad_values_are_named(key: str, value: str, says: str) -> None:
    with pytest.raises(ConfigError, match=f"search.{key}: .*{says}"):
        load_section(SearchConfig, {key: value}, {})


def test_rules_parse_to_their_keys() -> None:
    assert parse_sort_rules("") == {}
    with pytest.raises(ValueError, match="taken"):
        parse_sort_rules("a=newest;a=price_asc")
