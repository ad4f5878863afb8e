from __future__ import annotations

import json

import pytest
from airflow.providers.common.compat.sdk import AirflowException
from sagemaker_mlops import deploy
from sagemaker_mlops.alerts import retrain_alert
from sagemaker_mlops.deploy import DeployError
from sagemaker_mlops.gate import decide
from sagemaker_mlops.gate_policy import GatePolicy


def endpoint(status="InService", config="cfg-new", reason=None):
    described = {"EndpointName": "e", "EndpointStatus": status, "EndpointConfigName": config}
    if reason:
        described["FailureReason"] = reason
    return described


def test_verify_serving_accepts_the_requested_config():
    deploy.verify_serving(endpoint(), "cfg-new")


def test_verify_serving_detects_silent_rollback():
    with pytest.raises(DeployError) as error:
        deploy.verify_serving(endpoint(config="cfg-old", reason="model failed to load"), "cfg-new")
    assert str(error.value) == (
        "endpoint rolled back: it serves cfg-old, not the new cfg-new (model failed to load)"
    )


@pytest.mark.parametrize(
    ("described", "message"),
    [
        (None, "does not exist"),
        (endpoint(status="Failed", reason="ping failed"), "endpoint is Failed, not InService: ping failed"),
    ],
)
def test_verify_serving_rejects_unhealthy_endpoints(described, message):
    with pytest.raises(DeployError, match=message):
        deploy.verify_serving(described, "cfg-new")


SAMPLE = {
    "columns": ["longitude", "latitude", "ocean_proximity"],
    "rows": [[-122.23, 37.88, "NEAR BAY"], [-118.3, 34.2, "<1H OCEAN"]],
    "predictions": [452600.5, 180000.25],
}


def test_sample_payload_is_headerless_csv_in_column_order():
    body, expected = deploy.sample_payload(SAMPLE)
    assert body == b"-122.23,37.88,NEAR BAY\n-118.3,34.2,<1H OCEAN\n"
    assert expected == [452600.5, 180000.25]


def test_sample_payload_needs_rows_and_matching_predictions():
    with pytest.raises(DeployError, match="2 rows and 1 predictions"):
        deploy.sample_payload({**SAMPLE, "predictions": [1.0]})


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (b"[452600.5, 180000.25]", "application/json", [452600.5, 180000.25]),
        (b'{"predictions": [[1.5], [2.5]]}', "application/json", [1.5, 2.5]),
        (b"1.5\n2.5\n", "text/csv", ["1.5", "2.5"]),
        (b'["yes", "no"]', "application/json", ["yes", "no"]),
    ],
)
def test_parse_predictions(body, content_type, expected):
    assert deploy.parse_predictions(body, content_type) == expected


def test_compare_predictions_tolerates_float_noise_only():
    deploy.compare_predictions(["452600.51", 180000.25], [452600.5, 180000.25])
    with pytest.raises(DeployError, match="row 1 predicted"):
        deploy.compare_predictions([452600.5, 190000.0], [452600.5, 180000.25])
    with pytest.raises(DeployError, match="returned 1 predictions for 2 rows"):
        deploy.compare_predictions([1.0], [1.0, 2.0])
    deploy.compare_predictions(["yes"], ["yes"])
    with pytest.raises(DeployError):
        deploy.compare_predictions(["yes"], ["no"])


class FakeBody:
    def __init__(self, data: bytes):
        self.data = data

    def read(self) -> bytes:
        return self.data


class RecordingRuntime:
    """Stands in for the sagemaker-runtime client: records the call, answers like inference.py."""

    def __init__(self, answer: list):
        self.answer = answer
        self.calls: list[dict] = []

    def invoke_endpoint(self, **kwargs):
        self.calls.append(kwargs)
        return {"Body": FakeBody(json.dumps(self.answer).encode()), "ContentType": "application/json"}


def test_smoke_check_invokes_with_csv_and_compares():
    runtime = RecordingRuntime(SAMPLE["predictions"])
    assert deploy.smoke_check(runtime, "e", SAMPLE) == SAMPLE["predictions"]
    assert runtime.calls[0]["ContentType"] == "text/csv"
    assert runtime.calls[0]["EndpointName"] == "e"
    with pytest.raises(DeployError, match="smoke check"):
        deploy.smoke_check(RecordingRuntime([0.0, 0.0]), "e", SAMPLE)


