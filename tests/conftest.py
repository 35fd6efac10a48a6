"""Fixtures shared by every test: real daemons and real databases."""

pytest_plugins = [
    "tests.plugins.daemons",
    "tests.plugins.database",
    "tests.plugins.cache",
    "tests.plugins.searchd",
]
