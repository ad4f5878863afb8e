from __future__ import annotations

import json

import pytest
from sagemaker_mlops.gate import decide
from sagemaker_mlops.gate_policy import DEFAULT_THRESHOLDS, GatePolicy, Threshold
from sagemaker_mlops.verdict import Verdict, render_table, summary_line


def regression_policy(**options) -> GatePolicy:
    return GatePolicy.build("regression", **options)


@pytest.mark.parametrize(
    ("op", "value", "threshold", "passed"),
    [
        (">", 0.61, 0.6, True),
        (">", 0.6, 0.6, False),
        (">=", 0.6, 0.6, True),
        (">=", 0.59, 0.6, False),
        ("<", 0.59, 0.6, True),
        ("<", 0.6, 0.6, False),
        ("<=", 0.6, 0.6, True),
        ("<=", 0.61, 0.6, False),
    ],
)
def test_every_operator(evaluation, metric, op, value, threshold, passed):
    policy = regression_policy(thresholds={"r2_score": f"{op} {threshold}"})
    verdict = decide(evaluation({"r2_score": metric(value)}), policy)
    check = verdict.checks[0]
    assert (check.metric, check.op, check.threshold, check.value) == ("r2_score", op, threshold, value)
    assert check.passed is passed
    assert verdict.passed is passed


def test_regression_default_is_r2_at_least_0_6(evaluation, metric):
    assert DEFAULT_THRESHOLDS["regression"] == (Threshold("r2_score", ">=", 0.6),)
    assert decide(evaluation({"r2_score": metric(0.6)}), regression_policy()).passed
    failed = decide(evaluation({"r2_score": metric(0.5999)}), regression_policy())
    assert not failed.passed
    assert failed.reasons == ["r2_score value 0.5999 does not satisfy >= 0.6000"]


def test_classification_defaults(evaluation, metric):
    policy = GatePolicy.build("classification")
    assert {(t.metric, t.op, t.value) for t in policy.thresholds} == {
        ("accuracy", ">", 0.90), ("precision", ">", 0.85), ("recall", ">", 0.85), ("f1", ">", 0.85)
    }
    good = {"accuracy": metric(0.95), "precision": metric(0.9), "recall": metric(0.9),
            "f1": metric(0.9), "auc": metric(0.97)}
    assert decide(evaluation(good, kind="binary"), policy).passed
    weak_recall = {**good, "recall": metric(0.85)}  # strict ">": equal is not enough
    verdict = decide(evaluation(weak_recall, kind="multiclass"), policy)
    assert not verdict.passed
    assert [c.metric for c in verdict.failed_checks] == ["recall"]


def test_missing_metric_fails_with_reason(evaluation, metric):
    policy = regression_policy(thresholds={"r2_score": ">= 0.6", "rmse": "<= 70000"})
    verdict = decide(evaluation({"r2_score": metric(0.7)}), policy)
    assert not verdict.passed
    rmse = verdict.checks[1]
    assert rmse.value is None and not rmse.passed
    assert rmse.reason == "metric 'rmse' missing from evaluation.json (regression_metrics)"


def test_missing_metrics_block_fails_every_threshold(evaluation, metric):
    doc = evaluation({"r2_score": metric(0.9)}, kind="binary")  # wrong block for regression
    verdict = decide(doc, regression_policy())
    assert not verdict.passed
    assert "missing from evaluation.json (regression_metrics)" in verdict.reasons[0]


def test_lower_bound_basis_uses_conservative_end(evaluation, metric):
    doc = evaluation({"r2_score": metric(0.64, 0.58, 0.70), "rmse": metric(65000, 60000, 72000)})
    thresholds = {"r2_score": ">= 0.6", "rmse": "<= 70000"}
    assert decide(doc, regression_policy(thresholds=thresholds)).passed
    verdict = decide(doc, regression_policy(thresholds=thresholds, decision_basis="lower_bound"))
    assert not verdict.passed
    r2, rmse = verdict.checks[:2]
    assert (r2.value, r2.passed) == (0.58, False)  # lower bound for a minimum
    assert (rmse.value, rmse.passed) == (72000, False)  # upper bound for a maximum
    assert verdict.decision_basis == "lower_bound"


def test_lower_bound_basis_without_interval_fails(evaluation, metric):
    verdict = decide(evaluation({"r2_score": metric(0.9)}), regression_policy(decision_basis="lower_bound"))
    assert not verdict.passed
    assert "no confidence_interval" in verdict.reasons[0]


