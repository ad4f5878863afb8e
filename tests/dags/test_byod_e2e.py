"""End to end on a CSV this test writes itself: nothing in the code knows its columns.

A person's own data as ``./dev run --data`` takes it: column names no code mentions, text labels
(``stays`` / ``leaves``), a text id column unique per row, a categorical column, a numeric
column with gaps. tools/data_spec.py writes the spec into a folder the DAG files read through
MLOPS_PIPELINES_DIR; the DAG built from it trains, gates, registers and deploys, and the endpoint
answers a raw row with a label.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sagemaker_mlops import deploy, naming
from sagemaker_mlops.specs import EXTRA_DIR_ENV

from tests.dags._offline_stack import offline_stack
from tools.data_spec import write_spec
from tools.run_offline import execute_dag_run, read_s3_json, start_emulator

pytestmark = pytest.mark.slow

LABELS = {"stays", "leaves"}


def write_member_csv(path: Path, rows: int = 800) -> Path:
    rng = np.random.default_rng(11)
    visits = rng.poisson(6, rows).astype(float)
    visits[rng.choice(rows, 40, replace=False)] = np.nan
    frame = pd.DataFrame({
        "member_code": [f"M-{i:05d}-{rng.integers(1000, 9999)}" for i in range(rows)],
        "club_visits_q3": visits,
        "fee_band": rng.choice(["bronze", "silver", "gold"], rows),
        "months_enrolled": rng.integers(1, 60, rows),
    })
    score = (-0.5 * np.nan_to_num(frame["club_visits_q3"], nan=6) + 0.03 * (60 - frame["months_enrolled"])
             + (frame["fee_band"] == "bronze") * 1.2 + rng.normal(0, 0.8, rows) + 2.5)
    frame["next_year"] = np.where(score > 0, "leaves", "stays")
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def byod(airflow_db, tmp_path_factory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("byod")
    data = write_member_csv(work / "gym members.csv")
    spec, how = write_spec(data, "next_year", None, work / "pipelines")
    assert (spec.name, spec.params["problem_type"], how) == (
        "gym_members", "classification", "inferred from the target's values")
    emulator = start_emulator(work / "emulator")
    try:
        with offline_stack(emulator, [spec], {EXTRA_DIR_ENV: str(spec.path.parent)}) as settings:
            thresholds = {"accuracy": "> 0.7", "f1": "> 0.6"}
            result = execute_dag_run(spec.dag_id, {"thresholds": thresholds})
            layout = naming.RunLayout(settings.bucket, spec.s3_prefix, result["run_id"])
            yield {"emulator": emulator, "spec": spec, "result": result, "layout": layout}
    finally:
        emulator.stop()


def test_the_run_trains_gates_registers_and_deploys(byod):
    result = byod["result"]
    assert result["state"] == "success", result
    assert {result["tasks"][t] for t in ("register_model", "deploy_serverless")} == {"success"}
    sagemaker = byod["emulator"].client("sagemaker")
    [version] = sagemaker.list_model_packages(
        ModelPackageGroupName="gym-members")["ModelPackageSummaryList"]
    assert version["ModelApprovalStatus"] == "Approved"


def test_the_id_column_is_no_feature_and_labels_are_the_texts(byod):
    evaluation = read_s3_json(byod["emulator"], byod["layout"].evaluation_json_uri)
    matrix = evaluation["binary_classification_metrics"]["confusion_matrix"]
    assert set(matrix) == LABELS
    profile = read_s3_json(byod["emulator"], byod["layout"].profile_json_uri)
    assert "member_code" in str(profile.get("schema", profile))  # recorded, as dropped
    sample = evaluation["sample_predictions"]
    assert "next_year" not in sample["columns"]
    assert set(sample["predictions"]) <= LABELS


def test_the_endpoint_answers_a_raw_row_with_a_label(byod):
    sample = read_s3_json(byod["emulator"], byod["layout"].evaluation_json_uri)["sample_predictions"]
    body, expected = deploy.sample_payload(sample)
    response = byod["emulator"].client("sagemaker-runtime").invoke_endpoint(
        EndpointName=byod["spec"].endpoint_name, Body=body, ContentType="text/csv",
        Accept="application/json")
    labels = deploy.parse_predictions(response["Body"].read(), "application/json")
    assert labels == expected and set(labels) <= LABELS
