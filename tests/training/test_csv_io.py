"""csv_io: write_csv writes exactly what DataFrame.to_csv(index=False) writes, only faster; reading
accepts a byte-order mark and reports ragged rows by file and line."""

from __future__ import annotations

from pathlib import Path

import csv_io
import numpy as np
import pandas as pd
import pytest
from failure import InputError


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


def _read(tmp_path: Path, text: str, name: str = "data.csv") -> pd.DataFrame:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    files = csv_io.inspect_all([path])
    typed = csv_io.read_typed(files, na_values=["", "NA"])
    assert csv_io.read_as_text(files).shape == typed.shape  # train's reader applies the same checks
    return typed


def test_utf8_byte_order_mark_is_not_part_of_the_first_column_name(tmp_path: Path) -> None:
    frame = _read(tmp_path, "\ufeffsize,colour\n1,red\n2,blue\n")
    assert csv_io.inspect_csv(tmp_path / "data.csv").columns == ["size", "colour"]
    assert list(frame.columns) == ["size", "colour"] and frame["size"].tolist() == [1, 2]


@pytest.mark.parametrize("body, line, fields", [
    ("1,2,3\n4,5\n6,7,8\n", 3, 2),            # a field short: pandas would pad it with a blank
    ("1,2,3,4\n5,6,7\n", 2, 4),               # first data row long: pandas would make it an index
    ("1,2,3\n4,5,6\n7,8,9,10\n", 4, 4),       # a later row long
    ('1,"two\nlines",3\n\n4,5\n', 5, 2),      # quoted line break and a blank line still counted
])
def test_ragged_rows_are_reported_with_file_and_line(tmp_path: Path, body: str, line: int,
                                                     fields: int) -> None:
    with pytest.raises(InputError) as info:
        _read(tmp_path, "a,b,c\n" + body, name="orders.csv")
    message = str(info.value)
    assert message.startswith(f"orders.csv: line {line} is ragged: it has {fields} fields, "
                              "the header has 3")
    assert "\n" not in message


def test_trailing_empty_cells_are_not_ragged(tmp_path: Path) -> None:
    frame = _read(tmp_path, "a,b,c\n1,2,\n4,5,6\n")
    assert frame["c"].isna().tolist() == [True, False]
