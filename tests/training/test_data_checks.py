"""Data checks before training (include/training/data_checks.py): PSI, bins, each check, the
table, and preprocess.py writing data_checks.json against a champion's profile.json."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from data_check_policy import DEFAULTS, PSI_MODERATE, THRESHOLDS
from data_checks import (
    FAIL,
    INFO,
    MODERATE,
    PASS,
    SKIPPED,
    binned,
    distribution,
    html_section,
    profile_distributions,
    psi,
    render_table,
    run_checks,
)
from training_support import DATA, HOUSING_ARGS, TRAINING, Container

RNG = np.random.default_rng(7)


def _frame(n: int = 4000, shift: float = 0.0, scale: float = 1.0, missing: float = 0.0,
           colors: tuple[float, float, float] = (0.5, 0.3, 0.2)) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    income = rng.normal(5, 2, n) * scale + shift
    income[rng.random(n) < missing] = np.nan
    return pd.DataFrame({
        "income": income,
        "rooms": rng.integers(1, 9, n).astype(float),
        "color": rng.choice(["red", "green", "blue"], n, p=list(colors)),
        "price": rng.normal(100, 10, n),
    })


def _schema(features: dict[str, str] | None = None, target: str = "price",
            problem_type: str = "regression", labels: list | None = None) -> dict:
    features = features or {"income": "numeric", "rooms": "numeric", "color": "categorical"}
    return {"target": target, "problem_type": problem_type, "labels": labels,
            "features": [{"name": n, "kind": k} for n, k in features.items()]}


def _profile(frame: pd.DataFrame, schema: dict) -> dict:
    """The parts of a champion's profile.json the checks read (as preprocess.py writes them)."""
    from profile_stats import frame_stats

    return {"schema": schema, "columns": frame_stats(frame), "rows": {"usable": len(frame)},
            "input_sha256": "ab" * 32, "distributions": profile_distributions(frame, schema)}


def _by_name(result: dict) -> dict[str, dict]:
    return {c["check"] + (f" {c['column']}" if c["column"] else ""): c for c in result["checks"]}


def test_psi_is_zero_for_equal_shares_and_symmetric():
    counts = np.array([10.0, 20.0, 30.0, 40.0])
    assert psi(counts, counts * 3) == pytest.approx(0.0)
    other = np.array([40.0, 30.0, 20.0, 10.0])
    assert psi(counts, other) == pytest.approx(psi(other, counts))
    # by hand: sum (a - e) ln(a / e) over shares
    e, a = counts / 100, other / 100
    assert psi(counts, other) == pytest.approx(float(np.sum((a - e) * np.log(a / e))))
    assert math.isnan(psi(counts, np.zeros(4)))


def test_an_empty_bin_gives_a_large_finite_psi():
    value = psi(np.array([50.0, 50.0, 0.0]), np.array([40.0, 40.0, 20.0]))
    assert math.isfinite(value) and value > 1


def test_numeric_distribution_is_deciles_and_new_data_bins_on_the_champions_edges():
    values = pd.Series(np.arange(1000, dtype=float))
    dist = distribution(values, "numeric")
    assert len(dist["edges"]) == 9 and sum(dist["counts"]) == 1000
    assert max(dist["counts"]) - min(dist["counts"]) <= 1
    old, new = binned(pd.Series(np.arange(1000, dtype=float) + 500), dist)
    assert old.tolist() == dist["counts"]
    assert new[-1] == 600  # 900..1499: everything above the top edge (899.1) in the last bin
    assert new.sum() == 1000


def test_categorical_distribution_counts_and_an_unseen_category_goes_to_other():
    dist = distribution(pd.Series(["a", "a", "b", None]), "categorical")
    assert dist == {"kind": "categorical", "counts": {"a": 2, "b": 1}, "other": 0}
    old, new = binned(pd.Series(["a", "c", "c"]), dist)
    assert old.tolist() == [2, 1, 0] and new.tolist() == [1, 0, 2]


