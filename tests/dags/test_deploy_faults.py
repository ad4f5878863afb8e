"""Deploy and alert faults injected for real (docs/faults.md, "Deploy, registry and alert faults").

Airflow workers are child processes (``DagWorker``, ``airflow tasks test``) that reach the
emulator through ``FaultProxy``: it holds a chosen SageMaker request so the worker can be
SIGKILLed exactly there, lines two deployments up on the same UpdateEndpoint, or answers every
SNS request 503. After each fault: the endpoint serves the old or the new config fully, the
re-run finishes, no version is rejected for a fault that was not its own, and nothing is lost.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sagemaker_mlops import deploy, naming
from sagemaker_mlops.settings import Settings
from sagemaker_mlops.specs import PipelineSpec, find_spec

from local_sagemaker.launcher import EmulatorProcess
from tests.dags._fault_proxy import FaultProxy, Hold
from tests.dags._offline_stack import AlertQueue, offline_stack
from tools.run_offline import (
    DagWorker,
    airflow_env,
    execute_dag_run,
    read_s3_json,
    run_dag,
    start_emulator,
)

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Bench:
    emulator: EmulatorProcess
    settings: Settings
    spec: PipelineSpec
    alerts: AlertQueue
    first_run_id: str

    @property
    def sagemaker(self) -> Any:
        return self.emulator.client("sagemaker")

    def endpoint(self) -> dict[str, Any]:
        return deploy.wait_settled(self.sagemaker, self.spec.endpoint_name, delay=0.2)

    def serving_package(self) -> str | None:
        return deploy.served_package(self.sagemaker, self.endpoint()["EndpointConfigName"])

    def version(self, number: int) -> dict[str, Any]:
        arn = self.sagemaker.describe_model_package_group(
            ModelPackageGroupName=self.spec.model_package_group)["ModelPackageGroupArn"]
        arn = arn.replace(":model-package-group/", ":model-package/") + f"/{number}"
        return self.sagemaker.describe_model_package(ModelPackageName=arn)

    def new_version(self) -> tuple[int, str]:
        """Another Approved version of the first run's model (same objects, same hashes)."""
        v1 = self.version(1)
        metadata = {k: v for k, v in v1["CustomerMetadataProperties"].items() if k != "run_id"}
        arn = self.sagemaker.create_model_package(
            ModelPackageGroupName=self.spec.model_package_group, ModelApprovalStatus="Approved",
            InferenceSpecification=v1["InferenceSpecification"], ModelMetrics=v1["ModelMetrics"],
            CustomerMetadataProperties=metadata,
        )["ModelPackageArn"]
        return int(arn.rsplit("/", 1)[1]), arn

    def serves_fully(self) -> None:
        """InService, and every row of the evaluation's sample answered as evaluated."""
        assert self.endpoint()["EndpointStatus"] == "InService"
        layout = naming.RunLayout(self.settings.bucket, self.spec.s3_prefix, self.first_run_id)
        sample = read_s3_json(self.emulator, layout.evaluation_json_uri)["sample_predictions"]
        runtime = self.emulator.client("sagemaker-runtime")
        assert deploy.smoke_check(runtime, self.spec.endpoint_name, sample)


@pytest.fixture(scope="module")
def bench(airflow_db, tmp_path_factory) -> Bench:
    emulator = start_emulator(tmp_path_factory.mktemp("faults-emulator"))
    try:
        with offline_stack(emulator) as settings:
            alerts = AlertQueue(emulator, settings.topic_arn)
            first = execute_dag_run("mlops_pipeline")
            assert first["state"] == "success", first
            yield Bench(emulator, settings, find_spec("california_housing"), alerts,
                        first["run_id"])
    finally:
        emulator.stop()


@pytest.fixture
def proxy(bench):
    fault = FaultProxy(bench.emulator.url)
    yield fault
    fault.close()


def worker_env(url: str) -> dict[str, str]:
    return airflow_env(Path(os.environ["AIRFLOW_HOME"]), url)


def start_deploy(url: str, version: int, log: Path) -> DagWorker:
    """deploy_approved_model in a worker process, triggered without waiting for its end."""
    worker = DagWorker(worker_env(url), "deploy_approved_model", log)
    worker.wait_ready()
    assert worker.process.stdin is not None
    worker.process.stdin.write(json.dumps({"version": version}) + "\n")
    worker.process.stdin.close()
    return worker


