"""The evaluate benchmark runs end to end at a tiny size (figures are for the report, not asserted)."""

from __future__ import annotations

import subprocess

import pytest
from training_support import PYTHON, ROOT


@pytest.mark.slow
def test_bench_evaluate_tiny() -> None:
    result = subprocess.run([PYTHON, str(ROOT / "bench" / "bench_evaluate.py"), "--rows", "3000",
                             "--repeat", "1", "--bootstrap-samples", "20", "--model", "linear_regression"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    table = [line for line in lines if line.startswith(("evaluate.py ", "naive")) and " 3,000 " in line]
    assert [line.split()[0] for line in table] == ["evaluate.py", "naive", "naive,"]
    assert any("peak RSS" in line and "under the 1 GiB budget" in line for line in lines)
