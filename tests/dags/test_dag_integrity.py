"""The DAG files import cleanly and are wired as the design says (no scheduler, no DB)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.providers.amazon.aws.notifications.sns import SnsNotifier
from airflow.providers.amazon.aws.operators.sagemaker import (
    SageMakerEndpointOperator,
    SageMakerProcessingOperator,
    SageMakerRegisterModelVersionOperator,
    SageMakerTrainingOperator,
)
from airflow.providers.amazon.aws.operators.sns import SnsPublishOperator
from airflow.providers.standard.operators.python import BranchPythonOperator

DAGS = Path(__file__).resolve().parents[2] / "dags"

PIPELINE_ORDER = [
    "validate_params", "stage_code", "preprocess", "train", "find_champion", "evaluate",
    "quality_gate",
]
PROVIDER_OPERATOR = {
    "preprocess": SageMakerProcessingOperator,
    "train": SageMakerTrainingOperator,
    "evaluate": SageMakerProcessingOperator,
    "register_model": SageMakerRegisterModelVersionOperator,
    "deploy_serverless": SageMakerEndpointOperator,
    "retrain_alert": SnsPublishOperator,
}


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    return DagBag(dag_folder=str(DAGS))


def test_dag_files_import_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == {"mlops_pipeline", "deploy_approved_model"}


def test_pipeline_tasks_run_in_the_designed_order(dagbag):
    dag = dagbag.dags["mlops_pipeline"]
    assert set(dag.task_ids) == {*PIPELINE_ORDER, "register_model", "deploy_serverless", "retrain_alert"}
    for upstream, downstream in zip(PIPELINE_ORDER, PIPELINE_ORDER[1:], strict=False):
        assert upstream in dag.get_task(downstream).get_flat_relative_ids(upstream=True), (
            f"{upstream} must run before {downstream}"
        )
    assert dag.get_task("register_model").downstream_task_ids == {"deploy_serverless"}
    assert not dag.get_task("deploy_serverless").downstream_task_ids
    assert not dag.get_task("retrain_alert").downstream_task_ids


def test_quality_gate_branches_to_register_or_alert(dagbag):
    gate = dagbag.dags["mlops_pipeline"].get_task("quality_gate")
    assert isinstance(gate, BranchPythonOperator)
    assert gate.downstream_task_ids == {"register_model", "retrain_alert"}


@pytest.mark.parametrize(("task_id", "operator"), PROVIDER_OPERATOR.items())
def test_every_aws_task_uses_a_provider_operator(dagbag, task_id, operator):
    assert isinstance(dagbag.dags["mlops_pipeline"].get_task(task_id), operator)


def test_sagemaker_waits_are_deferrable_and_poll_from_settings(dagbag):
    dag = dagbag.dags["mlops_pipeline"]
    for task_id in ("preprocess", "train", "evaluate", "deploy_serverless"):
        task = dag.get_task(task_id)
        assert task.deferrable is True
        assert task.check_interval == 30  # the documented default of MLOPS_POLL_SECONDS


def test_pipeline_scheduling_policy(dagbag):
    dag = dagbag.dags["mlops_pipeline"]
    assert dag.schedule == "@weekly"
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    assert dag.default_args["retries"] == 1
    assert dag.default_args["retry_delay"] == timedelta(seconds=30)
    notifiers = dag.default_args["on_failure_callback"]
    assert any(isinstance(n, SnsNotifier) for n in notifiers)


def test_trigger_form_shows_every_run_choice(dagbag):
    params = dagbag.dags["mlops_pipeline"].params
    assert set(params.keys()) == {
        "problem_type", "target", "model", "hyperparameters", "raw_data_uri", "thresholds",
        "champion_margin", "decision_basis", "leakage_tripwire", "approval_mode",
        "serverless_memory_mb", "serverless_max_concurrency",
    }


def test_register_model_emits_the_model_package_group_asset(dagbag):
    outlets = dagbag.dags["mlops_pipeline"].get_task("register_model").outlets
    assert [a.name for a in outlets] == ["sagemaker/model-package-group/california-housing"]


def test_deployments_share_a_one_slot_pool_and_never_overlap(dagbag):
    for dag_id in ("mlops_pipeline", "deploy_approved_model"):
        dag = dagbag.dags[dag_id]
        assert dag.get_task("deploy_serverless").pool == "deploy_serverless"
        assert dag.max_active_runs == 1


def test_deploy_dag_is_manual(dagbag):
    dag = dagbag.dags["deploy_approved_model"]
    assert dag.schedule is None
    assert set(dag.task_ids) == {"resolve_version", "deploy_serverless"}
    assert dag.get_task("resolve_version").downstream_task_ids == {"deploy_serverless"}
    assert isinstance(dag.get_task("deploy_serverless"), SageMakerEndpointOperator)
    assert set(dag.params.keys()) == {"version", "serverless_memory_mb", "serverless_max_concurrency"}


def test_no_cycles(dagbag):
    for dag in dagbag.dags.values():
        dag.check_cycle()
