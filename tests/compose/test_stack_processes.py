"""docker-compose.yaml's stack, run as plain processes, schedules and runs mlops_pipeline.

The services' commands, environments, health checks and start order are read from the compose
file (see process_stack.py for the few translations a machine without Docker needs), so this
proves the file's settings: a real PostgreSQL server, the init service's script, `airflow
api-server`, `scheduler`, `dag-processor`, `triggerer`, the emulator and its seed step. Then it
does what a user does: log in, unpause, trigger through the REST API with a conf, wait for
success, and look at the run's grid in the UI (headless Chromium; the PNG lands in
test-output/compose/).
"""

from __future__ import annotations

import json
import secrets
import shutil
import struct
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from sagemaker_mlops import approval, registry
from sagemaker_mlops.settings import PROJECT_ROOT
from sagemaker_mlops.specs import load_spec

from .airflow_client import AirflowClient
from .browser import screenshot
from .compose_file import REPO, load
from .process_stack import ProcessStack

pytestmark = pytest.mark.slow

OUT = REPO / "test-output" / "compose"
DAG_ID = "mlops_pipeline"
SPEC = load_spec(PROJECT_ROOT / "dags" / "pipelines" / "california_housing.yaml")
USERNAME = "airflow"
# A run a user would choose in the trigger form: another model than the default, a gate
# the sample data passes, so the run goes all the way to a serving endpoint.
CONF = {
    "model": "ridge",
    "hyperparameters": {"alpha": 1.0},
    "thresholds": {"r2_score": ">= 0.5"},
}


class Stack:
    def __init__(self, processes: ProcessStack, password: str) -> None:
        self.processes = processes
        self.password = password
        port = processes.translate.host_port("airflow-apiserver", 8080)
        self.base_url = f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    password = secrets.token_urlsafe(16)  # what a user puts in .env
    model = load({"_AIRFLOW_WWW_USER_USERNAME": USERNAME, "_AIRFLOW_WWW_USER_PASSWORD": password})
    # What a user who only triggers runs by hand puts in .env: no scheduled run on unpause.
    dotenv = {"MLOPS_SCHEDULE": "none"}
    processes = ProcessStack(model, tmp_path_factory.mktemp("compose"), OUT / "logs", dotenv)
    try:
        processes.up(timeout=480)
        yield Stack(processes, password)
    finally:
        processes.close()


def test_every_component_reports_healthy_and_the_api_needs_the_login(stack: Stack) -> None:
    health = httpx.get(f"{stack.base_url}/api/v2/monitor/health", timeout=30).json()
    for component in ("metadatabase", "scheduler", "triggerer", "dag_processor"):
        assert health[component]["status"] == "healthy", health
    assert httpx.get(f"{stack.base_url}/api/v2/dags", timeout=30).status_code == 401
    wrong = httpx.post(f"{stack.base_url}/auth/token",
                       json={"username": USERNAME, "password": "not-the-password"}, timeout=30)
    assert wrong.status_code == 401
    # airflow-init generated the shared secrets in the volume, readable by owner and group only.
    secrets_dir = stack.processes.translate.volumes_dir / "airflow-secrets"
    for name in ("jwt_secret", "api_secret_key", "fernet_key"):
        path = secrets_dir / name
        assert len(path.read_text()) >= 32, name
        assert path.stat().st_mode & 0o777 == 0o640, name
    assert json.loads((secrets_dir / "simple_auth_manager_passwords.json").read_text()) == {
        USERNAME: stack.password
    }


