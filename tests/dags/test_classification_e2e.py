"""End to end for classification, against its own emulator, registry group and endpoint.

The regression story (test_pipeline_e2e.py) covers the pipeline's branches; this one checks
that a binary classification task goes through every part of the product: a label derived from
the bundled data (``expensive``: median_house_value above its median; median_house_value itself
dropped so it cannot leak) is uploaded to a raw prefix of its own, ``mlops_pipeline`` trains,
evaluates (accuracy, precision, recall, f1, auc with intervals, confusion matrix), gates,
registers and deploys it, and the endpoint answers a raw feature row with a class label.
"""

from __future__ import annotations

import gzip
import io
import os
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pytest
from sagemaker_mlops import deploy, job_configs
from sagemaker_mlops.settings import Settings, load_settings

from local_sagemaker.launcher import EmulatorProcess
from tools.run_offline import (
    DATA_FILE,
    aws_env,
    bootstrap_aws,
    ensure_pool,
    execute_dag_run,
    read_s3_json,
    start_emulator,
)

pytestmark = pytest.mark.slow

TARGET = "expensive"
SOURCE_TARGET = "median_house_value"
GROUP = ENDPOINT = "california-housing-expensive"
METRICS = ("accuracy", "precision", "recall", "f1", "auc")
THRESHOLDS = {"accuracy": ">= 0.75", "precision": ">= 0.7", "recall": ">= 0.7", "f1": ">= 0.75"}


def expensive_label_csv() -> tuple[bytes, list[str]]:
    """The bundled data with a binary label instead of the house value; and its feature columns."""
    frame = pd.read_csv(DATA_FILE)
    frame = frame.dropna(subset=[SOURCE_TARGET])
    frame[TARGET] = (frame[SOURCE_TARGET] > frame[SOURCE_TARGET].median()).astype(int)
    frame = frame.drop(columns=[SOURCE_TARGET])
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as handle:
        handle.write(frame.to_csv(index=False).encode())
    return buffer.getvalue(), [c for c in frame.columns if c != TARGET]


@dataclass
class ClassificationRun:
    emulator: EmulatorProcess
    settings: Settings
    raw_uri: str
    features: list[str]
    result: dict[str, Any]

    @property
    def sagemaker(self) -> Any:
        return self.emulator.client("sagemaker")

    def _layout(self) -> job_configs.RunLayout:
        return job_configs.RunLayout(self.settings.bucket, self.settings.prefix, self.result["run_id"])

    def evaluation(self) -> dict[str, Any]:
        return read_s3_json(self.emulator, self._layout().evaluation_json_uri)

    def verdict(self) -> dict[str, Any]:
        return read_s3_json(self.emulator, self._layout().verdict_json_uri)


@pytest.fixture(scope="module")
def classification(airflow_db, tmp_path_factory) -> ClassificationRun:
    """One classification run of mlops_pipeline on a fresh emulator; the tests inspect it."""
    emulator = start_emulator(tmp_path_factory.mktemp("classification-emulator"))
    try:
        with pytest.MonkeyPatch.context() as patch:
            # dag.test() runs in this process: tasks and the DAG file read these settings
            environment = {**aws_env(emulator.url), "MLOPS_MODEL_PACKAGE_GROUP": GROUP,
                           "MLOPS_ENDPOINT_NAME": ENDPOINT}
            for key, value in environment.items():
                patch.setenv(key, value)
            settings = load_settings(environ=os.environ)
            assert (settings.model_package_group, settings.endpoint_name) == (GROUP, ENDPOINT)
            ensure_pool(dict(os.environ), settings)
            default_raw = bootstrap_aws(emulator, settings)  # bucket, topic, regression data
            raw_uri = f"s3://{settings.bucket}/{settings.prefix}/classification/raw/"
            assert not raw_uri.startswith(default_raw)
            body, features = expensive_label_csv()
            bucket, prefix = job_configs.split_s3_uri(raw_uri)
            emulator.client("s3").put_object(
                Bucket=bucket, Key=prefix + "california_housing_expensive.csv.gz", Body=body)
            result = execute_dag_run("mlops_pipeline", {
                "problem_type": "classification", "target": TARGET,
                "model": "logistic_regression", "raw_data_uri": raw_uri, "thresholds": THRESHOLDS,
            })
            yield ClassificationRun(emulator, settings, raw_uri, features, result)
    finally:
        code = emulator.stop()
        assert code == 0, emulator.log_path.read_text()[-3000:]


