"""schema.clean_frame's cell rules, on text read as text and on the same file read typed.

preprocess reads with ``csv_io.read_typed`` (numbers parsed by the reader where a whole column is
numbers), train with ``csv_io.read_as_text``; both must give the same cleaned rows, drop counts and
errors, so every case here runs through both readers.
"""

from __future__ import annotations

from pathlib import Path

import csv_io
import numpy as np
import pandas as pd
import pytest
from failure import InputError
from schema import NA_TOKENS, clean_frame, parse_numeric

HEADER = "x,y,kind,target\n"


def _read_both(tmp_path: Path, *texts: str, text_columns: tuple[str, ...] = ("kind",)
               ) -> dict[str, pd.DataFrame]:
    paths = []
    for i, text in enumerate(texts):
        path = tmp_path / f"part-{i}.csv"
        path.write_text(text)
        paths.append(path)
    files = csv_io.inspect_all(paths)
    return {"text": csv_io.read_as_text(files),
            "typed": csv_io.read_typed(files, text_columns=text_columns, na_values=NA_TOKENS)}


def _clean_both(tmp_path: Path, *texts: str, problem_type: str = "regression",
                categorical: list[str] | None = None) -> dict:
    labels = ("target",) if problem_type == "classification" else ()
    frames = _read_both(tmp_path, *texts, text_columns=tuple(categorical or ()) + labels)
    return {how: clean_frame(raw, target="target", problem_type=problem_type, source="data",
                             categorical=categorical, min_rows=1)
            for how, raw in frames.items()}


def _same(cleaned: dict):
    text, typed = cleaned["text"], cleaned["typed"]
    pd.testing.assert_frame_equal(text.frame, typed.frame, check_exact=True)
    assert (text.dropped, text.numeric, text.categorical) == (typed.dropped, typed.numeric,
                                                               typed.categorical)
    return text


def test_clean_numbers_parse_in_the_reader_and_match_the_text_path(tmp_path: Path) -> None:
    body = "".join(f"{i * 0.5},{-i},k{i % 2},{i * 10}\n" for i in range(6)) + "1e3,NA,k0,5\n"
    frames = _read_both(tmp_path, HEADER + body)
    assert frames["typed"]["x"].dtype == np.float64 and frames["typed"]["target"].dtype.kind in "if"
    assert pd.api.types.is_string_dtype(frames["text"]["x"])
    cleaned = _same(_clean_both(tmp_path, HEADER + body, categorical=["kind"]))
    assert cleaned.frame["x"].tolist() == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 1000.0]
    assert np.isnan(cleaned.frame["y"].iloc[-1])  # NA is missing (imputed later), not dropped
    assert dict(cleaned.dropped) == {}


def test_dirty_cells_get_the_same_verdict_whichever_reader(tmp_path: Path) -> None:
    rows = [
        " 1.5 ,2,a,10",       # padded number: parsed
        "\u00a03,4,b,20",     # non-breaking space: stripped as Python strips it
        "twelve,5,a,30",      # junk: row dropped as non_numeric:x
        "inf,6,a,40",         # infinite: row dropped as non_finite:x
        "-NaN,7,b,50",        # not one of the NA spellings: junk
        "NA ,8, a ,60",       # NA spelling with padding: missing
        "None,9,NULL,",       # missing target: dropped
        "x,y,kind,target",    # header line repeated by a concatenated export
        " x , y ,kind , target",
        "4,#N/A,<NA>,70",
    ]
    cleaned = _same(_clean_both(tmp_path, HEADER + "\n".join(rows) + "\n", categorical=["kind"]))
    assert dict(cleaned.dropped) == {"repeated_header_line": 2, "non_numeric:x": 2,
                                     "non_finite:x": 1, "missing_target": 1}
    frame = cleaned.frame
    assert frame["x"].tolist()[:2] == [1.5, 3.0] and np.isnan(frame["x"].iloc[2])
    assert frame["kind"].tolist()[:3] == ["a", "b", "a"] and pd.isna(frame["kind"].iloc[3])
    assert frame["kind"].dtype == object and frame["target"].tolist() == [10.0, 20.0, 60.0, 70.0]


def test_a_column_typed_in_one_file_and_text_in_another_keeps_its_spelling(tmp_path: Path) -> None:
    first = HEADER + "1,2,1,10\n2,3,2,20\n"
    second = HEADER + "3,4,b,30\n4,5,c,40\n5,6,d,50\n"
    frames = _read_both(tmp_path, first, second, text_columns=())
    assert frames["typed"]["kind"].tolist() == ["1", "2", "b", "c", "d"]  # not 1.0, 2.0
    cleaned = _same(_clean_both(tmp_path, first, second, categorical=None))
    assert cleaned.categorical == ["kind"]  # inferred: mostly text
    assert cleaned.frame["kind"].tolist() == ["1", "2", "b", "c", "d"]


def test_columns_named_like_values_stay_text_so_header_lines_are_found(tmp_path: Path) -> None:
    text = "1,NA,kind,target\n5,6,a,10\n1,NA,kind,target\n7,8,b,20\n"
    frames = _read_both(tmp_path, text)
    assert list(frames["typed"].columns) == ["1", "NA", "kind", "target"]
    assert not any(csv_io.is_number_column(frames["typed"][c]) for c in ("1", "NA"))
    cleaned = _same(_clean_both(tmp_path, text, categorical=["kind"]))
    assert dict(cleaned.dropped) == {"repeated_header_line": 1}


def test_classification_labels_keep_their_spelling(tmp_path: Path) -> None:
    text = HEADER + "1,2,a,1.50\n2,3,b,2.5\n3,4,a,1.50\n4,5,b,\n"
    cleaned = _same(_clean_both(tmp_path, text, problem_type="classification", categorical=["kind"]))
    assert cleaned.frame["target"].tolist() == ["1.50", "2.5", "1.50"]
    assert dict(cleaned.dropped) == {"missing_target": 1}


def test_mostly_text_column_is_a_schema_error_with_an_example(tmp_path: Path) -> None:
    text = HEADER + "1,high,a,10\n2,low,b,20\n3,4,a,30\n"
    for raw in _read_both(tmp_path, text).values():
        with pytest.raises(InputError, match=r"column 'y' must be numeric but 2 of 3 values are not "
                                             r"\(e.g. 'high'\)"):
            clean_frame(raw, target="target", problem_type="regression", source="data",
                        categorical=["kind"], min_rows=1)


def test_parse_numeric_masks() -> None:
    cells = pd.Series(["1", " 2 ", "", "nan", "n/a", "abc", "-inf", None], dtype=str)
    parsed = parse_numeric(cells)
    assert parsed.missing.tolist() == [False, False, True, True, True, False, False, True]
    assert parsed.bad.tolist() == [False, False, False, False, False, True, False, False]
    assert parsed.values[:2].tolist() == [1.0, 2.0] and parsed.values[6] == -np.inf
    assert parsed.filled == 4
    typed = parse_numeric(pd.Series([1.0, np.nan, 3.0]))
    assert typed.missing.tolist() == [False, True, False] and not typed.bad.any()
