"""Lint, types and layout are checked as tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", ["daemons", "core_ext", "webapp"])
def test_namespace_links_point_at_the_top_level_folders(name: str) -> None:
    link = ROOT / "sleigh" / name
    assert link.is_symlink(), f"sleigh/{name} must be a relative symlink to ../{name}"
    assert Path(link.readlink()) == Path("..") / name


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *argv], cwd=ROOT, capture_output=True, text=True, timeout=600
    )


def test_ruff_lint() -> None:
    result = _run("ruff", "check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format() -> None:
    result = _run("ruff", "format", "--check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.timeout(600)
def test_mypy_strict() -> None:
    result = _run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.timeout(600)
def test_mypy_strict_on_the_scripts() -> None:
    """The benchmark and profiling scripts import each other as top-level modules (each puts
    its own directory first on ``sys.path``), so they are checked as files, together."""
    result = _run("mypy", "scripts")
    assert result.returncode == 0, result.stdout + result.stderr