def test_run_succeeds_and_deploys(classification):
    result = classification.result
    assert result["state"] == "success", result
    assert result["tasks"]["retrain_alert"] == "skipped"
    assert {result["tasks"][t] for t in ("register_model", "deploy_serverless")} == {"success"}


def test_evaluation_has_binary_classification_metrics(classification):
    evaluation = classification.evaluation()
    assert (evaluation["problem_type"], evaluation["target"], evaluation["primary_metric"]) == (
        "classification", TARGET, "f1")
    assert "regression_metrics" not in evaluation
    assert evaluation["champion"] is None
    metrics = evaluation["binary_classification_metrics"]
    for name in METRICS:
        metric = metrics[name]
        interval = metric["confidence_interval"]
        assert 0.0 <= interval["lower"] <= metric["value"] <= interval["upper"] <= 1.0, (name, metric)
        assert interval["level"] == 0.95 and metric["standard_deviation"] >= 0
    assert metrics["accuracy"]["value"] > 0.75 and metrics["auc"]["value"] > 0.8
    matrix = metrics["confusion_matrix"]
    assert set(matrix) == {"0", "1"} and all(set(row) == {"0", "1"} for row in matrix.values())
    counts = sum(n for row in matrix.values() for n in row.values())
    assert counts == evaluation["dataset"]["test_rows"] > 0
    correct = matrix["0"]["0"] + matrix["1"]["1"]
    assert correct / counts == pytest.approx(metrics["accuracy"]["value"])
    # the model sees the raw columns minus the target: the leaking house value is gone
    assert evaluation["dataset"]["columns"] == classification.features
    assert SOURCE_TARGET not in evaluation["dataset"]["columns"]


def test_verdict_checks_the_classification_metrics(classification):
    verdict = classification.verdict()
    metrics = classification.evaluation()["binary_classification_metrics"]
    assert verdict["passed"] is True and verdict["problem_type"] == "classification"
    checked = {c["metric"]: c for c in verdict["checks"]}
    assert checked.pop("load_check")["passed"] is True  # the gate's own check, any problem type
    assert set(checked) == set(THRESHOLDS)  # only classification metrics, no regression ones
    for name, rule in THRESHOLDS.items():
        op, threshold = rule.split()
        check = checked[name]
        assert (check["op"], check["threshold"], check["passed"]) == (op, float(threshold), True)
        assert check["value"] == metrics[name]["value"]


def test_version_1_is_registered_approved_in_its_own_group(classification):
    sagemaker = classification.sagemaker
    [summary] = sagemaker.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"]
    version = sagemaker.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
    assert (version["ModelPackageVersion"], version["ModelApprovalStatus"]) == (1, "Approved")
    metadata = version["CustomerMetadataProperties"]
    assert (metadata["problem_type"], metadata["target"]) == ("classification", TARGET)
    assert metadata["run_id"] == classification.result["run_id"]
    groups = {g["ModelPackageGroupName"] for g in
              sagemaker.list_model_package_groups()["ModelPackageGroupSummaryList"]}
    assert groups == {GROUP}  # the default (regression) group was not touched


def test_endpoint_serves_class_labels_for_raw_feature_rows(classification):
    sagemaker = classification.sagemaker
    endpoint = sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    assert endpoint["EndpointStatus"] == "InService"
    assert [e["EndpointName"] for e in sagemaker.list_endpoints()["Endpoints"]] == [ENDPOINT]

    sample = classification.evaluation()["sample_predictions"]
    assert sample["columns"] == classification.features  # raw columns minus the target
    assert set(sample["predictions"]) <= {0, 1}
    body, expected = deploy.sample_payload(sample)
    response = classification.emulator.client("sagemaker-runtime").invoke_endpoint(
        EndpointName=ENDPOINT, Body=body, ContentType="text/csv", Accept="application/json")
    labels = deploy.parse_predictions(response["Body"].read(), "application/json")
    assert labels == expected


def test_regression_run_against_the_classification_champion_stops_before_any_job(classification):
    """A champion for another task is no champion: the run fails up front and says why."""
    sagemaker = classification.sagemaker
    jobs_before = sagemaker.list_training_jobs()["TrainingJobSummaries"]
    result = execute_dag_run("mlops_pipeline")  # defaults: regression on the default raw prefix
    assert result["state"] == "failed"
    assert result["tasks"]["validate_params"] == "failed"
    assert result["tasks"]["preprocess"] == "upstream_failed"
    assert sagemaker.list_training_jobs()["TrainingJobSummaries"] == jobs_before
    assert len(sagemaker.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"]) == 1