def champion_doc(evaluation, metric, candidate, champion, delta, lower=None, upper=None):
    delta_block = {"metric": "r2_score", "value": delta}
    if lower is not None:
        delta_block["confidence_interval"] = {"lower": lower, "upper": upper, "level": 0.95}
    return evaluation(
        {"r2_score": metric(candidate, candidate - 0.02, candidate + 0.02)},
        champion={"r2_score": metric(champion)},
        delta=delta_block,
    )


def test_champion_no_worse_by_default(evaluation, metric):
    better = decide(champion_doc(evaluation, metric, 0.66, 0.65, 0.01), regression_policy())
    assert better.passed
    check = better.checks[1]
    assert check.metric == "r2_score vs champion"
    assert (check.champion_value, check.delta, check.threshold) == (0.65, 0.01, -0.0)
    worse = decide(champion_doc(evaluation, metric, 0.64, 0.65, -0.01), regression_policy())
    assert not worse.passed
    assert worse.reasons == [
        "candidate is worse than the champion on r2_score by 0.0100 (tolerated margin 0.0000)"
    ]


def test_champion_margin_tolerates_small_regression(evaluation, metric):
    doc = champion_doc(evaluation, metric, 0.64, 0.65, -0.01)
    assert decide(doc, regression_policy(champion_margin=0.02)).passed
    assert not decide(doc, regression_policy(champion_margin=0.005)).passed


def test_champion_lower_bound_uses_paired_interval(evaluation, metric):
    doc = champion_doc(evaluation, metric, 0.66, 0.65, 0.01, lower=-0.004, upper=0.024)
    assert decide(doc, regression_policy()).passed
    strict = decide(doc, regression_policy(decision_basis="lower_bound"))
    assert not strict.passed
    assert strict.checks[1].value == -0.004
    assert decide(doc, regression_policy(decision_basis="lower_bound", champion_margin=0.005)).passed


def test_expected_champion_missing_from_evaluation_fails(evaluation, metric):
    verdict = decide(evaluation({"r2_score": metric(0.7)}), regression_policy(), champion_expected=True)
    assert not verdict.passed
    assert "no champion block" in verdict.reasons[0]


def test_first_model_is_judged_on_thresholds_only(evaluation, metric):
    verdict = decide(evaluation({"r2_score": metric(0.7)}), regression_policy())
    assert verdict.passed and verdict.champion is None
    assert verdict.notes == ["no Approved champion yet: absolute thresholds only"]


def test_leakage_tripwire_off_by_default_and_fails_suspicious_jump(evaluation, metric):
    doc = champion_doc(evaluation, metric, 0.95, 0.65, 0.30)
    assert decide(doc, regression_policy()).passed
    verdict = decide(doc, regression_policy(leakage_max_improvement=0.1))
    assert not verdict.passed
    tripwire = verdict.failed_checks[0]
    assert tripwire.metric == "r2_score improvement (leakage tripwire)"
    assert (tripwire.value, tripwire.threshold) == (0.30, 0.1)
    assert "leakage" in tripwire.reason
    modest = champion_doc(evaluation, metric, 0.70, 0.65, 0.05)
    assert decide(modest, regression_policy(leakage_max_improvement=0.1)).passed


def test_failed_load_check_fails_gate(evaluation, metric):
    verdict = decide(evaluation({"r2_score": metric(0.9)}, load_passed=False), regression_policy())
    assert not verdict.passed
    assert verdict.failed_checks[0].metric == "load_check"


@pytest.mark.parametrize("doc", [[], {"schema_version": "2.0"}, {}])
def test_unusable_evaluation_is_an_error(doc):
    with pytest.raises(ValueError, match="evaluation.json"):
        decide(doc, regression_policy())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"thresholds": {"accuracy": "> 0.9"}}, "not a regression metric"),
        ({"thresholds": {"r2_score": "= 0.9"}}, "expected '<op> <number>'"),
        ({"thresholds": {"r2_score": ">= high"}}, "expected '<op> <number>'"),
        ({"decision_basis": "median"}, "decision basis"),
        ({"champion_margin": -0.1}, "champion margin"),
        ({"leakage_max_improvement": 0}, "leakage tripwire"),
    ],
)
def test_invalid_policy_is_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        regression_policy(**kwargs)


def test_bare_number_threshold_follows_metric_direction():
    assert Threshold.parse("r2_score", 0.7) == Threshold("r2_score", ">=", 0.7)
    assert Threshold.parse("rmse", 70000) == Threshold("rmse", "<=", 70000.0)


