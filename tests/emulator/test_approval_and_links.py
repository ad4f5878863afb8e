"""Human approval's registry side and the report link, against the emulator's registry and S3.

The waiting itself (the HITL request, the UI, the REST answer) needs a running Airflow: it is
proven in tests/compose/test_stack_processes.py. Here: what each answer does to the version,
the approval page's text, and that the report link opens the report without credentials.
"""

from __future__ import annotations

import json
import re
import urllib.request
from datetime import UTC, datetime

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException, AirflowSkipException
from sagemaker_mlops import approval, links, registry
from sagemaker_mlops.gate import decide
from sagemaker_mlops.plan import build_plan
from sagemaker_mlops.settings import PROJECT_ROOT, load_settings
from sagemaker_mlops.specs import load_spec
from sagemaker_mlops.verdict import Verdict, render_table

from tests.plugins.conftest import build_evaluation, metric

RUN_ID = "manual__2026-11-26T15:00:00+00:00"
HOUSING = load_spec(PROJECT_ROOT / "dags" / "pipelines" / "california_housing.yaml")
REPORT = "<html><body><h1>Evaluation report</h1></body></html>"


@pytest.fixture
def run(emulator, aws_conn_env, bucket, monkeypatch):
    """A manual-approval run: its plan, verdict.json and report.html in S3, a pending version."""
    monkeypatch.setenv("MLOPS_BUCKET", bucket)
    settings = load_settings(environ={"MLOPS_BUCKET": bucket, "AWS_DEFAULT_REGION": "us-east-1"})
    params = {**HOUSING.params, "approval_mode": "manual", "approval_timeout_hours": 2}
    plan = build_plan(params, RUN_ID, settings, HOUSING)
    evaluation = build_evaluation({"r2_score": metric(0.71), "rmse": metric(60000.0)})
    verdict = decide(evaluation, plan.gate, champion_expected=False)
    s3 = emulator.client("s3")
    for uri, body in ((plan.layout.verdict_json_uri, json.dumps(verdict.to_dict())),
                      (links.report_uri(plan.layout.evaluation_uri), REPORT)):
        _, key = uri.split(f"s3://{bucket}/", 1)
        s3.put_object(Bucket=bucket, Key=key, Body=body.encode())
    sagemaker = emulator.client("sagemaker")
    group = f"approval-{bucket}"
    sagemaker.create_model_package_group(ModelPackageGroupName=group)
    arn = sagemaker.create_model_package(
        ModelPackageGroupName=group, ModelApprovalStatus=approval.PENDING,
        InferenceSpecification={
            "Containers": [{"Image": plan.image_uri, "ModelDataUrl": f"s3://{bucket}/m.tar.gz"}],
            "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"],
        },
        CustomerMetadataProperties=registry.customer_metadata({registry.RUN_ID_KEY: RUN_ID}),
    )["ModelPackageArn"]
    return {"plan": plan, "verdict": verdict, "arn": arn, "sagemaker": sagemaker}


def operator(run, **plan_overrides):
    plan = {**run["plan"].to_xcom(), **plan_overrides}
    return approval.ModelApprovalOperator(
        task_id="approve_model", model_package_arn=run["arn"], run_plan=plan,
        aws_conn_id="aws_default",
    )


def answer(option: str, comment: str | None, user: dict | None) -> dict:
    return {"chosen_options": [option], "params_input": {approval.COMMENT: comment},
            "responded_at": datetime(2026, 11, 26, 15, 30, tzinfo=UTC), "responded_by_user": user,
            "timedout": False}


def described(run) -> dict:
    return run["sagemaker"].describe_model_package(ModelPackageName=run["arn"])


def test_approve_makes_the_version_approved_with_approver_and_comment(run):
    result = operator(run).execute_complete(
        {"run_id": RUN_ID}, answer("Approve", "r2 fine, ship it", {"id": "u7", "name": "ana"})
    )
    assert result["decision"] == "Approved" and result["by"] == "ana (u7)"
    package = described(run)
    assert package["ModelApprovalStatus"] == "Approved"
    assert package["ApprovalDescription"] == (
        f"Approved by ana (u7) in Airflow run {RUN_ID}: r2 fine, ship it"
    )
    metadata = package["CustomerMetadataProperties"]
    assert metadata[approval.BY_KEY] == "ana u7"  # the API's character set: no brackets
    assert metadata[approval.COMMENT_KEY] == "r2 fine ship it"
    assert metadata[approval.DECISION_KEY] == "Approved"
    assert metadata[registry.RUN_ID_KEY] == registry.metadata_text(RUN_ID), "registration kept"


class TaskInstanceRecord:
    """What the skip of downstream tasks uses of the running task instance."""

    map_index = -1

    def __init__(self) -> None:
        self.xcom: dict[str, object] = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.xcom[key] = value