def latest_run_id(dag_id: str) -> str:
    from airflow.models import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return session.scalars(select(DagRun.run_id).where(DagRun.dag_id == dag_id)
                               .order_by(DagRun.id.desc())).first()


def task_instance_field(dag_id: str, run_id: str, field: str, task_id: str = "deploy_serverless") -> Any:
    """One column (``state``, ``try_number``, ...) of a task instance, from the Airflow DB."""
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return session.scalars(select(getattr(TaskInstance, field)).where(
            TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id,
            TaskInstance.task_id == task_id)).one()


def task_state(dag_id: str, run_id: str, task_id: str = "deploy_serverless") -> str:
    state = task_instance_field(dag_id, run_id, "state", task_id)
    return getattr(state, "value", state)


def task_test(url: str, dag_id: str, run_id: str, log: Path) -> subprocess.Popen:
    """``airflow tasks test`` of deploy_serverless in ``run_id``: what clearing the task runs."""
    handle = open(log, "w")  # noqa: SIM115 - closed with the process by the caller's wait
    return subprocess.Popen(
        [sys.executable, "-m", "airflow", "tasks", "test", dag_id, "deploy_serverless", run_id],
        cwd=ROOT, env=worker_env(url), stdout=handle, stderr=subprocess.STDOUT)


def finished(process: subprocess.Popen, log: Path, timeout: float = 300) -> tuple[int, str]:
    code = process.wait(timeout=timeout)
    return code, log.read_text()


KILL_POINTS = {
    "after CreateModel": lambda: Hold("CreateEndpointConfig"),
    "after CreateEndpointConfig": lambda: Hold("UpdateEndpoint"),
    "while waiting for UpdateEndpoint": lambda: Hold("DescribeEndpoint", after="UpdateEndpoint"),
}


@pytest.mark.parametrize("point", KILL_POINTS)
def test_worker_killed_during_deploy_leaves_one_config_serving_and_the_rerun_finishes(
    bench, proxy, tmp_path, point
):
    number, arn = bench.new_version()
    before = bench.endpoint()
    proxy.hold = KILL_POINTS[point]()
    worker = start_deploy(proxy.url, number, tmp_path / "killed.log")
    proxy.hold.wait_arrivals(timeout=180)
    os.kill(worker.process.pid, signal.SIGKILL)  # the worker dies with the request in flight
    worker.process.wait()
    proxy.hold.drop()

    after = bench.endpoint()  # settled: the endpoint finished whatever SageMaker had started
    if point == "while waiting for UpdateEndpoint":
        assert after["EndpointConfigName"] != before["EndpointConfigName"]
        assert bench.serving_package() == arn  # the new config, fully
    else:
        assert (after["EndpointConfigName"], after["LastModifiedTime"]) == (
            before["EndpointConfigName"], before["LastModifiedTime"])  # the old one, untouched
    bench.serves_fully()

    run_id = latest_run_id("deploy_approved_model")
    _, output = finished(task_test(bench.emulator.url, "deploy_approved_model", run_id,
                                   tmp_path / "rerun.log"), tmp_path / "rerun.log")
    assert task_state("deploy_approved_model", run_id) == "success", output[-3000:]
    assert bench.serving_package() == arn
    bench.serves_fully()
    assert bench.version(number)["ModelApprovalStatus"] == "Approved"
    models = [m["ModelName"] for m in bench.sagemaker.list_models(MaxResults=100)["Models"]]
    served_by_version = [m for m in models if f"-v{number}-" in m]
    assert len(served_by_version) == 1, served_by_version  # the rerun reused the killed try's


