"""End to end for the shipped california_housing spec (DAG ``mlops_pipeline``) against the real
emulator: the DAGs run with dag.test(), jobs really execute, the endpoint really serves. One
story, in order (each step builds on the registry, endpoint
and S3 state the previous steps left):

1. first run: registered as version 1, Approved, endpoint InService, invocation answers;
2. failing run (impossible threshold): alert published, nothing registered, endpoint untouched;
3. second run with a stronger model: champion scored, version 2, endpoint updated (not recreated);
4. register_model re-run within run 3: no second version;
5. deploy_approved_model rolls back to version 1;
6. deploy_approved_model of a version whose model.tar.gz or sourcedir tarball was overwritten:
   refused before any change, both hashes in the alert;
7. a deploy whose smoke check fails: previous config restored, version Rejected, failure alerted.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sagemaker_mlops import deploy, naming
from sagemaker_mlops.settings import Settings
from sagemaker_mlops.specs import PipelineSpec, find_spec

from local_sagemaker.launcher import EmulatorProcess
from tests.dags._iam_trail import POLICY, IamTrail, check_record
from tests.dags._offline_stack import AlertQueue, offline_stack
from tools.run_offline import (
    DagRunResult,
    airflow_env,
    execute_dag_run,
    read_s3_json,
    run_dag,
    start_emulator,
    summarize,
)

pytestmark = pytest.mark.slow


@dataclass
class Story:
    emulator: EmulatorProcess
    settings: Settings
    spec: PipelineSpec
    alerts: AlertQueue
    trail: IamTrail
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def sagemaker(self) -> Any:
        return self.emulator.client("sagemaker")

    def versions(self) -> list[dict[str, Any]]:
        summaries = self.sagemaker.list_model_packages(
            ModelPackageGroupName=self.spec.model_package_group, SortBy="CreationTime",
            SortOrder="Ascending",
        )["ModelPackageSummaryList"]
        return [self.sagemaker.describe_model_package(ModelPackageName=s["ModelPackageArn"])
                for s in summaries]

    def endpoint(self) -> dict[str, Any]:
        return self.sagemaker.describe_endpoint(EndpointName=self.spec.endpoint_name)

    def serving_package(self) -> str | None:
        return deploy.served_package(self.sagemaker, self.endpoint()["EndpointConfigName"])

    def evaluation(self, run_id: str) -> dict[str, Any]:
        layout = naming.RunLayout(self.settings.bucket, self.spec.s3_prefix, run_id)
        return read_s3_json(self.emulator, layout.evaluation_json_uri)

    def verdict(self, run_id: str) -> dict[str, Any]:
        layout = naming.RunLayout(self.settings.bucket, self.spec.s3_prefix, run_id)
        return read_s3_json(self.emulator, layout.verdict_json_uri)

    def invoke(self, rows: list[list[Any]]) -> list[float]:
        body, _ = deploy.sample_payload({"rows": rows, "predictions": [0] * len(rows)})
        response = self.emulator.client("sagemaker-runtime").invoke_endpoint(
            EndpointName=self.spec.endpoint_name, Body=body, ContentType="text/csv",
            Accept="application/json")
        return [float(v) for v in deploy.parse_predictions(response["Body"].read(), "application/json")]


@pytest.fixture(scope="module")
def story(airflow_db, tmp_path_factory) -> Story:
    data_dir = tmp_path_factory.mktemp("e2e-emulator")
    audit = data_dir / "iam-audit.jsonl"
    emulator = start_emulator(data_dir, iam_policy=POLICY, iam_audit=audit)
    try:
        with offline_stack(emulator) as settings:
            alerts = AlertQueue(emulator, settings.topic_arn)
            yield Story(emulator, settings, find_spec("california_housing"), alerts, IamTrail(audit))
    finally:
        code = emulator.stop()
        assert code == 0, emulator.log_path.read_text()[-3000:]


@pytest.fixture(autouse=True)
def _iam_calls(story, request):
    """Every Airflow call runs under the shipped policy; note which test made it."""
    with story.trail.attribute(request.node.nodeid):
        yield


def run(story: Story, name: str, dag_id: str, conf: dict[str, Any] | None = None) -> dict[str, Any]:
    result = execute_dag_run(dag_id, conf)
    story.runs[name] = result
    return result


def test_first_run_registers_approves_and_serves(story):
    result = run(story, "first", "mlops_pipeline")
    assert result["state"] == "success", result
    assert result["tasks"]["retrain_alert"] == "skipped"
    assert {result["tasks"][t] for t in ("register_model", "deploy_serverless")} == {"success"}

    verdict = story.verdict(result["run_id"])
    assert verdict["passed"] is True
    r2 = verdict["checks"][0]
    assert (r2["metric"], r2["op"], r2["threshold"]) == ("r2_score", ">=", 0.6)
    assert r2["value"] == story.evaluation(result["run_id"])["regression_metrics"]["r2_score"]["value"]

    [version] = story.versions()
    assert (version["ModelPackageVersion"], version["ModelApprovalStatus"]) == (1, "Approved")
    metadata = version["CustomerMetadataProperties"]
    assert metadata["run_id"] == result["run_id"] and metadata["dag_id"] == "mlops_pipeline"
    assert (metadata["problem_type"], metadata["target"]) == ("regression", "median_house_value")
    artifact = version["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    bucket, key = naming.split_s3_uri(artifact)
    body = story.emulator.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    assert metadata["artifact_sha256"] == hashlib.sha256(body).hexdigest()
    source = version["InferenceSpecification"]["Containers"][0]["Environment"]["SAGEMAKER_SUBMIT_DIRECTORY"]
    bucket, key = naming.split_s3_uri(source)
    body = story.emulator.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    assert metadata["sourcedir_sha256"] == hashlib.sha256(body).hexdigest()  # what serving loads
    assert all(len(metadata[k]) == 64 for k in ("data_sha256", "code_sha256", "artifact_sha256"))
    statistics = version["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
    assert statistics.endswith("/evaluation/evaluation.json")

    endpoint = story.endpoint()
    assert endpoint["EndpointStatus"] == "InService"
    assert story.serving_package() == version["ModelPackageArn"]
    sample = story.evaluation(result["run_id"])["sample_predictions"]
    predictions = story.invoke(sample["rows"])
    assert predictions == pytest.approx(sample["predictions"], rel=1e-3)
    story.endpoints["v1"] = endpoint


def test_offline_summary_reads_verdict_registry_and_live_endpoint(story):
    first = story.runs["first"]
    run = DagRunResult("mlops_pipeline", first["run_id"], first["state"], first["tasks"], 1.0, Path("log"))
    summary = summarize(story.emulator, story.settings, story.spec, run)
    assert "Quality gate PASSED on point estimates: 2/2 checks passed" in summary
    assert "Metric     | Value  | Required threshold | Conclusion" in summary
    assert "SageMaker jobs: preprocess Completed in" in summary
    assert "california-housing version 1 is Approved" in summary
    assert "Endpoint california-housing: InService on california-housing-v1-" in summary
    predicted = float(summary.split("Live prediction (version 1) for [")[1].split("]: ")[1].split()[0])
    sample = story.evaluation(first["run_id"])["sample_predictions"]
    assert predicted == pytest.approx(sample["predictions"][0], rel=1e-3)


def test_failing_run_alerts_and_leaves_registry_and_endpoint_alone(story):
    before = story.endpoint()
    story.alerts.drain()  # drop anything earlier
    result = run(story, "failing", "mlops_pipeline", {"thresholds": {"r2_score": ">= 0.99"}})
    assert result["state"] == "success", result
    assert result["tasks"]["retrain_alert"] == "success"
    assert result["tasks"]["register_model"] == result["tasks"]["deploy_serverless"] == "skipped"

    verdict = story.verdict(result["run_id"])
    assert verdict["passed"] is False
    assert verdict["reasons"][0].startswith("r2_score value ")
    [alert] = story.alerts.drain()
    assert "did not pass the quality gate" in alert
    assert "(required >= 0.9900)" in alert
    assert "Metric" in alert and "Conclusion" in alert

    assert len(story.versions()) == 1
    after = story.endpoint()
    assert after["EndpointConfigName"] == before["EndpointConfigName"]
    assert after["LastModifiedTime"] == before["LastModifiedTime"]


def test_second_run_scores_the_champion_and_updates_the_endpoint(story):
    result = run(story, "second", "mlops_pipeline", {"model": "hist_gradient_boosting"})
    assert result["state"] == "success", result

    v1, v2 = story.versions()
    evaluation = story.evaluation(result["run_id"])
    champion = evaluation["champion"]
    assert champion["model_uri"] == v1["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    first_r2 = story.evaluation(story.runs["first"]["run_id"])["regression_metrics"]["r2_score"]
    assert champion["regression_metrics"]["r2_score"]["value"] == pytest.approx(first_r2["value"])
    verdict = story.verdict(result["run_id"])
    vs_champion = next(c for c in verdict["checks"] if c["metric"] == "r2_score vs champion")
    assert vs_champion["passed"] and vs_champion["delta"] > 0

    assert (v2["ModelPackageVersion"], v2["ModelApprovalStatus"]) == (2, "Approved")
    endpoint = story.endpoint()
    first = story.endpoints["v1"]
    assert endpoint["EndpointArn"] == first["EndpointArn"]
    assert endpoint["CreationTime"] == first["CreationTime"]  # updated, not recreated
    assert endpoint["EndpointConfigName"] != first["EndpointConfigName"]
    assert story.serving_package() == v2["ModelPackageArn"]
    story.endpoints["v2"] = endpoint


def test_rerunning_register_model_does_not_register_twice(story, capsys):
    """What clearing the task in the UI leads to: the task runs again inside the same run."""
    from airflow.cli import cli_parser

    run_id = story.runs["second"]["run_id"]
    args = cli_parser.get_parser().parse_args(
        ["tasks", "test", "mlops_pipeline", "register_model", run_id]
    )
    args.func(args)  # `airflow tasks test`, in this process
    output = capsys.readouterr()
    assert "already registered version 2" in output.out + output.err
    assert [v["ModelPackageVersion"] for v in story.versions()] == [1, 2]


def test_deploy_approved_model_rolls_back_to_version_1(story, tmp_path):
    v1, _ = story.versions()
    # through a child process, as tools/run_offline.py runs DAGs (same Airflow home and DB)
    env = airflow_env(Path(os.environ["AIRFLOW_HOME"]), story.emulator.url)
    result = run_dag(env, "deploy_approved_model", {"version": 1}, tmp_path / "rollback.log")
    assert result.state == "success", result.log_path.read_text()[-3000:]
    assert result.tasks == {"resolve_version": "success", "deploy_serverless": "success"}
    assert story.serving_package() == v1["ModelPackageArn"]
    sample = story.evaluation(story.runs["first"]["run_id"])["sample_predictions"]
    assert story.invoke(sample["rows"]) == pytest.approx(sample["predictions"], rel=1e-3)


def served_label(served: str) -> str:
    return "model artifact" if served == "ModelDataUrl" else "serving code"


@pytest.mark.parametrize("served", ["ModelDataUrl", "SAGEMAKER_SUBMIT_DIRECTORY"])
def test_tampered_artifact_or_serving_code_is_refused_before_deploying(story, served):
    """An object the version serves, overwritten after registration: the deploy refuses it."""
    _, v2 = story.versions()
    container = v2["InferenceSpecification"]["Containers"][0]
    uri = container.get(served) or container["Environment"][served]
    bucket, key = naming.split_s3_uri(uri)
    s3 = story.emulator.client("s3")
    original = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    tampered = original + b"\0"  # still a valid gzip stream to anything that only reads it
    before = story.endpoint()
    story.alerts.drain()
    s3.put_object(Bucket=bucket, Key=key, Body=tampered)
    try:
        result = run(story, f"tampered-{served}", "deploy_approved_model", {"version": 2})
    finally:
        s3.put_object(Bucket=bucket, Key=key, Body=original)
    assert result["state"] == "failed"
    assert result["tasks"]["deploy_serverless"] == "failed"
    after = story.endpoint()
    assert (after["EndpointConfigName"], after["LastModifiedTime"]) == (
        before["EndpointConfigName"], before["LastModifiedTime"])
    assert story.serving_package() == story.versions()[0]["ModelPackageArn"]
    package = story.sagemaker.describe_model_package(ModelPackageName=v2["ModelPackageArn"])
    assert package["ModelApprovalStatus"] == "Approved"
    [alert] = [a for a in story.alerts.drain() if "deploy_serverless" in a]
    reason = next(line for line in alert.splitlines() if line.startswith("Reason: "))
    assert reason.startswith(f"Reason: version 2 not deployed: {served_label(served)} {uri} changed")
    assert hashlib.sha256(tampered).hexdigest() in reason
    assert hashlib.sha256(original).hexdigest() in reason


def test_failed_smoke_check_restores_previous_config_and_rejects_version(story):
    v1, v2 = story.versions()
    before = story.endpoint()
    # version 2 no longer predicts what its evaluation recorded: the smoke check must notice
    uri = v2["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
    evaluation = read_s3_json(story.emulator, uri)
    evaluation["sample_predictions"]["predictions"] = [
        p * 1.5 for p in evaluation["sample_predictions"]["predictions"]
    ]
    bucket, key = naming.split_s3_uri(uri)
    story.emulator.client("s3").put_object(Bucket=bucket, Key=key, Body=json.dumps(evaluation).encode())
    story.alerts.drain()

    result = run(story, "bad-deploy", "deploy_approved_model", {"version": 2})
    assert result["state"] == "failed"
    assert result["tasks"]["deploy_serverless"] == "failed"

    after = story.endpoint()
    assert after["EndpointStatus"] == "InService"
    assert after["EndpointConfigName"] == before["EndpointConfigName"]
    assert story.serving_package() == v1["ModelPackageArn"]
    rejected = story.sagemaker.describe_model_package(ModelPackageName=v2["ModelPackageArn"])
    assert rejected["ModelApprovalStatus"] == "Rejected"
    assert "smoke check" in rejected["ApprovalDescription"]
    alerts = story.alerts.drain()
    assert any("deploy_serverless" in a and "failed" in a for a in alerts), alerts


def test_model_that_cannot_load_is_caught_despite_silent_rollback(story):
    """SageMaker answers a failed UpdateEndpoint by serving the old config again (InService)."""
    v1 = story.versions()[0]
    before = story.endpoint()
    bucket = story.settings.bucket
    story.emulator.client("s3").put_object(
        Bucket=bucket, Key="broken/model.tar.gz", Body=b"this is not a model archive")
    spec = v1["InferenceSpecification"]
    spec["Containers"][0]["ModelDataUrl"] = f"s3://{bucket}/broken/model.tar.gz"
    metadata = {**{k: v for k, v in v1["CustomerMetadataProperties"].items() if k != "run_id"},
                "artifact_sha256": hashlib.sha256(b"this is not a model archive").hexdigest()}
    broken = story.sagemaker.create_model_package(
        ModelPackageGroupName=story.spec.model_package_group, ModelApprovalStatus="Approved",
        InferenceSpecification=spec, ModelMetrics=v1["ModelMetrics"],
        CustomerMetadataProperties=metadata,
    )["ModelPackageArn"]
    version = int(broken.rsplit("/", 1)[1])

    result = run(story, "broken-deploy", "deploy_approved_model", {"version": version})
    assert result["state"] == "failed"
    after = story.endpoint()
    assert (after["EndpointStatus"], after["EndpointConfigName"]) == (
        "InService", before["EndpointConfigName"])
    assert story.serving_package() == v1["ModelPackageArn"]
    rejected = story.sagemaker.describe_model_package(ModelPackageName=broken)
    assert rejected["ModelApprovalStatus"] == "Rejected"
    assert "endpoint rolled back" in rejected["ApprovalDescription"]


def test_invalid_parameters_stop_the_run_before_any_job(story):
    jobs_before = story.sagemaker.list_training_jobs()["TrainingJobSummaries"]
    with pytest.raises(Exception, match="'xgboost' is not one of"):
        execute_dag_run("mlops_pipeline", {"model": "xgboost"})  # rejected at trigger time
    with pytest.raises(Exception, match="'abc' is not of type 'number'") as error:
        execute_dag_run("mlops_pipeline", {"model": "ridge", "hyperparameters": {"alpha": "abc"}})
    assert "alpha" in str(error.value)
    result = run(story, "bad-combination", "mlops_pipeline", {"model": "logistic_regression"})
    assert result["state"] == "failed"
    assert result["tasks"]["validate_params"] == "failed"
    assert result["tasks"]["preprocess"] == "upstream_failed"
    assert story.sagemaker.list_training_jobs()["TrainingJobSummaries"] == jobs_before
    other_task = run(story, "other-target", "mlops_pipeline", {"target": "median_income"})
    assert other_task["tasks"]["validate_params"] == "failed"
    assert story.sagemaker.list_training_jobs()["TrainingJobSummaries"] == jobs_before


def test_version_awaiting_manual_approval_is_not_deployed(story):
    from airflow.providers.common.compat.sdk import AirflowSkipException
    from sagemaker_mlops.deploy_operator import ServerlessDeployOperator

    v1 = story.versions()[0]
    before = story.endpoint()
    pending = story.sagemaker.create_model_package(
        ModelPackageGroupName=story.spec.model_package_group,
        ModelApprovalStatus="PendingManualApproval",
        InferenceSpecification=v1["InferenceSpecification"], ModelMetrics=v1["ModelMetrics"],
    )["ModelPackageArn"]
    operator = ServerlessDeployOperator(
        task_id="deploy_serverless", model_package_arn=pending,
        endpoint_name=story.spec.endpoint_name, role_arn=story.settings.role_arn,
        memory_mb=2048, max_concurrency=5, check_interval=1,
    )
    with pytest.raises(AirflowSkipException, match="awaits manual approval"):
        operator.execute(context={"run_id": "manual__approval-check"})
    assert story.endpoint()["EndpointConfigName"] == before["EndpointConfigName"]


def test_the_shipped_policy_allowed_every_call_and_the_record_is_current(story):
    """Last in the module: the policy refused nothing the story did, and tests/dags/iam_calls.json
    holds exactly the actions it used (tests/test_iam_policy.py proves each one is needed)."""
    check_record(story.trail, "test_pipeline_e2e")