def test_retrain_alert_lists_failing_checks_with_values_thresholds_and_deltas(evaluation, metric):
    doc = evaluation(
        {"r2_score": metric(0.58)}, champion={"r2_score": metric(0.63)},
        delta={"metric": "r2_score", "value": -0.05},
    )
    verdict = decide(doc, GatePolicy.build("regression"))
    subject, message = retrain_alert(
        verdict, dag_id="mlops_pipeline", run_id="manual__1", model_package_group="g",
        evaluation_uri="s3://b/e.json",
    )
    assert subject == "[mlops_pipeline] retrain needed: 2 quality check(s) failed"
    assert "- r2_score: 0.5800 (required >= 0.6000)" in message
    assert "- r2_score vs champion: -0.0500 (required >= 0.0000); champion 0.6300, delta -0.0500" in message
    assert "Metric" in message and "Required threshold" in message
    assert "s3://b/e.json" in message
    assert len(subject) <= 100


@pytest.fixture
def stubbed_sagemaker():
    """A real botocore SageMaker client whose answers are queued (requests are still validated)."""
    import boto3
    from botocore.stub import Stubber

    client = boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="test",
                          aws_secret_access_key="test")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def _described(status: str, config: str) -> dict:
    return {"EndpointName": "e", "EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/e",
            "EndpointConfigName": config, "EndpointStatus": status,
            "CreationTime": "2026-11-26T00:00:00Z", "LastModifiedTime": "2026-11-26T00:00:00Z"}


def test_restore_recreates_a_failed_endpoint_because_it_accepts_only_delete(stubbed_sagemaker):
    client, stub = stubbed_sagemaker
    stub.add_response("describe_endpoint", _described("Failed", "cfg-new"), {"EndpointName": "e"})
    stub.add_response("delete_endpoint", {}, {"EndpointName": "e"})
    stub.add_client_error("describe_endpoint", "ValidationException", "Could not find endpoint e.")
    stub.add_response("create_endpoint", {"EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/e"},
                      {"EndpointName": "e", "EndpointConfigName": "cfg-old"})
    stub.add_response("describe_endpoint", _described("InService", "cfg-old"), {"EndpointName": "e"})
    message = deploy.restore(client, "e", "cfg-old", delay=0)
    assert message == "created endpoint e again on cfg-old (it was Failed or gone)"


def test_restore_updates_a_live_endpoint_back_to_the_previous_config(stubbed_sagemaker):
    client, stub = stubbed_sagemaker
    stub.add_response("describe_endpoint", _described("InService", "cfg-new"), {"EndpointName": "e"})
    stub.add_response("update_endpoint", {"EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/e"},
                      {"EndpointName": "e", "EndpointConfigName": "cfg-old"})
    stub.add_response("describe_endpoint", _described("InService", "cfg-old"), {"EndpointName": "e"})
    assert deploy.restore(client, "e", "cfg-old", delay=0) == "restored endpoint e to cfg-old"


@pytest.mark.parametrize(("model", "package"), [
    ({"Containers": [{"ModelPackageName": "arn:aws:sagemaker:us-east-1:123456789012:model-package/g/2"}]},
     "arn:aws:sagemaker:us-east-1:123456789012:model-package/g/2"),
    ({"PrimaryContainer": {"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/x:1"}}, None),
])
def test_served_package_names_the_registry_version_behind_a_config(stubbed_sagemaker, model, package):
    client, stub = stubbed_sagemaker
    stub.add_response("describe_endpoint_config", {
        "EndpointConfigName": "cfg", "EndpointConfigArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/cfg",
        "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": "m"}],
        "CreationTime": "2026-11-26T00:00:00Z"}, {"EndpointConfigName": "cfg"})
    stub.add_response("describe_model", {
        "ModelName": "m", "ModelArn": "arn:aws:sagemaker:us-east-1:123456789012:model/m",
        "CreationTime": "2026-11-26T00:00:00Z", **model}, {"ModelName": "m"})
    assert deploy.served_package(client, "cfg") == package


class FakeTaskInstance:
    dag_id = "mlops_pipeline"
    run_id = "manual__2026-11-26T13:00:00+00:00"
    task_id = "train_model"
    try_number = 2


SAGEMAKER_FAILURE = AirflowException(
    "SageMaker job failed because AlgorithmError: framework error: \n"
    "Traceback (most recent call last):\n"
    '  File "train.py", line 40, in main\n'
    "ValueError: column 'label' not found in train.csv\n"
    ", exit code: 1"
)


