"""End to end for the shipped breast_cancer spec: binary classification with string labels.

The regression story (test_pipeline_e2e.py) covers the pipeline's branches; this one checks that
a second pipeline, defined by nothing but dags/pipelines/breast_cancer.yaml and its bundled data,
goes through every part of the product in its own group, endpoint and S3 prefix: the DAG
``breast_cancer`` trains, evaluates (accuracy, precision, recall, f1, auc with intervals,
confusion matrix, positive class ``malignant`` as the spec declares), gates, registers and
deploys it, and the endpoint answers raw feature rows with ``malignant`` / ``benign``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from sagemaker_mlops import deploy, naming
from sagemaker_mlops.settings import Settings
from sagemaker_mlops.specs import PipelineSpec, find_spec

from local_sagemaker.launcher import EmulatorProcess
from tests.dags._iam_trail import POLICY, IamTrail, check_record
from tests.dags._offline_stack import offline_stack
from tools.run_offline import execute_dag_run, read_s3_json, start_emulator, upload_sample

pytestmark = pytest.mark.slow

METRICS = ("accuracy", "precision", "recall", "f1", "auc")
LABELS = {"benign", "malignant"}


@dataclass
class ClassificationRun:
    emulator: EmulatorProcess
    settings: Settings
    spec: PipelineSpec
    result: dict[str, Any]
    trail: IamTrail

    @property
    def sagemaker(self) -> Any:
        return self.emulator.client("sagemaker")

    def _layout(self) -> naming.RunLayout:
        return naming.RunLayout(self.settings.bucket, self.spec.s3_prefix, self.result["run_id"])

    def evaluation(self) -> dict[str, Any]:
        return read_s3_json(self.emulator, self._layout().evaluation_json_uri)

    def verdict(self) -> dict[str, Any]:
        return read_s3_json(self.emulator, self._layout().verdict_json_uri)


@pytest.fixture(scope="module")
def classification(airflow_db, tmp_path_factory) -> ClassificationRun:
    """One run of the breast_cancer DAG with the spec's defaults on a fresh emulator."""
    spec = find_spec("breast_cancer")
    data_dir = tmp_path_factory.mktemp("classification-emulator")
    audit = data_dir / "iam-audit.jsonl"
    emulator = start_emulator(data_dir, iam_policy=POLICY, iam_audit=audit)
    try:
        with offline_stack(emulator, []) as settings:
            raw = upload_sample(emulator, settings, spec)
            assert raw == f"s3://{settings.bucket}/breast-cancer/raw/"
            result = execute_dag_run(spec.dag_id)
            yield ClassificationRun(emulator, settings, spec, result, IamTrail(audit))
    finally:
        code = emulator.stop()
        assert code == 0, emulator.log_path.read_text()[-3000:]


@pytest.fixture(autouse=True)
def _iam_calls(classification, request):
    """The DAG run (in the module fixture) is under the shipped policy; its calls count for the
    first test."""
    with classification.trail.attribute(request.node.nodeid):
        yield


def test_run_succeeds_and_deploys(classification):
    result = classification.result
    assert result["state"] == "success", result
    assert result["tasks"]["retrain_alert"] == "skipped"
    assert {result["tasks"][t] for t in ("register_model", "deploy_serverless")} == {"success"}


def test_evaluation_has_binary_classification_metrics(classification):
    evaluation = classification.evaluation()
    assert (evaluation["problem_type"], evaluation["target"], evaluation["primary_metric"]) == (
        "classification", "diagnosis", "f1")
    assert "regression_metrics" not in evaluation
    assert evaluation["champion"] is None
    metrics = evaluation["binary_classification_metrics"]
    for name in METRICS:
        metric = metrics[name]
        interval = metric["confidence_interval"]
        assert 0.0 <= interval["lower"] <= metric["value"] <= interval["upper"] <= 1.0, (name, metric)
        assert interval["level"] == 0.95 and metric["standard_deviation"] >= 0
    assert metrics["accuracy"]["value"] > 0.9 and metrics["auc"]["value"] > 0.95
    matrix = metrics["confusion_matrix"]
    assert set(matrix) == LABELS and all(set(row) == LABELS for row in matrix.values())
    counts = sum(n for row in matrix.values() for n in row.values())
    assert counts == evaluation["dataset"]["test_rows"] > 0
    # recall is about the declared positive class, malignant
    malignant = matrix["malignant"]
    assert metrics["recall"]["value"] == pytest.approx(
        malignant["malignant"] / (malignant["malignant"] + malignant["benign"]))


