"""End to end: drifted data stops the run before training, against the real emulator.

1. a first run on the bundled California data trains, checks the data by itself, registers
   version 1 (Approved) with its profile.json recorded in the registry metadata;
2. a second run on drifted data (``median_income`` scaled and shifted, ``housing_median_age``
   gone, ``total_bedrooms`` 20% missing) is checked against version 1's profile: data_checks
   branches to data_check_alert, no training job exists for the run, the SNS alert carries the
   ``Check | Value | Threshold | Conclusion`` table, nothing new is registered.
The Airflow identity runs under the shipped IAM policy (deploy/iam/airflow-policy.json).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sagemaker_mlops import naming, registry
from sagemaker_mlops.specs import find_spec

from tests.dags._iam_trail import POLICY
from tests.dags._offline_stack import AlertQueue, offline_stack
from tools.run_offline import DagRunResult, execute_dag_run, read_s3_json, start_emulator, summarize

pytestmark = pytest.mark.slow

SKIPPED_AFTER_CHECKS = ("train", "find_champion", "evaluate", "quality_gate", "register_model",
                        "retrain_alert", "deploy_serverless")


def drifted_csv(source: Path, path: Path) -> Path:
    frame = pd.read_csv(source)
    frame["median_income"] = frame["median_income"] * 1.5 + 0.5
    rng = np.random.default_rng(3)
    frame.loc[rng.random(len(frame)) < 0.2, "total_bedrooms"] = np.nan
    frame.drop(columns=["housing_median_age"]).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def story(airflow_db, tmp_path_factory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("data-checks")
    emulator = start_emulator(work / "emulator", iam_policy=POLICY)
    try:
        spec = find_spec("california_housing")
        with offline_stack(emulator, [spec]) as settings:
            alerts = AlertQueue(emulator, settings.topic_arn)
            first = execute_dag_run(spec.dag_id)
            first_alerts = alerts.drain()

            drifted_uri = f"s3://{settings.bucket}/{spec.s3_prefix}/raw-drifted/"
            bucket, prefix = naming.split_s3_uri(drifted_uri)
            csv = drifted_csv(spec.sample_data, work / "drifted.csv")
            emulator.client("s3").upload_file(str(csv), bucket, prefix + csv.name)
            second = execute_dag_run(spec.dag_id, {"raw_data_uri": drifted_uri})
            yield {"emulator": emulator, "settings": settings, "spec": spec, "first": first,
                   "second": second, "first_alerts": first_alerts,
                   "second_alerts": alerts.drain()}
    finally:
        emulator.stop()


def _layout(story: dict[str, Any], run: str) -> naming.RunLayout:
    return naming.RunLayout(story["settings"].bucket, story["spec"].s3_prefix,
                                 story[run]["run_id"])


def test_first_run_checks_the_data_itself_and_records_its_profile_with_the_version(story):
    first = story["first"]
    assert first["state"] == "success", first
    assert first["tasks"]["data_checks"] == "success"
    assert first["tasks"]["data_check_alert"] == "skipped"
    assert first["tasks"]["register_model"] == "success"
    assert story["first_alerts"] == []
    layout = _layout(story, "first")
    result = read_s3_json(story["emulator"], layout.data_checks_json_uri)
    assert result["passed"] is True and result["baseline"] is None
    assert "checked the data itself only" in result["notes"][0]

    sagemaker = story["emulator"].client("sagemaker")
    champion = registry.find_champion(sagemaker, story["spec"].model_package_group)
    assert registry.data_profile_uri(champion) == layout.profile_json_uri
    evaluation = read_s3_json(story["emulator"], layout.evaluation_json_uri)
    assert evaluation["data_checks"]["summary"] == result["summary"]
    bucket, key = naming.split_s3_uri(layout.evaluation_uri + "report.html")
    report = story["emulator"].client("s3").get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    assert "Data checks (before training)" in report and result["summary"] in report


def test_drifted_data_stops_before_training_with_zero_training_jobs(story):
    second = story["second"]
    assert second["state"] == "success", second  # a data verdict, like a failed quality gate
    assert second["tasks"]["data_checks"] == "success"
    assert second["tasks"]["data_check_alert"] == "success"
    assert {second["tasks"][t] for t in SKIPPED_AFTER_CHECKS} == {"skipped"}
    sagemaker = story["emulator"].client("sagemaker")
    name = naming.job_name("train", second["run_id"])
    assert sagemaker.list_training_jobs(NameContains=name)["TrainingJobSummaries"] == []
    every_job = sagemaker.list_training_jobs()["TrainingJobSummaries"]
    assert [j["TrainingJobName"] for j in every_job] == [
        naming.job_name("train", story["first"]["run_id"])]
    versions = sagemaker.list_model_packages(
        ModelPackageGroupName=story["spec"].model_package_group)["ModelPackageSummaryList"]
    assert len(versions) == 1


def test_the_checks_compare_with_the_champions_profile_and_are_recorded(story):
    result = read_s3_json(story["emulator"], _layout(story, "second").data_checks_json_uri)
    assert result["passed"] is False
    assert result["baseline"]["profile"] == _layout(story, "first").profile_json_uri
    failed = {c["check"] + (f" {c['column']}" if c["column"] else "")
              for c in result["checks"] if c["passed"] is False}
    assert failed == {"schema: columns removed", "missing rate total_bedrooms",
                      "drift PSI median_income"}
    target = next(c for c in result["checks"] if c["check"] == "target shift PSI")
    assert target["conclusion"] == "pass"


def test_the_alert_carries_the_data_check_table(story):
    [alert] = story["second_alerts"]
    assert "no model was trained (no training job ran)" in alert
    header = next(line for line in alert.splitlines() if line.startswith("Check"))
    assert [c.strip() for c in header.split("|")] == ["Check", "Value", "Threshold", "Conclusion"]
    drift = next(line for line in alert.splitlines() if line.startswith("drift PSI: median_income"))
    assert drift.rstrip().endswith("FAIL")
    assert "schema: columns removed" in alert and "housing_median_age" in alert


def test_the_offline_summary_shows_the_data_checks(story):
    second = story["second"]
    run = DagRunResult(story["spec"].dag_id, second["run_id"], second["state"], second["tasks"],
                       1.0, Path("log"))
    summary = summarize(story["emulator"], story["settings"], story["spec"], run)
    print(summary)  # the README's gate section quotes this table
    assert "Data checks FAILED: " in summary
    assert "Training skipped: the data checks failed and data_check_alert was sent" in summary
    assert "train not run" in summary