@pytest.mark.parametrize(
    ("exception", "reason"),
    [
        (ValueError("boom\nsecond line"), "boom"),
        (
            SAGEMAKER_FAILURE,
            "SageMaker job failed because AlgorithmError: framework error: | "
            "ValueError: column 'label' not found in train.csv",
        ),
        (RuntimeError(), "RuntimeError"),
        (None, "(the callback context has no exception: see the task log)"),
    ],
)
def test_failure_alert_names_dag_run_task_reason_and_ui_links(exception, reason):
    # Airflow 3.2's in-process runs leave "exception" out of the failure callback's context
    from sagemaker_mlops.alerts import failure_alert

    context = {"ti": FakeTaskInstance(), "run_id": FakeTaskInstance.run_id}
    if exception is not None:
        context["exception"] = exception
    subject, body = failure_alert(context, "https://airflow.example.com/")
    run_url = (
        "https://airflow.example.com/dags/mlops_pipeline/runs/manual__2026-11-26T13%3A00%3A00%2B00%3A00"
    )
    assert subject == "[mlops_pipeline] task train_model failed"
    assert body.splitlines() == [
        "Task train_model of DAG mlops_pipeline failed in run manual__2026-11-26T13:00:00+00:00 (try 2).",
        f"Reason: {reason}",
        f"Run: {run_url}",
        f"Task log: {run_url}/tasks/train_model",
    ]


def test_failure_notifier_publishes_the_alert_with_the_configured_ui_url(monkeypatch):
    import boto3
    from botocore.stub import Stubber
    from sagemaker_mlops.alerts import failure_notifier
    from sagemaker_mlops.settings import Settings

    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.com")
    topic = "arn:aws:sns:us-east-1:111122223333:alerts"
    notifier = failure_notifier(Settings())
    notifier.target_arn = topic  # what the Variable template renders to
    client = boto3.client("sns", region_name="us-east-1", aws_access_key_id="test",
                          aws_secret_access_key="test")
    notifier.hook.__dict__["conn"] = client
    run_url = "https://airflow.example.com/dags/mlops_pipeline/runs/manual__2026-11-26T13%3A00%3A00%2B00%3A00"
    with Stubber(client) as stub:
        body = (
            "Task train_model of DAG mlops_pipeline failed in run manual__2026-11-26T13:00:00+00:00 "
            f"(try 2).\nReason: boom\nRun: {run_url}\nTask log: {run_url}/tasks/train_model"
        )
        stub.add_response("publish", {"MessageId": "m-1"}, {
            "TargetArn": topic,
            "Subject": "[mlops_pipeline] task train_model failed",
            "Message": json.dumps({"default": body}),
            "MessageStructure": "json",
        })
        notifier.notify({"ti": FakeTaskInstance(), "run_id": FakeTaskInstance.run_id,
                         "exception": ValueError("boom")})
        stub.assert_no_pending_responses()


def test_wait_settled_waits_out_an_update_a_killed_try_started(stubbed_sagemaker):
    client, stub = stubbed_sagemaker
    stub.add_response("describe_endpoint", _described("Updating", "cfg-old"), {"EndpointName": "e"})
    stub.add_response("describe_endpoint", _described("InService", "cfg-new"), {"EndpointName": "e"})
    assert deploy.wait_settled(client, "e", delay=0)["EndpointConfigName"] == "cfg-new"
    stub.add_client_error("describe_endpoint", "ValidationException", "Could not find endpoint e.")
    assert deploy.wait_settled(client, "e", delay=0) is None
    stub.add_response("describe_endpoint", _described("Creating", "cfg-new"), {"EndpointName": "e"})
    with pytest.raises(DeployError, match="endpoint e stayed Creating for 1 checks"):
        deploy.wait_settled(client, "e", delay=0, max_attempts=1)


def test_a_refused_update_of_an_in_flight_endpoint_is_another_deployment(stubbed_sagemaker):
    from botocore.exceptions import ClientError

    client, stub = stubbed_sagemaker
    message = ('Cannot update in-progress endpoint '
               '"arn:aws:sagemaker:us-east-1:123456789012:endpoint/e".')
    stub.add_client_error("update_endpoint", "ValidationException", message)
    with pytest.raises(ClientError) as error:
        client.update_endpoint(EndpointName="e", EndpointConfigName="cfg-new")
    assert deploy.is_concurrent_change(error.value)
    assert not deploy.is_concurrent_change(DeployError("smoke check: row 0 predicted 1 but 2"))