def test_mlops_pipeline_triggered_through_the_rest_api_succeeds_and_shows_in_the_grid(
    stack: Stack,
) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for stale in OUT.glob("retry-*.log"):
        stale.unlink()
    client = AirflowClient(stack.base_url, USERNAME, stack.password)
    try:
        dag = client.wait_for_dag(DAG_ID, timeout=180)
        assert dag["is_paused"], "DAGs start paused (AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION)"
        client.unpause(DAG_ID)
        run_id = f"compose_{datetime.now(UTC):%Y%m%dT%H%M%S}"
        run = client.trigger(DAG_ID, run_id, CONF)
        assert run["conf"] == CONF and run["run_type"] == "manual"
        retried: list[str] = []

        def keep_retry_evidence(task_id: str, log: str) -> None:
            # Airflow 3.3's scheduler can retry a deferrable task whose trigger fires before
            # it drains the defer-exit event (apache/airflow#67287, #72716); retries absorb it.
            retried.append(task_id)
            (OUT / f"retry-{task_id}.log").write_text(log)

        tasks = {
            t["task_id"]: t["state"]
            for t in client.wait_for_run(DAG_ID, run_id, timeout=600, on_retry=keep_retry_evidence)
        }
    finally:
        client.close()
    assert tasks["quality_gate"] == "success"
    assert tasks["register_model"] == tasks["deploy_serverless"] == "success", tasks
    assert tasks["retrain_alert"] == "skipped", tasks

    png = OUT / "grid.png"
    text = screenshot(
        f"{stack.base_url}/dags/{DAG_ID}/runs/{run_id}",
        client.token,
        png,
        expect_text=[run_id, "quality_gate", "deploy_serverless", "retrain_alert"],
    )
    (OUT / "grid.txt").write_text(text)
    assert "Sign in" not in text and "password" not in text.lower()
    width, height = png_size(png)
    assert (width, height) == (1600, 1000)
    assert png.stat().st_size > 30_000, "a rendered grid, not a blank page"
    (OUT / "run.json").write_text(
        json.dumps({"run_id": run_id, "conf": CONF, "tasks": tasks, "retried": retried}, indent=2)
    )


# The same run, with a human deciding in the UI (approval_mode manual).
MANUAL_CONF = {**CONF, "approval_mode": "manual", "approval_timeout_hours": 2}
HUMAN_DELAY_SECONDS = 5
TIMEOUT_HOURS = 0.005  # 18 s: long enough to see the question asked, short enough to wait out
APPROVAL_TASK = "approve_model"
IMG = REPO / "docs" / "img"


def manual_run(
    client: AirflowClient, option: str, comment: str, page: Path | None = None
) -> tuple[str, dict[str, Any], dict[str, Any], dict[str, str]]:
    """Trigger a manual-approval run, answer ``option`` through the REST API once it asks
    (screenshotting the approval page first when ``page`` is given); wait for the run's end."""
    run_id = f"compose_{option.lower()}_{datetime.now(UTC):%Y%m%dT%H%M%S}"
    client.trigger(DAG_ID, run_id, MANUAL_CONF)
    detail = client.wait_for_hitl(DAG_ID, run_id, APPROVAL_TASK, timeout=600)
    if page is not None:
        text = screenshot(
            f"{client.base_url}/dags/{DAG_ID}/runs/{run_id}/tasks/{APPROVAL_TASK}/required_actions",
            client.token, page, expect_text=["Quality gate PASSED", "Approve", "Reject"],
        )
        page.with_suffix(".txt").write_text(text)
        IMG.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(page, IMG / page.name)  # the docs show it (docs/approval.md)
    # A person answers seconds after the question at the earliest. An answer within the second
    # the task parks meets Airflow 3.3's race between a trigger event and the defer-exit the
    # scheduler has not drained yet (apache/airflow#67287, #72716): the resumed try is killed
    # ("Server indicated the task shouldn't be running anymore"), and approve_model has no retry.
    time.sleep(HUMAN_DELAY_SECONDS)
    answer = client.respond(DAG_ID, run_id, APPROVAL_TASK, option, {"comment": comment})
    tasks = {
        t["task_id"]: t["state"]
        for t in client.wait_for_run(DAG_ID, run_id, timeout=600, on_retry=lambda *_: None)
    }
    return run_id, detail, answer, tasks


def serving_config(sagemaker: Any) -> str:
    return sagemaker.describe_endpoint(EndpointName=SPEC.endpoint_name)["EndpointConfigName"]