def test_verdict_json_layout_round_trips(evaluation, metric):
    verdict = decide(champion_doc(evaluation, metric, 0.66, 0.65, 0.01), regression_policy())
    data = json.loads(json.dumps(verdict.to_dict()))
    assert {"passed", "decision_basis", "checks", "reasons"} <= set(data)
    assert set(data["checks"][0]) == {
        "metric", "value", "op", "threshold", "passed", "champion_value", "delta", "reason"
    }
    assert Verdict.from_dict(data) == verdict


def test_policy_round_trips():
    policy = regression_policy(thresholds={"rmse": "< 1e5"}, decision_basis="lower_bound",
                               champion_margin=0.01, leakage_max_improvement=0.2)
    assert GatePolicy.from_dict(json.loads(json.dumps(policy.to_dict()))) == policy


def test_table_shows_metric_value_threshold_conclusion(evaluation, metric):
    doc = champion_doc(evaluation, metric, 0.64, 0.65, -0.01)
    doc["regression_metrics"]["rmse"] = metric(71234.5)
    policy = regression_policy(thresholds={"r2_score": ">= 0.6", "rmse": "<= 70000"})
    verdict = decide(doc, policy)
    lines = render_table(verdict).splitlines()
    assert [c.strip() for c in lines[0].split("|")] == [
        "Metric", "Value", "Required threshold", "Conclusion"
    ]
    rows = [[c.strip() for c in line.split("|")] for line in lines[2:]]
    assert rows == [
        ["r2_score", "0.6400", ">= 0.6000", "PASS"],
        ["rmse", "71,234.5", "<= 70,000.0", "FAIL"],
        ["r2_score vs champion", "-0.0100 (champion 0.6500)", ">= 0.0000", "FAIL"],
        ["load_check", "ok", "loads and predicts", "PASS"],
    ]
    assert summary_line(verdict) == "Quality gate FAILED on point estimates: 2/4 checks passed"


def _slice(value: str, rows: int, cand: float, champ: float | None = None,
           ci: float = 0.05) -> dict:
    entry = {"value": value, "rows": rows, "small": rows < 30,
             "candidate": {"value": cand, "standard_deviation": ci / 2,
                           "confidence_interval": {"lower": cand - ci, "upper": cand + ci, "level": 0.95}}}
    if champ is not None:
        entry["champion"] = {"value": champ, "standard_deviation": ci / 2,
                             "confidence_interval": {"lower": champ - ci, "upper": champ + ci, "level": 0.95}}
        d = cand - champ
        entry["delta"] = {"value": d, "standard_deviation": ci / 4,
                          "confidence_interval": {"lower": d - ci / 2, "upper": d + ci / 2, "level": 0.95}}
    return entry


def sliced(evaluation, metric, slices: list[dict], champion: bool = True) -> dict:
    doc = evaluation({"r2_score": metric(0.80, 0.78, 0.82)},
                     champion={"r2_score": metric(0.80)} if champion else None,
                     delta={"metric": "r2_score", "value": 0.0,
                            "confidence_interval": {"lower": -0.01, "upper": 0.01, "level": 0.95}}
                     if champion else None)
    doc["slices"] = {"metric": "r2_score", "min_rows": 30,
                     "columns": [{"column": "ocean_proximity", "kind": "categorical",
                                  "grouping": "values", "slices": slices}]}
    return doc


HOUSING_SLICES = [_slice("<1H OCEAN", 1368, 0.78, 0.77), _slice("INLAND", 1003, 0.44, 0.76),
                  _slice("NEAR BAY", 338, 0.80, 0.78), _slice("ISLAND", 2, -3.0, 0.9)]


def test_slice_rules_are_off_unless_set(evaluation, metric):
    verdict = decide(sliced(evaluation, metric, HOUSING_SLICES), regression_policy())
    assert verdict.passed
    assert not any("slice" in c.metric for c in verdict.checks)


def test_worst_slice_below_the_minimum_fails_naming_the_slice(evaluation, metric):
    verdict = decide(sliced(evaluation, metric, HOUSING_SLICES), regression_policy(slice_min_metric=0.5))
    assert not verdict.passed
    [check] = verdict.failed_checks
    assert check.metric == "r2_score of worst slice (ocean_proximity=INLAND)"
    assert (check.value, check.op, check.threshold) == (0.44, ">=", 0.5)
    assert verdict.reasons == ["slice ocean_proximity=INLAND: r2_score value 0.4400 does not "
                               "satisfy >= 0.5000 (slice minimum)"]
    assert "ocean_proximity=INLAND" in render_table(verdict)
    # ISLAND (2 rows, r2 -3.0) is reported but not judged
    assert "1 slice(s) with fewer than 30 test rows reported, not judged" in verdict.notes
    assert decide(sliced(evaluation, metric, HOUSING_SLICES), regression_policy(slice_min_metric=0.4)).passed