def test_first_run_checks_the_data_itself():
    frame = _frame(missing=0.02)
    result = run_checks(frame, _schema(), None)
    checks = _by_name(result)
    assert result["passed"] is True and result["baseline"] is None
    assert checks["schema"]["conclusion"] == INFO
    assert checks["schema"]["shown"] == "3 features (2 numeric, 1 categorical)"
    assert checks["missing rate income"]["conclusion"] == PASS
    assert not any(c["check"].startswith(("drift", "target")) for c in result["checks"])
    assert "checked the data itself only" in result["notes"][0]
    assert result["summary"] == "Data checks PASSED: 3/3 checks passed"


def test_first_run_fails_a_mostly_missing_feature():
    result = run_checks(_frame(missing=0.7), _schema(), None)
    assert result["passed"] is False
    assert _by_name(result)["missing rate income"]["conclusion"] == FAIL
    assert result["summary"].endswith("(failed: missing rate income)")


def test_same_data_as_the_champion_passes_every_check():
    frame = _frame()
    result = run_checks(frame, _schema(), _profile(frame, _schema()), baseline_source="s3://b/p.json")
    assert result["passed"] is True
    assert all(c["conclusion"] == PASS for c in result["checks"])
    assert result["baseline"] == {"profile": "s3://b/p.json", "input_sha256": "ab" * 32, "rows": 4000}
    assert {c["check"] for c in result["checks"]} == {
        "schema: columns removed", "schema: columns added", "schema: kinds changed",
        "missing rate", "drift PSI", "target shift PSI"}


def test_shifted_feature_fails_drift_and_a_small_shift_is_moderate():
    base = _frame()
    baseline = _profile(base, _schema())
    big = _by_name(run_checks(_frame(shift=3.0), _schema(), baseline))["drift PSI income"]
    assert big["conclusion"] == FAIL and big["value"] >= DEFAULTS["drift_psi_max"]
    small = _by_name(run_checks(_frame(shift=0.8), _schema(), baseline))["drift PSI income"]
    assert PSI_MODERATE <= small["value"] < DEFAULTS["drift_psi_max"], small
    assert small["conclusion"] == MODERATE and small["passed"] is True


def test_categorical_share_change_is_drift():
    baseline = _profile(_frame(), _schema())
    result = run_checks(_frame(colors=(0.1, 0.2, 0.7)), _schema(), baseline)
    assert _by_name(result)["drift PSI color"]["conclusion"] == FAIL


def test_missing_rate_jump_fails_against_the_champion_but_not_by_itself():
    baseline = _profile(_frame(), _schema())
    result = run_checks(_frame(missing=0.2), _schema(), baseline)
    check = _by_name(result)["missing rate income"]
    assert check["conclusion"] == FAIL and 0.15 < check["value"] < 0.25
    assert "(champion 0.0000)" in check["shown"]
    assert check["threshold"] == "<= 0.5, increase <= 0.05"
    assert run_checks(_frame(missing=0.2), _schema(), None)["passed"] is True


def test_schema_changes_fail_with_the_columns_named():
    baseline = _profile(_frame(), _schema())
    frame = _frame().drop(columns=["rooms"]).assign(extra=1.0, color=lambda f: f["income"])
    schema = _schema({"income": "numeric", "color": "numeric", "extra": "numeric"})
    checks = _by_name(run_checks(frame, schema, baseline))
    assert checks["schema: columns removed"]["shown"] == "rooms"
    assert checks["schema: columns added"]["shown"] == "extra"
    assert checks["schema: kinds changed"]["shown"] == "color categorical->numeric"
    assert {checks[k]["conclusion"] for k in ("schema: columns removed", "schema: columns added",
                                              "schema: kinds changed")} == {FAIL}
    assert "drift PSI color" not in checks  # another kind: no distribution to compare


def test_target_shift_regression_and_new_labels_in_classification():
    baseline = _profile(_frame(), _schema())
    shifted = _frame().assign(price=lambda f: f["price"] * 1.5)
    assert _by_name(run_checks(shifted, _schema(), baseline))["target shift PSI price"]["conclusion"] == FAIL

    labelled = _frame().assign(label=lambda f: np.where(f["income"] > 5, "yes", "no"))
    schema = _schema(target="label", problem_type="classification", labels=["no", "yes"])
    old = _profile(labelled, schema)
    same = run_checks(labelled, schema, old)
    assert _by_name(same)["target shift PSI label"]["conclusion"] == PASS
    third = labelled.assign(label=lambda f: np.where(f["rooms"] > 7, "maybe", f["label"]))
    check = _by_name(run_checks(third, schema, old))["target shift PSI label"]
    assert check["conclusion"] == FAIL and "new labels maybe" in check["shown"]


