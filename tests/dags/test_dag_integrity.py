"""The DAG files import cleanly and every pipeline spec's DAG is wired as the design says (no
scheduler, no DB); an invalid spec is an import error naming its file and field, and only that."""

from __future__ import annotations

import subprocess
import sys
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
from sagemaker_mlops.plan import RunPlan
from sagemaker_mlops.specs import load_specs

DAGS = Path(__file__).resolve().parents[2] / "dags"
SPECS, _ = load_specs()
PIPELINES = {spec.dag_id: spec for spec in SPECS}

PIPELINE_ORDER = [
    "validate_params", "stage_code", "preprocess", "data_checks", "train", "find_champion", "evaluate",
    "quality_gate",
]
PROVIDER_OPERATOR = {
    "preprocess": SageMakerProcessingOperator,
    "train": SageMakerTrainingOperator,
    "evaluate": SageMakerProcessingOperator,
    "register_model": SageMakerRegisterModelVersionOperator,
    "deploy_serverless": SageMakerEndpointOperator,
    "retrain_alert": SnsPublishOperator,
    "data_check_alert": SnsPublishOperator,
}


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    return DagBag(dag_folder=str(DAGS))


def test_dag_files_import_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == {"mlops_pipeline", "breast_cancer", "deploy_approved_model"}


def test_the_shipped_specs():
    assert {s.name: (s.dag_id, s.model_package_group, s.endpoint_name, s.s3_prefix) for s in SPECS} == {
        "california_housing": ("mlops_pipeline", "california-housing", "california-housing",
                               "california-housing"),
        "breast_cancer": ("breast_cancer", "breast-cancer", "breast-cancer", "breast-cancer"),
    }
    for spec in SPECS:
        assert spec.sample_data is not None and spec.sample_data.is_file()


