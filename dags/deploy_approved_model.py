"""Deploy (or roll back to) an Approved model version of any pipeline on its serverless endpoint.

Trigger by hand and choose the pipeline (one per spec in dags/pipelines/): no version deploys
its latest Approved version; a version number rolls back (or forward) to that version. Same
wait, smoke check and restore-on-failure as the pipeline DAGs, and the same one-slot pool, so
two deployments never overlap.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from airflow.sdk import DAG, task
from sagemaker_mlops import tasks
from sagemaker_mlops.alerts import failure_notifier
from sagemaker_mlops.deploy_operator import ServerlessDeployOperator
from sagemaker_mlops.params import deploy_params
from sagemaker_mlops.retry import retry_args
from sagemaker_mlops.settings import parse_time_settings
from sagemaker_mlops.specs import load_specs, spec_dirs

SETTINGS = parse_time_settings()
# invalid specs are skipped here and reported by dags/pipeline_specs.py
SPECS, _ = load_specs(spec_dirs(base=Path(__file__).parent / "pipelines"))
TARGETS = {
    s.name: {"model_package_group": s.model_package_group, "endpoint_name": s.endpoint_name}
    for s in SPECS
}
DEFAULT_PIPELINE = "california_housing" if "california_housing" in TARGETS else min(TARGETS, default="")

with DAG(
    dag_id="deploy_approved_model",
    description="Deploy the latest or a chosen Approved model version of a pipeline",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    params=deploy_params(list(TARGETS), DEFAULT_PIPELINE),
    default_args={
        **retry_args(SETTINGS.retry_delay_seconds),  # a transient AWS error retries the deploy
        "on_failure_callback": [failure_notifier(SETTINGS)],
    },
    tags=["mlops", "sagemaker", "deploy"],
    doc_md=__doc__,
) as dag:

    @task(multiple_outputs=True)
    def resolve_version(params=None) -> dict:
        return tasks.resolve_version(
            params["pipeline"], params["version"], TARGETS, SETTINGS.aws_conn_id
        )

    target = resolve_version()
    ServerlessDeployOperator(
        task_id="deploy_serverless",
        model_package_arn=target["model_package_arn"],
        endpoint_name=target["endpoint_name"],
        role_arn=target["role_arn"],
        memory_mb="{{ params.serverless_memory_mb }}",
        max_concurrency="{{ params.serverless_max_concurrency }}",
        pool=SETTINGS.deploy_pool,
        aws_conn_id=SETTINGS.aws_conn_id,
        check_interval=SETTINGS.poll_seconds,
        deferrable=SETTINGS.deferrable,
    )
