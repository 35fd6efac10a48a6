"""The stubs of the compiled modules match what the compiled modules export."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "module", ["sleigh.core_ext._tokenizer", "sleigh.core_ext._resp", "sleigh.core_ext._throttle"]
)
def test_stubtest(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        if os.environ.get("SLEIGH_REQUIRE_EXTENSIONS") == "1":
            pytest.fail(f"SLEIGH_REQUIRE_EXTENSIONS=1 but {module} is not built")
        pytest.skip(f"{module} is not built; run setup.py build_ext --inplace")
    result = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", module],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