@pytest.mark.parametrize("dag_id", sorted(PIPELINES))
def test_pipeline_tasks_run_in_the_designed_order(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    assert set(dag.task_ids) == {
        *PIPELINE_ORDER, "register_model", "approve_model", "deploy_serverless", "retrain_alert",
        "data_check_alert",
    }
    for upstream, downstream in zip(PIPELINE_ORDER, PIPELINE_ORDER[1:], strict=False):
        assert upstream in dag.get_task(downstream).get_flat_relative_ids(upstream=True), (
            f"{upstream} must run before {downstream}"
        )
    # deploy reads register_model's version ARN, and waits for the approval (or its skip)
    assert dag.get_task("register_model").downstream_task_ids == {"approve_model", "deploy_serverless"}
    assert dag.get_task("approve_model").downstream_task_ids == {"deploy_serverless"}
    assert dag.get_task("deploy_serverless").trigger_rule == "none_failed_min_one_success"
    assert not dag.get_task("deploy_serverless").downstream_task_ids
    assert not dag.get_task("retrain_alert").downstream_task_ids


@pytest.mark.parametrize("dag_id", sorted(PIPELINES))
def test_data_checks_branch_to_training_or_their_alert_without_retries(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    checks = dag.get_task("data_checks")
    assert isinstance(checks, BranchPythonOperator) and checks.retries == 0
    assert checks.downstream_task_ids == {"train", "data_check_alert"}
    assert not dag.get_task("data_check_alert").downstream_task_ids


@pytest.mark.parametrize("dag_id", sorted(PIPELINES))
def test_quality_gate_branches_to_register_or_alert(dagbag, dag_id):
    gate = dagbag.dags[dag_id].get_task("quality_gate")
    assert isinstance(gate, BranchPythonOperator)
    assert gate.downstream_task_ids == {"register_model", "retrain_alert"}


@pytest.mark.parametrize("dag_id", sorted(PIPELINES))
@pytest.mark.parametrize(("task_id", "operator"), PROVIDER_OPERATOR.items())
def test_every_aws_task_uses_a_provider_operator(dagbag, dag_id, task_id, operator):
    assert isinstance(dagbag.dags[dag_id].get_task(task_id), operator)


@pytest.mark.parametrize("dag_id", sorted(PIPELINES))
def test_wiring_reads_only_fields_of_the_typed_plan(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    wired = set()
    for task in dag.tasks:
        for name in task.template_fields:
            value = getattr(task, name, None)
            for arg in value.values() if isinstance(value, dict) else [value]:
                operator = getattr(arg, "operator", None)
                if getattr(operator, "task_id", None) == "validate_params" and getattr(arg, "key", None):
                    wired.add(arg.key)
    assert wired and wired - {"return_value"} <= RunPlan.keys()  # return_value: the whole plan
    register = dag.get_task("register_model")
    assert (register.model_url.key, register.training_job.key) == (
        "candidate_model_artifact", "candidate_training_job"
    )


@pytest.mark.parametrize("dag_id", sorted(PIPELINES))
def test_sagemaker_waits_are_deferrable_and_poll_from_settings(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    for task_id in ("preprocess", "train", "evaluate", "deploy_serverless"):
        task = dag.get_task(task_id)
        assert task.deferrable is True
        assert task.check_interval == 30  # the documented default of MLOPS_POLL_SECONDS


@pytest.mark.parametrize("dag_id", sorted(PIPELINES))
def test_pipeline_scheduling_policy(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    assert dag.schedule == PIPELINES[dag_id].schedule == "@weekly"
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    assert dag.default_args["retries"] == 3
    assert dag.default_args["retry_delay"] == timedelta(seconds=30)  # MLOPS_RETRY_DELAY_SECONDS
    assert dag.default_args["retry_exponential_backoff"] == 2.0
    # transient failures retry, deterministic ones fail at once (sagemaker_mlops.retry)
    assert type(dag.default_args["retry_policy"]).__name__ == "PipelineRetryPolicy"
    notifiers = dag.default_args["on_failure_callback"]
    assert any(isinstance(n, SnsNotifier) for n in notifiers)


@pytest.mark.parametrize("dag_id", sorted(PIPELINES))
def test_trigger_form_shows_every_run_choice_with_the_specs_defaults(dagbag, dag_id):
    params = dagbag.dags[dag_id].params
    assert set(params.keys()) == {
        "problem_type", "target", "model", "hyperparameters", "raw_data_uri", "thresholds",
        "champion_margin", "decision_basis", "leakage_tripwire", "approval_mode", "approval_timeout_hours",
        "serverless_memory_mb", "serverless_max_concurrency", "drop_columns",
        "categorical_columns", "numeric_columns", "positive_class", "feature_recipes",
        "data_checks", "drift_psi_max", "target_psi_max", "missing_rate_increase_max",
        "missing_rate_max", "slice_columns", "slice_min_rows", "slice_min_metric",
        "slice_max_regression",
    }
    for name, value in PIPELINES[dag_id].params.items():
        assert params[name] == value


@pytest.mark.parametrize("dag_id", sorted(PIPELINES))
def test_register_model_emits_the_model_package_group_asset(dagbag, dag_id):
    outlets = dagbag.dags[dag_id].get_task("register_model").outlets
    group = PIPELINES[dag_id].model_package_group
    assert [a.name for a in outlets] == [f"sagemaker/model-package-group/{group}"]


def test_deployments_share_a_one_slot_pool_and_never_overlap(dagbag):
    for dag_id in (*PIPELINES, "deploy_approved_model"):
        dag = dagbag.dags[dag_id]
        assert dag.get_task("deploy_serverless").pool == "deploy_serverless"
        assert dag.max_active_runs == 1


def test_deployments_retry_transient_failures_and_approval_never_asks_twice(dagbag):
    for dag_id in (*PIPELINES, "deploy_approved_model"):
        deploy_task = dagbag.dags[dag_id].get_task("deploy_serverless")
        assert deploy_task.retries == 3  # re-run safe: the retry finishes or restores the change
        assert type(deploy_task.retry_policy).__name__ == "PipelineRetryPolicy"
    for dag_id in PIPELINES:
        assert dagbag.dags[dag_id].get_task("approve_model").retries == 0


def test_deploy_dag_is_manual(dagbag):
    dag = dagbag.dags["deploy_approved_model"]
    assert dag.schedule is None
    assert set(dag.task_ids) == {"resolve_version", "deploy_serverless"}
    assert dag.get_task("resolve_version").downstream_task_ids == {"deploy_serverless"}
    assert isinstance(dag.get_task("deploy_serverless"), SageMakerEndpointOperator)
    assert set(dag.params.keys()) == {
        "pipeline", "version", "serverless_memory_mb", "serverless_max_concurrency"
    }
    assert dag.params.get_param("pipeline").schema["enum"] == sorted(s.name for s in SPECS)
    assert dag.params["pipeline"] == "california_housing"


def test_no_cycles(dagbag):
    for dag in dagbag.dags.values():
        dag.check_cycle()


INVALID_SPEC = """\
model_package_group: broken
endpoint_name: broken
s3_prefix: broken
params:
  problem_type: regression
  target: y
  model: ridge
  hyperparameters: {alpha: abc}
"""
CHECK = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
print(json.dumps({"errors": bag.import_errors, "dag_ids": sorted(bag.dag_ids)}))
"""


def parse_with_extra_specs(folder: Path) -> dict:
    """Parse the DAGs folder in a fresh interpreter with MLOPS_PIPELINES_DIR set (as a worker)."""
    import json
    import os

    env = {**os.environ, "MLOPS_PIPELINES_DIR": str(folder)}
    result = subprocess.run([sys.executable, "-c", CHECK, str(DAGS)], env=env, capture_output=True,
                            text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_an_invalid_spec_is_an_import_error_naming_file_and_field_and_the_rest_load(tmp_path):
    (tmp_path / "broken.yaml").write_text(INVALID_SPEC)
    (tmp_path / "fine.yaml").write_text(
        INVALID_SPEC.replace("broken", "fine").replace("{alpha: abc}", "{alpha: 0.5}")
    )
    parsed = parse_with_extra_specs(tmp_path)
    assert list(parsed["errors"]) == ["pipeline_specs.py"] or all(
        path.endswith("pipeline_specs.py") for path in parsed["errors"]
    )
    message = next(iter(parsed["errors"].values()))
    assert f"{tmp_path / 'broken.yaml'}: field 'params.hyperparameters.alpha': 'abc' is not of type" in message
    assert parsed["dag_ids"] == [
        "breast_cancer", "deploy_approved_model", "fine", "mlops_pipeline"
    ]


def test_a_spec_that_reuses_another_pipelines_endpoint_is_refused(tmp_path):
    (tmp_path / "copycat.yaml").write_text(
        INVALID_SPEC.replace("endpoint_name: broken", "endpoint_name: breast-cancer")
        .replace("{alpha: abc}", "{}")
    )
    parsed = parse_with_extra_specs(tmp_path)
    message = next(iter(parsed["errors"].values()))
    assert "copycat.yaml: field 'endpoint_name': 'breast-cancer' is already used by " \
        "dags/pipelines/breast_cancer.yaml" in message
    assert "copycat" not in parsed["dag_ids"]


@pytest.mark.parametrize("dag_id", sorted(PIPELINES))
def test_evaluate_and_quality_gate_link_the_report_after_serialization(dagbag, dag_id):
    from airflow.serialization.serialized_objects import DagSerialization

    # what the api-server sees: only each link's name and XCom key survive serialization
    dag = DagSerialization.from_dict(DagSerialization.to_dict(dagbag.dags[dag_id]))
    linked = {t.task_id for t in dag.tasks if "Evaluation report" in t.extra_links}
    assert linked == {"evaluate", "quality_gate"}
