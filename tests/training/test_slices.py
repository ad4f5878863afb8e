"""Slice metrics: evaluate.py's ``slices`` block on the real housing models, and the grouping rules."""

from __future__ import annotations

import json
import sys

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from training_support import TEST_BOOTSTRAP, TRAINING, Container, Trained

sys.path.insert(0, str(TRAINING))

from failure import InputError  # noqa: E402
from slices import MISSING, column_kinds, groups  # noqa: E402


def _evaluate(c: Container, model: Trained, champion: Trained | None, *args: str):
    argv = ["--model-dir", str(model.tarball_dir), "--test-dir", str(model.splits / "test"),
            *TEST_BOOTSTRAP, *args]
    if champion is not None:
        argv += ["--champion-dir", str(champion.tarball_dir)]
    result = c.run("evaluate.py", *argv)
    out = c.opt_ml / "processing" / "evaluation"
    return result, (json.loads((out / "evaluation.json").read_text()) if result.returncode == 0 else None), out


def test_housing_slices_match_sklearn_per_value_with_paired_intervals(
        container: Container, regression_hgb: Trained, regression_linear: Trained) -> None:
    result, ev, out = _evaluate(container, regression_linear, regression_hgb,
                                "--slice-columns", "ocean_proximity,median_income")
    assert result.returncode == 0, result.stderr
    block = ev["slices"]
    assert (block["metric"], block["min_rows"]) == ("r2_score", 30)
    ocean, income = block["columns"]
    assert (ocean["column"], ocean["kind"], ocean["grouping"]) == ("ocean_proximity", "categorical", "values")
    assert (income["kind"], income["grouping"]) == ("numeric", "4 quantile bins")

    test = pd.read_csv(next((regression_linear.splits / "test").glob("*.csv")))
    y = test.pop("median_house_value").to_numpy()
    preds = {name: joblib.load(t.model_dir / "model.joblib").predict(test)
             for name, t in (("candidate", regression_linear), ("champion", regression_hgb))}
    by_value = {s["value"]: s for s in ocean["slices"]}
    for value, rows in test.groupby("ocean_proximity").indices.items():
        entry = by_value[value]
        assert entry["rows"] == len(rows) and entry["small"] is (len(rows) < 30)
        for name in ("candidate", "champion"):
            expected = skm.r2_score(y[rows], preds[name][rows])
            assert entry[name]["value"] == pytest.approx(expected, rel=1e-6)
            ci = entry[name]["confidence_interval"]
            assert ci["lower"] < entry[name]["value"] < ci["upper"]
        delta = entry["delta"]
        assert delta["value"] == pytest.approx(entry["candidate"]["value"] - entry["champion"]["value"])
        # paired: the difference is tighter than either model's own interval would suggest
        assert delta["standard_deviation"] < entry["candidate"]["standard_deviation"] + entry["champion"]["standard_deviation"]
    # ISLAND is in the schema but (5 rows in the whole data set) not in the test split: shown, small
    island = by_value["ISLAND"]
    assert (island["rows"], island["small"], island["candidate"]["value"]) == (0, True, None)
    assert [s["rows"] for s in ocean["slices"]] == sorted((s["rows"] for s in ocean["slices"]), reverse=True)
    assert sum(s["rows"] for s in income["slices"]) == len(y)
    assert [s["lower"] for s in income["slices"]] == sorted(s["lower"] for s in income["slices"])

    page = (out / "report.html").read_text()
    assert "<h2>Slices (r2_score per slice value)</h2>" in page
    assert "r2_score by ocean_proximity (95% intervals)" in page and "<td>ocean_proximity=INLAND</td>" in page
    assert "small (&lt; 30 rows), not judged" in page


def test_without_slice_columns_there_is_no_slice_block(container: Container, regression_linear: Trained) -> None:
    result, ev, out = _evaluate(container, regression_linear, None)
    assert result.returncode == 0, result.stderr
    assert ev["slices"] is None
    assert "<h2>Slices" not in (out / "report.html").read_text()


def test_classification_slices_use_f1_and_have_no_champion_without_one(
        container: Container, binary_logistic: Trained) -> None:
    result, ev, _ = _evaluate(container, binary_logistic, None,
                              "--slice-columns", "ocean_proximity", "--slice-min-rows", "400")
    assert result.returncode == 0, result.stderr
    [column] = ev["slices"]["columns"]
    assert ev["slices"]["metric"] == "f1"
    assert all("champion" not in s and "delta" not in s for s in column["slices"])
    assert {s["small"] for s in column["slices"]} == {True, False}


@pytest.mark.parametrize(("column", "message"), [
    ("median_house_value", "slice column 'median_house_value' is the target"),
    ("ocean_proximty", "slice column 'ocean_proximty' is not a feature of the candidate model"),
])
def test_a_column_that_cannot_be_sliced_by_is_named(container: Container, regression_linear: Trained,
                                                    column: str, message: str) -> None:
    result, _, _ = _evaluate(container, regression_linear, None, "--slice-columns", column)
    assert result.returncode == 1
    assert message in (container.opt_ml / "output" / "message").read_text()


def test_grouping_rules() -> None:
    numeric = {"name": "rooms", "kind": "numeric"}
    few = groups(pd.Series([1.0, 2, 2, 3, np.nan]), numeric, bins=4, max_slices=50)
    assert [(label, list(rows)) for label, rows, _ in few] == [("1", [0]), ("2", [1, 2]), ("3", [3]), (MISSING, [4])]
    many = groups(pd.Series(np.arange(100.0)), numeric, bins=4, max_slices=50)
    assert [len(rows) for _, rows, _ in many] == [25, 25, 25, 25]
    assert many[-1][0] == "[74.25, 99]" and many[0][2] == {"lower": 0.0, "upper": 24.75}
    band = {"name": "band", "kind": "categorical", "categories": ["a", "b", "gone"]}
    cats = groups(pd.Series(["b", "a", "b", None], dtype="category"), band, bins=4, max_slices=50)
    assert [(label, len(rows)) for label, rows, _ in cats] == [("b", 2), ("a", 1), ("gone", 0), (MISSING, 1)]
    with pytest.raises(InputError, match="slice column 'band' has 4 values, more than --max-slices 3"):
        groups(pd.Series(["b", "a", "b", None]), band, bins=4, max_slices=3)


def test_column_kinds_come_from_the_models_schema() -> None:
    schema = {"features": [{"name": "x", "kind": "numeric"}, {"name": "c", "kind": "categorical"}]}
    assert column_kinds(schema, ["c"], "y") == {"c": {"name": "c", "kind": "categorical"}}
    with pytest.raises(InputError, match="features: x, c"):
        column_kinds(schema, ["z"], "y")


def test_slice_options_are_checked(container: Container, regression_linear: Trained) -> None:
    result, _, _ = _evaluate(container, regression_linear, None, "--slice-columns", "ocean_proximity",
                             "--slice-bins", "1")
    assert result.returncode == 1
    assert "--slice-bins >= 2" in (container.opt_ml / "output" / "message").read_text()


def test_svg_interval_chart_is_self_contained() -> None:
    import svg_charts

    svg = svg_charts.intervals(["a (10)", "b (3)"], [("candidate", [0.5, None], [0.4, None], [0.6, None]),
                                                     ("champion", [0.7, 0.2], [0.6, 0.1], [0.8, 0.3])],
                               "r2 by c", "r2", muted=[False, True])
    assert svg.startswith("<svg") and svg.endswith("</svg>") and "<script" not in svg
    assert svg.count("<circle") == 3 + 2  # three dots and two legend marks
    assert 'fill="#999"' in svg  # the small slice's label is grey