def test_verdict_checks_the_specs_thresholds(classification):
    verdict = classification.verdict()
    metrics = classification.evaluation()["binary_classification_metrics"]
    assert verdict["passed"] is True and verdict["problem_type"] == "classification"
    checked = {c["metric"]: c for c in verdict["checks"]}
    assert checked.pop("load_check")["passed"] is True
    assert set(checked) == set(classification.spec.params["thresholds"])
    for name, check in checked.items():
        assert check["passed"] and check["value"] == metrics[name]["value"]


def test_version_1_is_registered_approved_in_the_specs_own_group(classification):
    sagemaker = classification.sagemaker
    group = classification.spec.model_package_group
    [summary] = sagemaker.list_model_packages(ModelPackageGroupName=group)["ModelPackageSummaryList"]
    version = sagemaker.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
    assert (version["ModelPackageVersion"], version["ModelApprovalStatus"]) == (1, "Approved")
    metadata = version["CustomerMetadataProperties"]
    assert (metadata["problem_type"], metadata["target"]) == ("classification", "diagnosis")
    assert (metadata["dag_id"], metadata["pipeline"]) == ("breast_cancer", "breast_cancer")
    assert metadata["run_id"] == classification.result["run_id"]
    groups = {g["ModelPackageGroupName"] for g in
              sagemaker.list_model_package_groups()["ModelPackageGroupSummaryList"]}
    assert groups == {"breast-cancer"}  # california-housing was not touched


def test_endpoint_serves_string_labels_for_raw_feature_rows(classification):
    sagemaker = classification.sagemaker
    endpoint_name = classification.spec.endpoint_name
    assert sagemaker.describe_endpoint(EndpointName=endpoint_name)["EndpointStatus"] == "InService"
    assert [e["EndpointName"] for e in sagemaker.list_endpoints()["Endpoints"]] == [endpoint_name]

    sample = classification.evaluation()["sample_predictions"]
    assert "diagnosis" not in sample["columns"] and len(sample["columns"]) == 30
    assert set(sample["predictions"]) <= LABELS
    body, expected = deploy.sample_payload(sample)
    response = classification.emulator.client("sagemaker-runtime").invoke_endpoint(
        EndpointName=endpoint_name, Body=body, ContentType="text/csv", Accept="application/json")
    labels = deploy.parse_predictions(response["Body"].read(), "application/json")
    assert labels == expected


def test_a_run_for_another_task_in_the_same_group_stops_before_any_job(classification):
    """A champion for another task is no champion: the run fails up front and says why."""
    sagemaker = classification.sagemaker
    jobs_before = sagemaker.list_training_jobs()["TrainingJobSummaries"]
    result = execute_dag_run("breast_cancer", {
        "problem_type": "regression", "target": "mean_area", "model": "linear_regression",
        "positive_class": None, "thresholds": None,
    })
    assert result["state"] == "failed"
    assert result["tasks"]["validate_params"] == "failed"
    assert result["tasks"]["preprocess"] == "upstream_failed"
    assert sagemaker.list_training_jobs()["TrainingJobSummaries"] == jobs_before


def test_the_shipped_policy_allowed_every_call_and_the_record_is_current(classification):
    """Last in the module: the policy refused nothing, and tests/dags/iam_calls.json holds
    exactly the actions the run used (tests/test_iam_policy.py proves each one is needed)."""
    check_record(classification.trail, "test_classification_e2e")