def test_a_champion_profile_without_distributions_is_noted_not_failed():
    baseline = _profile(_frame(), _schema())
    del baseline["distributions"]
    result = run_checks(_frame(shift=3.0), _schema(), baseline)
    assert result["passed"] is True
    assert _by_name(result)["drift PSI income"]["conclusion"] == SKIPPED
    assert "no distributions" in result["notes"][0]


def test_limits_are_honoured():
    baseline = _profile(_frame(), _schema())
    loose = run_checks(_frame(shift=3.0), _schema(), baseline, {"drift_psi_max": 10.0})
    assert _by_name(loose)["drift PSI income"]["conclusion"] != FAIL
    assert loose["thresholds"]["drift_psi_max"] == 10.0


def test_table_has_the_four_columns_and_one_line_per_check():
    frame = _frame()
    result = run_checks(_frame(shift=3.0), _schema(), _profile(frame, _schema()))
    lines = result["table"].splitlines()
    assert [c.strip() for c in lines[0].split("|")] == ["Check", "Value", "Threshold", "Conclusion"]
    assert set(lines[1]) <= {"-", "|"}
    assert len(lines) == 2 + len(result["checks"])
    drift = next(line for line in lines if line.startswith("drift PSI: income"))
    assert drift.rstrip().endswith("FAIL") and "< 0.25" in drift
    assert render_table(result["checks"]) == result["table"]
    section = html_section(result)
    assert "<th>Check</th><th>Value</th><th>Threshold</th><th>Conclusion</th>" in section
    assert 'class="bad">FAIL' in section and html_section(None) == ""


def test_every_threshold_has_an_option_and_a_documented_default():
    names = {t.name for t in THRESHOLDS}
    assert names == set(DEFAULTS) == {"drift_psi_max", "target_psi_max", "missing_rate_increase_max",
                                      "missing_rate_max"}
    help_text = subprocess.run([sys.executable, str(TRAINING / "data_checks.py"), "--help"],
                               capture_output=True, text=True, check=True).stdout
    assert all(t.flag in help_text for t in THRESHOLDS)


def test_preprocess_records_bins_and_checks_drifted_data_against_the_champion(
        container: Container, housing: pd.DataFrame):
    raw = container.path("processing", "input", "raw")
    (raw / DATA.name).write_bytes(DATA.read_bytes())
    first = container.run("preprocess.py", *HOUSING_ARGS)
    assert first.returncode == 0, first.stderr
    out = container.opt_ml / "processing" / "output" / "profile"
    profile = json.loads((out / "profile.json").read_text())
    assert len(profile["distributions"]["features"]["median_income"]["edges"]) == 9
    assert profile["distributions"]["target"]["name"] == "median_house_value"
    own = json.loads((out / "data_checks.json").read_text())
    assert own["passed"] is True and own["baseline"] is None
    assert "Data checks PASSED" in first.stdout

    champion = container.path("processing", "input", "baseline") / "profile.json"
    champion.write_text((out / "profile.json").read_text())
    (raw / DATA.name).unlink()
    drifted = housing.drop(columns=["housing_median_age"]).assign(
        median_income=housing["median_income"] * 1.5 + 0.5)
    drifted.loc[RNG.random(len(drifted)) < 0.2, "total_bedrooms"] = np.nan
    drifted.to_csv(raw / "drifted.csv", index=False)
    second = container.run("preprocess.py", *HOUSING_ARGS, "--baseline-uri", "s3://b/champ/profile.json")
    assert second.returncode == 0, second.stderr  # the job records; the DAG decides
    result = json.loads((out / "data_checks.json").read_text())
    failed = {c["check"] + (f" {c['column']}" if c["column"] else "")
              for c in result["checks"] if c["passed"] is False}
    assert failed == {"schema: columns removed", "missing rate total_bedrooms", "drift PSI median_income"}
    assert result["baseline"]["profile"] == "s3://b/champ/profile.json"
    assert "Data checks FAILED" in second.stdout and "Check" in second.stdout