def test_manual_approval_through_the_rest_api_approves_one_rejects_another_and_times_out_a_third(
    stack: Stack,
) -> None:
    port = stack.processes.translate.host_port("local-sagemaker", 4566)
    sagemaker = boto3.client("sagemaker", endpoint_url=f"http://127.0.0.1:{port}",
                             region_name="us-east-1", aws_access_key_id="test",
                             aws_secret_access_key="test")
    client = AirflowClient(stack.base_url, USERNAME, stack.password)
    try:
        client.unpause(DAG_ID)
        # what an operator sets up once so tasks can write their run's note (docs/approval.md)
        client.create_connection("airflow_api", "http", host=stack.base_url, login=USERNAME,
                                 password=stack.password)
        run_id, detail, answer, tasks = manual_run(
            client, "Approve", "r2 holds on the test split; ship it", page=OUT / "approval.png"
        )
        # the approval page carried the verdict table and the report link
        assert detail["subject"].startswith("Approve version ") and detail["options"] == [
            "Approve", "Reject"]
        assert "Required threshold" in detail["body"] and "report.html" in detail["body"]
        assert answer["responded_by"]["name"] == USERNAME
        assert tasks[APPROVAL_TASK] == tasks["deploy_serverless"] == "success", tasks
        approved = registry.find_run_version(sagemaker, SPEC.model_package_group, run_id)
        assert approved is not None and approved.approval_status == "Approved"
        assert approved.metadata[approval.BY_KEY] == USERNAME
        assert approved.metadata[approval.COMMENT_KEY] == "r2 holds on the test split ship it"
        described = sagemaker.describe_model_package(ModelPackageName=approved.arn)
        assert described["ApprovalDescription"] == (
            f"Approved by {USERNAME} in Airflow run {run_id}: r2 holds on the test split; ship it"
        )
        assert f"-v{approved.version}-" in serving_config(sagemaker)
        # the quality gate's extra link opens the run's report (signed for the compose file's
        # browser address, localhost:4566; the process stack publishes the emulator elsewhere)
        # the grid answers "why": the run's note is the verdict and the decision
        note = client.run(DAG_ID, run_id)["note"]
        assert note.startswith("Quality gate PASSED on point estimates: ") and note.endswith(
            f"checks passed; version {approved.version} Approved by {USERNAME}: "
            "r2 holds on the test split; ship it"), note
        link = client.extra_links(DAG_ID, run_id, "quality_gate")["Evaluation report"]
        assert client.extra_links(DAG_ID, run_id, "evaluate")["Evaluation report"].startswith(
            "http://localhost:4566/")
        assert link.startswith("http://localhost:4566/") and "/evaluation/report.html?" in link
        report = httpx.get(link.replace("localhost:4566", f"127.0.0.1:{port}", 1), timeout=30)
        assert report.status_code == 200 and "<html" in report.text.lower()

        before = serving_config(sagemaker)
        run_id, _, _, tasks = manual_run(client, "Reject", "worse than the champion inland")
        assert tasks[APPROVAL_TASK] == "success" and tasks["deploy_serverless"] == "skipped", tasks
        rejected = registry.find_run_version(sagemaker, SPEC.model_package_group, run_id)
        assert rejected is not None and rejected.approval_status == "Rejected"
        assert rejected.metadata[approval.BY_KEY] == USERNAME
        assert sagemaker.describe_model_package(ModelPackageName=rejected.arn)[
            "ApprovalDescription"].endswith(": worse than the champion inland")
        assert serving_config(sagemaker) == before, "a rejected version is never deployed"
        assert client.run(DAG_ID, run_id)["note"].endswith(
            f"Rejected by {USERNAME}: worse than the champion inland")
        assert registry.find_champion(sagemaker, SPEC.model_package_group).arn == approved.arn

        # nobody answers: the triggerer waits out the real timeout, the version is Rejected
        run_id = f"compose_timeout_{datetime.now(UTC):%Y%m%dT%H%M%S}"
        client.trigger(DAG_ID, run_id, {**MANUAL_CONF, "approval_timeout_hours": TIMEOUT_HOURS})
        client.wait_for_hitl(DAG_ID, run_id, APPROVAL_TASK, timeout=600)
        state, tasks = client.wait_for_end(DAG_ID, run_id, timeout=300)
        assert state == "failed" and tasks[APPROVAL_TASK] == "failed", tasks
        assert tasks["deploy_serverless"] == "upstream_failed", tasks
        timed_out = registry.find_run_version(sagemaker, SPEC.model_package_group, run_id)
        assert timed_out is not None and timed_out.approval_status == "Rejected"
        assert timed_out.metadata[approval.BY_KEY] == "nobody timeout"
        reason = f"no approval decision within {TIMEOUT_HOURS:g} h"
        assert reason in sagemaker.describe_model_package(ModelPackageName=timed_out.arn)[
            "ApprovalDescription"]
        assert serving_config(sagemaker) == before, "a timed-out version is never deployed"
        assert reason in client.run(DAG_ID, run_id)["note"]
    finally:
        client.close()


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])
