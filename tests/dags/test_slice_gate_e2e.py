"""End to end: the gate's slice rules on the shipped California housing pipeline (emulator).

1. A strong champion: hist_gradient_boosting passes, is registered and deployed; evaluation.json
   reports r2_score per ocean_proximity value (the spec's slice column).
2. A simpler candidate (linear_regression) the team would accept overall (champion_margin 0.3)
   but that is much worse for inland districts: the slice rules (slice_max_regression 0.3,
   slice_min_metric 0.5) reject it, and the verdict and the retrain alert name
   ``ocean_proximity=INLAND``; nothing is registered.
3. A slice column that is not in the data stops the run before any SageMaker job.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from sagemaker_mlops import naming
from sagemaker_mlops.specs import find_spec

from tests.dags._offline_stack import AlertQueue, offline_stack
from tools.run_offline import execute_dag_run, read_s3_json, start_emulator

pytestmark = pytest.mark.slow
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "include" / "training"))
INLAND = "ocean_proximity=INLAND"


@pytest.fixture(scope="module")
def story(airflow_db, tmp_path_factory) -> dict[str, Any]:
    emulator = start_emulator(tmp_path_factory.mktemp("slice-e2e"))
    try:
        with offline_stack(emulator) as settings:
            alerts = AlertQueue(emulator, settings.topic_arn)
            yield {"emulator": emulator, "settings": settings, "alerts": alerts,
                   "spec": find_spec("california_housing"), "runs": {}}
    finally:
        emulator.stop()


def _document(story: dict[str, Any], run_id: str, name: str) -> dict[str, Any]:
    layout = naming.RunLayout(story["settings"].bucket, story["spec"].s3_prefix, run_id)
    uri = layout.evaluation_json_uri if name == "evaluation" else layout.verdict_json_uri
    return read_s3_json(story["emulator"], uri)


def _versions(story: dict[str, Any]) -> list[dict[str, Any]]:
    return story["emulator"].client("sagemaker").list_model_packages(
        ModelPackageGroupName=story["spec"].model_package_group)["ModelPackageSummaryList"]


def test_champion_run_reports_slices_and_passes(story):
    result = execute_dag_run("mlops_pipeline", {"model": "hist_gradient_boosting"})
    story["runs"]["champion"] = result
    assert result["state"] == "success", result
    assert result["tasks"]["register_model"] == "success"
    slices = _document(story, result["run_id"], "evaluation")["slices"]
    [column] = slices["columns"]
    assert (slices["metric"], column["column"]) == ("r2_score", "ocean_proximity")
    by_value = {s["value"]: s for s in column["slices"]}
    assert {"<1H OCEAN", "INLAND", "NEAR OCEAN", "NEAR BAY", "ISLAND"} <= set(by_value)
    assert by_value["ISLAND"]["small"] and not by_value["INLAND"]["small"]
    assert by_value["INLAND"]["candidate"]["value"] > 0.6
    assert "champion" not in by_value["INLAND"]  # the first model has no champion to compare with


def test_slice_regression_fails_the_gate_naming_the_slice(story):
    from slice_report import SLICE_HEADER, slice_table_rows  # include/training, as evaluate uses it

    story["alerts"].drain()
    conf = {"model": "linear_regression", "champion_margin": 0.3,
            "slice_max_regression": 0.3, "slice_min_metric": 0.5}
    result = execute_dag_run("mlops_pipeline", conf)
    assert result["state"] == "success", result
    assert result["tasks"]["retrain_alert"] == "success"
    assert result["tasks"]["register_model"] == "skipped"
    assert len(_versions(story)) == 1

    verdict = _document(story, result["run_id"], "verdict")
    checks = {c["metric"]: c for c in verdict["checks"]}
    assert checks["r2_score vs champion"]["passed"]  # overall within the tolerated margin ...
    regression = checks[f"r2_score slice regression vs champion ({INLAND})"]
    worst = checks[f"r2_score of worst slice ({INLAND})"]
    assert not regression["passed"] and not worst["passed"]  # ... but not for inland districts
    assert regression["value"] < -0.3 and worst["value"] < 0.5
    assert [r for r in verdict["reasons"] if r.startswith(f"slice {INLAND}:")] == verdict["reasons"]

    [alert] = story["alerts"].drain()
    assert f"- r2_score slice regression vs champion ({INLAND})" in alert
    assert f"slice {INLAND}: candidate r2_score" in alert

    evaluation = _document(story, result["run_id"], "evaluation")
    table = [SLICE_HEADER, ("---",) * len(SLICE_HEADER), *slice_table_rows(evaluation)]
    print("\n" + "\n".join("| " + " | ".join(row) + " |" for row in table))  # the README's table


def test_a_slice_column_missing_from_the_data_stops_before_any_job(story):
    sagemaker = story["emulator"].client("sagemaker")
    before = sagemaker.list_processing_jobs()["ProcessingJobSummaries"]
    result = execute_dag_run("mlops_pipeline", {"slice_columns": ["ocean_proximty"]})
    assert result["state"] == "failed"
    assert result["tasks"]["stage_code"] == "failed"
    assert result["tasks"]["preprocess"] == "upstream_failed"
    assert sagemaker.list_processing_jobs()["ProcessingJobSummaries"] == before
    target = execute_dag_run("mlops_pipeline", {"slice_columns": ["median_house_value"]})
    assert target["tasks"]["validate_params"] == "failed"
    assert sagemaker.list_processing_jobs()["ProcessingJobSummaries"] == before
