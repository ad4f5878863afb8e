"""Each benchmark runs end to end at tiny size through ``python -m bench --quick`` and yields its
table rows; the figures themselves are for reports, never asserted (benchmarks are not tests)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# benchmark -> the figures its rows must carry (the table has one row per figure)
EXPECTED = {
    "dag_parse": ["DAG file parse time"],
    "pipeline": ["offline end-to-end run"],
    "evaluate": ["evaluate.py, 3,000 test rows: time", "evaluate.py, 3,000 test rows: peak RSS"],
    "emulator": ["per-job emulator overhead, processing job", "per-job emulator overhead, training job",
                 "InvokeEndpoint p50, 1 client", "InvokeEndpoint p99, 1 client",
                 "InvokeEndpoint p50, 50 clients", "InvokeEndpoint p99, 50 clients"],
    "sharding": ["Processing InstanceCount 2 vs 1"],
}
@pytest.mark.slow  # 25-130 s each on 2 cores, even at tiny size
@pytest.mark.parametrize("name", list(EXPECTED))
def test_benchmark_runs_at_tiny_size(name: str, tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "bench", "--quick", "--only", name,
                             "--results-dir", str(tmp_path)],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    table = result.stdout.splitlines()
    assert table[0].split("|")[0].strip() == "figure"
    payload = json.loads((tmp_path / "results.json").read_text())
    figures = [row["figure"] for row in payload["rows"]]
    assert len(figures) == len(EXPECTED[name])
    for expected, row in zip(EXPECTED[name], payload["rows"], strict=True):
        assert row["figure"].startswith(expected)
        assert any(line.startswith(row["figure"]) for line in table)
        assert row["ours"] > 0 and row["baseline"] > 0 and math.isfinite(row["ratio"])
        assert row["met"] in (True, False, None)
    assert "| figure |" in (tmp_path / "results.md").read_text()


def test_unknown_benchmark_is_a_clear_error(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "bench", "--only", "evaluat"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "unknown benchmark evaluat; choose from pipeline, dag_parse, evaluate, emulator, sharding" \
        in result.stderr
