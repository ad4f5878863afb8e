"""csv_io.write_csv writes exactly what DataFrame.to_csv(index=False) writes, only faster."""

from __future__ import annotations

from pathlib import Path

import csv_io
import numpy as np
import pandas as pd


def _both(frame: pd.DataFrame, tmp_path: Path) -> tuple[bytes, bytes]:
    csv_io.write_csv(frame, tmp_path / "ours.csv")
    frame.to_csv(tmp_path / "pandas.csv", index=False)
    return (tmp_path / "ours.csv").read_bytes(), (tmp_path / "pandas.csv").read_bytes()


def test_floats_and_text_byte_for_byte(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    random_bits = rng.integers(0, 2**63, size=2000, dtype=np.int64).view(np.float64)
    edge = [0.0, -0.0, np.nan, np.inf, -np.inf, 1e16, 9999999999999998.0, 1e-4, 9.9e-5, 5e-324,
            1.7976931348623157e308, 0.1, 1 / 3, 41.0, -122.23, 2.0**53 + 2]
    floats = np.concatenate([random_bits[np.isfinite(random_bits)], edge,
                             np.round(rng.uniform(-500, 500_000, 2000), 2)])
    words = ["<1H OCEAN", "", "has,comma", 'has "quote"', "line\nbreak", " padded ", np.nan, None]
    frame = pd.DataFrame({
        "value": floats,
        "label": pd.Series([words[i % len(words)] for i in range(len(floats))], dtype=object),
        "text": pd.Series([str(i) if i % 7 else np.nan for i in range(len(floats))], dtype=str),
    })
    ours, theirs = _both(frame, tmp_path)
    assert ours == theirs
    assert b'"has,comma"' in ours and b"-0.0" in ours  # the cases that are easy to get wrong


def test_other_dtypes_are_left_to_pandas(tmp_path: Path) -> None:
    frame = pd.DataFrame({"count": [1, 2, 3], "ratio": np.array([0.5, 1.5, 2.5], dtype=np.float32),
                          "flag": [True, False, True]})
    ours, theirs = _both(frame, tmp_path)
    assert ours == theirs == b"count,ratio,flag\n1,0.5,True\n2,1.5,False\n3,2.5,True\n"