def test_slice_regression_vs_champion_fails_naming_the_slice(evaluation, metric):
    policy = regression_policy(slice_max_regression=0.1)
    verdict = decide(sliced(evaluation, metric, HOUSING_SLICES), policy)
    [check] = verdict.failed_checks
    assert check.metric == "r2_score slice regression vs champion (ocean_proximity=INLAND)"
    assert check.value == pytest.approx(-0.32) and check.threshold == -0.1
    assert (check.champion_value, check.delta) == (0.76, pytest.approx(-0.32))
    assert verdict.reasons[0].startswith("slice ocean_proximity=INLAND: candidate r2_score 0.4400 is "
                                         "worse than the champion's 0.7600 by 0.3200")
    assert decide(sliced(evaluation, metric, HOUSING_SLICES), regression_policy(slice_max_regression=0.33)).passed


def test_every_failing_slice_is_listed_in_the_reason(evaluation, metric):
    slices = [*HOUSING_SLICES, _slice("NEAR OCEAN", 391, 0.60, 0.78)]
    verdict = decide(sliced(evaluation, metric, slices), regression_policy(slice_max_regression=0.1))
    assert "failing slices: ocean_proximity=INLAND (worse by 0.3200), " \
           "ocean_proximity=NEAR OCEAN (worse by 0.1800)" in verdict.reasons[0]


def test_lower_bound_basis_judges_slices_on_their_interval(evaluation, metric):
    slices = [_slice("INLAND", 1003, 0.52, 0.55, ci=0.05)]
    point = regression_policy(slice_min_metric=0.5, slice_max_regression=0.04)
    assert decide(sliced(evaluation, metric, slices), point).passed
    strict = regression_policy(slice_min_metric=0.5, slice_max_regression=0.04, decision_basis="lower_bound")
    verdict = decide(sliced(evaluation, metric, slices), strict)
    failed = [c.value for c in verdict.failed_checks if "slice" in c.metric]
    assert failed == [pytest.approx(0.47), pytest.approx(-0.055)]


def test_first_run_applies_the_minimum_and_notes_the_regression_rule(evaluation, metric):
    slices = [_slice("INLAND", 1003, 0.44)]
    policy = regression_policy(slice_min_metric=0.4, slice_max_regression=0.1)
    verdict = decide(sliced(evaluation, metric, slices, champion=False), policy)
    assert verdict.passed
    assert "no Approved champion yet: slice regression rule not applied" in verdict.notes


def test_slice_rules_without_slices_in_the_evaluation_fail(evaluation, metric):
    verdict = decide(evaluation({"r2_score": metric(0.8)}), regression_policy(slice_min_metric=0.5))
    assert not verdict.passed
    assert "no slices block (set slice_columns" in verdict.reasons[0]


def test_only_small_slices_means_nothing_to_judge(evaluation, metric):
    verdict = decide(sliced(evaluation, metric, [_slice("ISLAND", 2, -3.0, 0.9)]),
                     regression_policy(slice_min_metric=0.5, slice_min_rows=30))
    assert verdict.passed
    assert "no slice has enough test rows: slice rules not applied" in verdict.notes


@pytest.mark.parametrize("options", [{"slice_max_regression": -0.1}, {"slice_min_rows": 0},
                                     {"slice_min_metric": float("nan")}])
def test_bad_slice_options_are_rejected(options):
    with pytest.raises(ValueError, match="slice"):
        regression_policy(**options)


def test_slice_failure_is_named_in_the_retrain_alert(evaluation, metric):
    from sagemaker_mlops.alerts import retrain_alert

    verdict = decide(sliced(evaluation, metric, HOUSING_SLICES), regression_policy(slice_min_metric=0.5))
    _, message = retrain_alert(verdict, dag_id="mlops_pipeline", run_id="r1",
                               model_package_group="g", evaluation_uri="s3://b/e.json")
    assert "- r2_score of worst slice (ocean_proximity=INLAND): 0.4400 (required >= 0.5000)" in message
    assert Verdict.from_dict(json.loads(json.dumps(verdict.to_dict()))) == verdict