class StateStore:
    """Airflow 3.3's task state store as a task sees it (get/set), kept across tries."""

    def __init__(self) -> None:
        self.values: dict = {}

    def get(self, key, default=None):
        return self.values.get(key, default)

    def set(self, key, value, **_):
        self.values[key] = value


@pytest.mark.parametrize(
    ("serving", "restore_to"),
    [("cfg-new", "cfg-old"),  # killed after UpdateEndpoint: the first try's record decides
     ("cfg-old", "cfg-old"),  # killed before it
     ("cfg-other", "cfg-other")],  # someone deployed since: what serves now is kept
)
def test_the_config_to_restore_survives_a_killed_try(serving, restore_to):
    from sagemaker_mlops.deploy_operator import PREVIOUS_CONFIG_KEY, ServerlessDeployOperator

    operator = ServerlessDeployOperator(
        task_id="deploy_serverless", model_package_arn="arn", endpoint_name="e",
        role_arn="arn:aws:iam::123456789012:role/r", memory_mb=2048, max_concurrency=5,
    )
    store = StateStore()
    first = operator._previous_config({"task_state_store": store}, "cfg-new", _described("InService", "cfg-old"))
    assert first == "cfg-old"
    assert store.values[PREVIOUS_CONFIG_KEY] == {"config": "cfg-new", "previous": "cfg-old"}
    rerun = operator._previous_config({"task_state_store": store}, "cfg-new", _described("InService", serving))
    assert rerun == restore_to


def _operator(client):
    from sagemaker_mlops.deploy_operator import ServerlessDeployOperator

    operator = ServerlessDeployOperator(
        task_id="deploy_serverless", model_package_arn="arn", endpoint_name="e",
        role_arn="arn:aws:iam::123456789012:role/r", memory_mb=2048, max_concurrency=5,
        check_interval=0,
    )
    operator.hook.__dict__["conn"] = client  # the stubbed client (its requests still validated)
    return operator


def test_a_throttled_deploy_restores_but_does_not_reject_the_version(stubbed_sagemaker):
    from botocore.exceptions import ClientError
    from sagemaker_mlops.registry import ModelVersion

    client, stub = stubbed_sagemaker
    version = ModelVersion("arn:aws:sagemaker:us-east-1:123456789012:model-package/g/3", 3,
                           "Approved", "s3://b/m.tar.gz", None, {})
    throttled = ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"},
                             "ResponseMetadata": {"HTTPStatusCode": 400}}, "CreateModel")
    stub.add_response("describe_endpoint", _described("InService", "cfg-old"), {"EndpointName": "e"})
    stub.add_response("describe_endpoint", _described("InService", "cfg-old"), {"EndpointName": "e"})
    # no UpdateModelPackage queued: the Stubber fails the test if the version is Rejected
    with pytest.raises(AirflowException) as error:
        _operator(client)._fail(version, "cfg-new", "cfg-old", throttled)
    assert type(error.value).__name__ == "AirflowException"  # not AirflowFailException: retryable
    assert "AWS throttled the request (ThrottlingException)" in str(error.value)
    assert "endpoint restored, version left Approved" in str(error.value)


def test_a_failed_verify_restores_and_rejects_the_version(stubbed_sagemaker):
    from airflow.providers.common.compat.sdk import AirflowFailException
    from sagemaker_mlops.registry import ModelVersion

    client, stub = stubbed_sagemaker
    arn = "arn:aws:sagemaker:us-east-1:123456789012:model-package/g/3"
    version = ModelVersion(arn, 3, "Approved", "s3://b/m.tar.gz", None, {})
    stub.add_response("describe_endpoint", _described("InService", "cfg-new"), {"EndpointName": "e"})
    stub.add_response("describe_endpoint", _described("InService", "cfg-new"), {"EndpointName": "e"})
    stub.add_response("update_endpoint", {"EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/e"},
                      {"EndpointName": "e", "EndpointConfigName": "cfg-old"})
    stub.add_response("describe_endpoint", _described("InService", "cfg-old"), {"EndpointName": "e"})
    reason = "deployment of version 3 failed: smoke check: row 0 predicted 1.0 by the endpoint"
    stub.add_response("update_model_package", {"ModelPackageArn": arn}, {
        "ModelPackageArn": arn, "ModelApprovalStatus": "Rejected", "ApprovalDescription": reason})
    with pytest.raises(AirflowFailException, match="smoke check"):
        _operator(client)._fail(version, "cfg-new", "cfg-old",
                                DeployError("smoke check: row 0 predicted 1.0 by the endpoint"))
