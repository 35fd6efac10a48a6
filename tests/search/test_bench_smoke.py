"""``scripts/bench_search.py --quick`` runs and prints every engine and every target."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROWS = ["sleigh in process", "tantivy", "SQLite FTS5"]
TARGETS = [
    "q/s 1T sleigh/tantivy",
    "q/s 2T sleigh/tantivy",
    "p99 1T sleigh/tantivy",
    "q/s 1T sleigh/FTS5",
    "facets on / plain (time)",
    "build time sleigh/tantivy",
]


@pytest.mark.timeout(120)
def test_quick_run_prints_the_table_and_the_targets(tmp_path: Path) -> None:
    pytest.importorskip("tantivy")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench_search.py"), "--quick"],
        cwd=ROOT,
        env={**os.environ, "TMPDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    for row in ROWS:
        assert any(line.startswith(row) for line in lines), (row, proc.stdout)
    for target in TARGETS:
        verdicts = [
            line.rstrip().endswith((" met", " NOT MET")) for line in lines if target in line
        ]
        assert verdicts == [True], (target, proc.stdout)
