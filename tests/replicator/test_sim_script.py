"""Smoke run of scripts/sim_replication.py: it finishes and prints its table and targets."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "sim_replication.py"


def test_the_simulation_figures_script_runs_quick() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("20% at receivers") for line in lines)
    assert any("convergence under 20% loss" in line for line in lines)
