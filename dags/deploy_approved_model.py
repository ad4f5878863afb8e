"""Deploy (or roll back to) an Approved model version on the serverless endpoint.

Trigger by hand: no version deploys the latest Approved version; a version number rolls back
(or forward) to that version. Same wait, smoke check and restore-on-failure as mlops_pipeline,
and the same one-slot pool, so two deployments never overlap.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, task
from sagemaker_mlops import tasks
from sagemaker_mlops.alerts import failure_notifier
from sagemaker_mlops.operators import ServerlessDeployOperator
from sagemaker_mlops.params import deploy_params
from sagemaker_mlops.settings import parse_time_settings, runtime_settings

SETTINGS = parse_time_settings()

with DAG(
    dag_id="deploy_approved_model",
    description="Deploy the latest or a chosen Approved model version to the serverless endpoint",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    params=deploy_params(),
    default_args={
        "retries": 0,
        "retry_delay": timedelta(seconds=30),
        "on_failure_callback": [failure_notifier(SETTINGS)],
    },
    tags=["mlops", "sagemaker", "deploy"],
    doc_md=__doc__,
) as dag:

    @task(multiple_outputs=True)
    def resolve_version(params=None) -> dict:
        return tasks.resolve_version(params["version"], runtime_settings(), SETTINGS.aws_conn_id)

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
