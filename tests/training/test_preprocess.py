"""preprocess.py end to end in a container-shaped temp dir, on the bundled data and on bad input."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
from training_support import DATA, HOUSING_ARGS, Container, classification_data

SPLITS = ("train", "validation", "test")


def _outputs(c: Container) -> dict[str, pd.DataFrame]:
    out = c.opt_ml / "processing" / "output"
    return {s: pd.concat([pd.read_csv(p) for p in sorted((out / s).glob("*.csv"))]) for s in SPLITS}


def test_bundled_data_splits_and_profile(container: Container, housing: pd.DataFrame) -> None:
    (container.path("processing", "input", "raw") / DATA.name).write_bytes(DATA.read_bytes())
    result = container.run("preprocess.py", *HOUSING_ARGS)
    assert result.returncode == 0, result.stderr
    out = container.opt_ml / "processing" / "output"
    splits = _outputs(container)
    assert sum(len(f) for f in splits.values()) == len(housing) == 20640
    for frame in splits.values():
        assert list(frame.columns) == list(housing.columns)  # raw columns, nothing derived
    assert 0.13 < len(splits["test"]) / len(housing) < 0.17
    # stratified on target bins: every split has the same price distribution
    medians = [frame["median_house_value"].median() for frame in splits.values()]
    assert max(medians) - min(medians) < 0.03 * np.median(medians)

    profile = json.loads((out / "profile" / "profile.json").read_text())
    assert profile["rows"]["read"] == profile["rows"]["usable"] == 20640
    assert profile["rows"]["dropped"] == {}
    assert profile["columns"]["total_bedrooms"]["missing"] == 207
    assert profile["columns"]["ocean_proximity"]["kind"] == "categorical"
    assert set(profile["derived_features"]) == {"rooms_per_household", "bedrooms_per_room",
                                                "population_per_household"}
    assert profile["target_summary"]["looks_capped"] is True
    assert profile["target_summary"]["max"] == 500001.0
    assert profile["inputs"][0]["sha256"] == hashlib.sha256(DATA.read_bytes()).hexdigest()
    for name, digest in profile["outputs"].items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest


def test_split_is_deterministic_and_seeded(tmp_path, monkeypatch, housing: pd.DataFrame) -> None:
    digests = []
    for run, seed in enumerate(("42", "42", "7")):
        c = Container(tmp_path / str(run), monkeypatch)
        housing.head(2000).to_csv(c.path("processing", "input", "raw") / "part.csv", index=False)
        assert c.call("preprocess.py", *HOUSING_ARGS, "--seed", seed) == 0
        profile = json.loads((c.opt_ml / "processing/output/profile/profile.json").read_text())
        digests.append(profile["outputs"])
    assert digests[0] == digests[1]
    assert digests[0] != digests[2]


def test_dirty_rows_are_dropped_and_counted(container: Container, housing: pd.DataFrame) -> None:
    raw = housing.head(300).astype(str)
    raw.loc[3, "households"] = "twelve"
    raw.loc[4, "total_rooms"] = "NaN"  # a missing-value spelling: kept, imputed later
    raw.loc[5, "median_house_value"] = ""
    raw.loc[8, "population"] = "inf"
    raw.loc[9] = list(raw.columns)  # a header line repeated inside the data (concatenated exports)
    folder = container.path("processing", "input", "raw", "nested")
    raw.iloc[:150].to_csv(folder / "a.csv", index=False)
    raw.iloc[150:].to_csv(folder / "b.csv.gz", index=False, compression="gzip")
    assert container.call("preprocess.py", *HOUSING_ARGS) == 0
    profile = json.loads((container.opt_ml / "processing/output/profile/profile.json").read_text())
    assert profile["rows"]["dropped"] == {"non_numeric:households": 1, "missing_target": 1,
                                          "non_finite:population": 1, "repeated_header_line": 1}
    assert profile["rows"]["usable"] == 296
    assert len(profile["inputs"]) == 2


def test_drop_capped_target(container: Container, housing: pd.DataFrame) -> None:
    housing.head(3000).to_csv(container.path("processing", "input", "raw") / "d.csv", index=False)
    assert container.call("preprocess.py", *HOUSING_ARGS, "--drop-capped-target") == 0
    splits = _outputs(container)
    assert max(f["median_house_value"].max() for f in splits.values()) < 500001
    profile = json.loads((container.opt_ml / "processing/output/profile/profile.json").read_text())
    assert profile["rows"]["dropped"]["capped_target"] == profile["target_summary"]["rows_at_max"] > 0


def test_one_shard_of_a_multi_instance_job(container: Container, housing: pd.DataFrame) -> None:
    config = container.path("config") / "resourceconfig.json"
    config.write_text(json.dumps({"current_host": "algo-2", "hosts": ["algo-1", "algo-2"]}))
    housing.iloc[1::2].head(1000).to_csv(container.path("processing", "input", "raw") / "s.csv", index=False)
    assert container.call("preprocess.py", *HOUSING_ARGS) == 0
    out = container.opt_ml / "processing" / "output"
    for split in SPLITS:
        assert [p.name for p in (out / split).glob("*.csv")] == [f"{split}-algo-2.csv"]
    assert (out / "train" / "schema-algo-2.json").is_file()  # one per host, merged by train.py
    profile = json.loads((out / "profile" / "profile-algo-2.json").read_text())
    assert profile["host"] == "algo-2" and profile["rows"]["usable"] == 1000


def test_classification_split_is_stratified_on_the_label(container: Container, housing) -> None:
    frame = classification_data(housing, "binary")
    frame.to_csv(container.path("processing", "input", "raw") / "c.csv", index=False)
    assert container.call("preprocess.py", "--target", "expensive", "--problem-type", "classification") == 0
    shares = [f["expensive"].mean() for f in _outputs(container).values()]
    assert max(shares) - min(shares) < 0.01


def _write(c: Container, text: str, name: str = "data.csv") -> None:
    (c.path("processing", "input", "raw") / name).write_text(text)


def _csv(frame: pd.DataFrame, **kw) -> str:
    return frame.to_csv(index=False, **kw)


def _ragged(text: str, line: int) -> str:
    """``text`` with the last field of one line (1-based, header is line 1) cut off."""
    lines = text.splitlines()
    lines[line - 1] = lines[line - 1].rsplit(",", 1)[0]
    return "\n".join(lines) + "\n"


BAD_INPUTS = {
    "empty file": (lambda h: "", [], "data.csv: empty file"),
    "header only": (lambda h: _csv(h.head(0)), [], "header only, no data rows"),
    "missing target column": (lambda h: _csv(h.head(100).drop(columns="median_house_value")), [],
                              "target column 'median_house_value' not found; the header has"),
    "non-numeric target": (lambda h: _csv(h.head(100).assign(median_house_value="expensive")), [],
                           "target column 'median_house_value' (regression) must be numeric"),
    "all-NaN feature": (lambda h: _csv(h.head(100).assign(total_rooms=np.nan)), [],
                        "feature column 'total_rooms' has no values"),
    "wrong delimiter": (lambda h: _csv(h.head(100), sep=";"), [], "looks semicolon-delimited"),
    "duplicate header": (lambda h: _csv(h.head(100)).replace("population,households",
                                                            "population,population", 1), [],
                         "duplicate column name(s) in header: population"),
    "single row": (lambda h: _csv(h.head(1)), [], "only 1 usable row(s), need at least 30"),
    "ragged row": (lambda h: _ragged(_csv(h.head(100)), line=7), [],
                   "data.csv: line 7 is ragged: it has 9 fields, the header has 10"),
    "constant regression target": (lambda h: _csv(h.head(100).assign(median_house_value=5.0)), [],
                                   "regression target 'median_house_value' has the same value (5.0) "
                                   "in every usable row; R² is undefined"),
    "recipe without its columns": (lambda h: _csv(h.head(100).drop(columns="households")), [],
                                   "feature recipe 'california_ratios' needs numeric column(s) "
                                   "['households']"),
    "unknown recipe": (lambda h: _csv(h.head(100)), ["--feature-recipes", "fancy"],
                       "unknown feature recipe 'fancy'; known recipes: ['california_ratios']"),
    "declared column absent": (lambda h: _csv(h.head(100)), ["--drop-columns", "zip_code"],
                               "--drop-columns names column(s) ['zip_code'] that"),
    "column declared twice": (lambda h: _csv(h.head(100)), ["--numeric-columns", "ocean_proximity"],
                              "column 'ocean_proximity' is in both --numeric-columns and "
                              "--categorical-columns"),
    "positive class not a label": (
        lambda h: _csv(classification_data(h.head(100), "binary")),
        ["--target", "expensive", "--problem-type", "classification", "--positive-class", "yes"],
        "--positive-class 'yes' is not a label of column 'expensive'; its labels are [0, 1]"),
    "one class": (lambda h: _csv(classification_data(h.head(100), "binary").assign(expensive=1)),
                  ["--target", "expensive", "--problem-type", "classification"],
                  "classification target 'expensive' has a single class"),
    "non-numeric declared numeric": (lambda h: _csv(h.head(100).assign(median_income="high")),
                                     ["--numeric-columns", "median_income"],
                                     "column 'median_income' must be numeric"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_fails_with_a_reason(case: str, container: Container, housing) -> None:
    make, args, expected = BAD_INPUTS[case]
    _write(container, make(housing))
    assert container.call("preprocess.py", *HOUSING_ARGS, *args) == 1
    message = container.failure("processing")
    assert expected in message, message
    assert message.count("\n") == 1  # one line a person reads in the console
    assert not (container.opt_ml / "processing" / "output" / "train").exists()


def test_failure_reaches_the_exit_code_and_message_file(container: Container, housing) -> None:
    _write(container, _csv(housing.head(100), sep=";"))
    result = container.run("preprocess.py", *HOUSING_ARGS)
    assert result.returncode == 1
    assert "looks semicolon-delimited" in container.failure("processing")
    assert "[ERROR] data.csv: header has a single column" in result.stderr
    assert "Traceback" not in result.stderr


def test_no_input_files_and_bad_options(container: Container) -> None:
    container.path("processing", "input", "raw")
    assert container.call("preprocess.py", *HOUSING_ARGS) == 1
    assert "no .csv or .csv.gz files" in container.failure("processing")
    assert container.call("preprocess.py", *HOUSING_ARGS, "--test-fraction", "0.9") == 1
    assert "--test-fraction must be between 0 and 0.5" in container.failure("processing")


def test_help_runs_standalone(container: Container) -> None:
    result = container.run("preprocess.py", "--help")
    assert result.returncode == 0 and "--input-dir" in result.stdout


def test_bom_and_an_unknown_extra_column(container: Container, housing) -> None:
    """Excel's "CSV UTF-8" starts with a byte-order mark; a column nothing declared is a feature."""
    frame = housing.head(400).assign(survey_team=lambda f: np.where(f.index % 2, "north", "south"))
    path = container.path("processing", "input", "raw") / "export.csv"
    path.write_bytes(frame.to_csv(index=False).encode("utf-8-sig"))
    assert container.call("preprocess.py", *HOUSING_ARGS) == 0
    profile = json.loads((container.opt_ml / "processing/output/profile/profile.json").read_text())
    features = {f["name"]: f for f in profile["schema"]["features"]}
    assert list(features)[0] == "longitude"  # not "\ufefflongitude"
    assert features["survey_team"] == {"name": "survey_team", "kind": "categorical",
                                       "n_categories": 2, "categories": ["north", "south"]}
    assert "survey_team" in _outputs(container)["train"].columns