def test_reject_makes_the_version_rejected_with_the_comment_then_skips_deploy(run):
    from airflow.providers.common.compat.sdk import DownstreamTasksSkipped
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG

    with DAG("approval_test", schedule=None):
        approve = operator(run)
        approve >> EmptyOperator(task_id="deploy_serverless")
    ti = TaskInstanceRecord()
    # Airflow 3 ends the try with this exception to skip downstream: the decision comes first
    with pytest.raises(DownstreamTasksSkipped) as skipped:
        approve.execute_complete(
            {"run_id": RUN_ID, "ti": ti, "task": approve},
            answer("Reject", "worse on the coast", {"id": "ana", "name": "ana"}),
        )
    assert skipped.value.tasks == ["deploy_serverless"]
    package = described(run)
    assert package["ModelApprovalStatus"] == "Rejected"
    assert package["ApprovalDescription"].endswith(": worse on the coast")
    assert registry.find_champion(run["sagemaker"], package["ModelPackageGroupName"]) is None


def test_no_answer_before_the_timeout_rejects_and_fails_for_the_alert(run):
    event = {"error": "The Human-in-the-loop response timeout has passed without a response.",
             "error_type": "timeout"}
    with pytest.raises(AirflowFailException, match=r"no approval decision within 2 h: version 1 "):
        operator(run).execute_complete({"run_id": RUN_ID}, event)
    package = described(run)
    assert package["ModelApprovalStatus"] == "Rejected"
    assert package["CustomerMetadataProperties"][approval.BY_KEY] == "nobody timeout"
    assert "no approval decision within 2 h" in package["ApprovalDescription"]


def test_a_failed_wait_that_is_no_timeout_raises_the_providers_error_and_changes_nothing(run):
    from airflow.providers.standard.exceptions import HITLTriggerEventError

    with pytest.raises(HITLTriggerEventError):
        operator(run).execute_complete({"run_id": RUN_ID},
                                       {"error": "trigger lost", "error_type": "unknown"})
    assert described(run)["ModelApprovalStatus"] == approval.PENDING


def test_an_answer_outside_the_options_changes_nothing(run):
    with pytest.raises(ValueError, match="not in"):
        operator(run).execute_complete({"run_id": RUN_ID}, answer("Maybe", None, None))
    assert described(run)["ModelApprovalStatus"] == approval.PENDING


def test_automatic_mode_skips_the_approval(run):
    with pytest.raises(AirflowSkipException, match="approval_mode auto"):
        operator(run, approval_status="Approved").execute({"run_id": RUN_ID})


def test_a_decided_version_is_not_asked_again(run):
    run["sagemaker"].update_model_package(ModelPackageArn=run["arn"], ModelApprovalStatus="Approved")
    result = operator(run).execute({"run_id": RUN_ID})
    assert result["decision"] == "Approved"


def test_the_approval_page_shows_the_verdict_table_and_the_report_link(run):
    version = registry.describe_version(run["sagemaker"], run["arn"])
    url = links.report_url("aws_default", run["plan"].layout.evaluation_uri)
    body = approval.approval_body(
        Verdict.from_dict(run["verdict"].to_dict()), version=version, group="g", report_url=url,
        evaluation_uri=run["plan"].layout.evaluation_uri, timeout_hours=2,
    )
    assert render_table(run["verdict"]) in body
    assert re.search(r"\n\nMetric +\| Value +\| Required threshold \| Conclusion\n-+\|-", body)
    assert f"[Open the evaluation report]({url})" in body
    assert "No answer within 2 h: `Rejected`" in body


def test_report_link_opens_the_report_without_credentials(run, emulator):
    plan = run["plan"]
    gate = links.QualityGateOperator(
        task_id="quality_gate", python_callable=lambda: None,
        op_kwargs={"plan": plan.to_xcom(), "aws_conn_id": "aws_default"},
    )
    (link,) = gate.operator_extra_links
    url = link.get_link(gate, ti_key=None)
    assert url.startswith(emulator.url) and "X-Amz-Signature=" in url
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (the emulator)
        assert response.read().decode() == REPORT
        assert response.headers["Content-Type"] == "text/html"


def test_report_link_of_the_evaluate_job_names_its_evaluation_output(run, monkeypatch):
    monkeypatch.setenv("MLOPS_REPORT_LINK_ENDPOINT", "http://localhost:4566")
    config = {"ProcessingOutputConfig": {"Outputs": [
        {"OutputName": "evaluation", "S3Output": {"S3Uri": run["plan"].layout.evaluation_uri}},
    ]}}

    class Evaluate:
        task_id, aws_conn_id = "evaluate", "aws_default"

    evaluate = Evaluate()
    evaluate.config = config
    url = links.ReportLink().get_link(evaluate, ti_key=None)
    assert url.startswith("http://localhost:4566/") and "/evaluation/report.html?" in url
    with pytest.raises(ValueError, match="no report to link"):
        links.evaluation_uri_of(Evaluate())