def test_two_deployments_to_one_endpoint_at_the_same_moment(bench, proxy, tmp_path):
    """mlops_pipeline's deploy_serverless (re-run of the first run: version 1) and
    deploy_approved_model (a new version) reach UpdateEndpoint together. Without the scheduler's
    one-slot pool (dag.test ignores pools) SageMaker itself serializes them: one wins, the other
    is refused without touching the endpoint or rejecting its version."""
    v1 = bench.version(1)["ModelPackageArn"]
    if bench.serving_package() == v1:  # the pipeline's re-run must have something to change
        moved = run_dag(worker_env(bench.emulator.url), "deploy_approved_model",
                        {"version": bench.new_version()[0]}, tmp_path / "move.log")
        assert moved.succeeded, moved.log_path.read_text()[-3000:]
    number, arn = bench.new_version()
    proxy.hold = Hold("UpdateEndpoint", count=2)
    worker = start_deploy(proxy.url, number, tmp_path / "approved.log")
    pipeline = task_test(proxy.url, "mlops_pipeline", bench.first_run_id, tmp_path / "pipeline.log")
    proxy.hold.wait_arrivals(timeout=240)
    proxy.hold.release()
    _, pipeline_output = finished(pipeline, tmp_path / "pipeline.log")
    while not worker.result_file.exists() and worker.process.poll() is None:
        time.sleep(0.1)
    worker.stop()
    approved = json.loads(worker.result_file.read_text())

    outcomes = {"pipeline": task_state("mlops_pipeline", bench.first_run_id) == "success",
                "approved": approved["state"] == "success"}
    assert sorted(outcomes.values()) == [False, True], (outcomes, pipeline_output[-2000:])
    winner = v1 if outcomes["pipeline"] else arn
    loser_reason = approved["failures"].get("deploy_serverless", "") if outcomes["pipeline"] \
        else pipeline_output
    assert "another deployment is changing endpoint" in loser_reason
    assert bench.serving_package() == winner
    bench.serves_fully()
    for package in (v1, arn):
        status = bench.sagemaker.describe_model_package(ModelPackageName=package)
        assert status["ModelApprovalStatus"] == "Approved"


def test_sns_outage_on_the_alert_path_keeps_the_verdict_and_fails_the_run(bench, proxy, tmp_path):
    before = bench.endpoint()
    versions = bench.sagemaker.list_model_packages(
        ModelPackageGroupName=bench.spec.model_package_group)["ModelPackageSummaryList"]
    bench.alerts.drain()
    proxy.down = {"sns"}
    result = run_dag(worker_env(proxy.url), "mlops_pipeline", {"thresholds": {"r2_score": ">= 0.99"}},
                     tmp_path / "sns-down.log")

    assert result.state == "failed"
    assert result.tasks["retrain_alert"] == "failed"
    reason = result.failures["retrain_alert"]
    assert "Publish" in reason and ("ServiceUnavailable" in reason or "503" in reason), reason
    layout = naming.RunLayout(bench.settings.bucket, bench.spec.s3_prefix, result.run_id)
    verdict = read_s3_json(bench.emulator, layout.verdict_json_uri)  # recorded before the alert
    assert verdict["passed"] is False and verdict["reasons"][0].startswith("r2_score value ")
    log = result.log_path.read_text()
    assert "Required threshold" in log  # the verdict table in the quality_gate task log
    assert "Failed to send notification (sync)" in log  # the failure alert's own Publish, logged
    assert bench.alerts.drain() == []  # nothing was published, and nothing pretends it was
    after = bench.sagemaker.list_model_packages(
        ModelPackageGroupName=bench.spec.model_package_group)["ModelPackageSummaryList"]
    assert len(after) == len(versions)
    assert bench.endpoint()["EndpointConfigName"] == before["EndpointConfigName"]


def test_a_throttled_deploy_is_retried_by_airflow_and_deploys_the_version(bench, proxy, tmp_path):
    """SageMaker throttles UpdateEndpoint longer than botocore's own retries last (legacy mode:
    5 attempts): the first try restores the endpoint and fails retryable, the retry policy calls
    it transient, and Airflow's retry deploys the version. No person had to clear anything."""
    number, arn = bench.new_version()
    proxy.throttled = {"UpdateEndpoint": 5}
    result = run_dag(worker_env(proxy.url), "deploy_approved_model", {"version": number},
                     tmp_path / "throttled.log")

    log = result.log_path.read_text()
    assert result.succeeded, log[-3000:]
    assert proxy.throttled == {"UpdateEndpoint": 0}
    assert proxy.seen.count("UpdateEndpoint") == 1  # the retry's one, after 5 throttled
    assert "AWS throttled the request (ThrottlingException)); endpoint restored" in log
    assert "transient" in log and "Retry policy decision" in log
    assert bench.serving_package() == arn
    bench.serves_fully()
    assert bench.version(number)["ModelApprovalStatus"] == "Approved"
    assert task_instance_field("deploy_approved_model", result.run_id, "try_number") == 2
