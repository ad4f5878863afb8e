"""Quality-gated training on SageMaker: one DAG per pipeline spec (dags/pipelines/*.yaml).

validate_params → stage_code → preprocess → data_checks → train → find_champion → evaluate → quality_gate
  ├─▶ register_model → approve_model → deploy_serverless
  └─▶ retrain_alert
approve_model asks a human in the UI when the run's approval_mode is manual, else it skips.
data_checks skips training and sends data_check_alert when the new data fails its checks.
Logic lives in plugins/sagemaker_mlops; this file only wires it. Invalid specs are skipped
here and reported as an import error of dags/pipeline_specs.py, so they never take the other
pipelines down with them.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from airflow.providers.amazon.aws.operators.sns import SnsPublishOperator
from airflow.sdk import DAG, Asset, TriggerRule, chain, task
from sagemaker_mlops import tasks
from sagemaker_mlops.alerts import failure_notifier
from sagemaker_mlops.approval import ModelApprovalOperator
from sagemaker_mlops.deploy_operator import ServerlessDeployOperator
from sagemaker_mlops.job_configs import MAX_RUNTIME_SECONDS
from sagemaker_mlops.links import EvaluateOperator, QualityGateOperator
from sagemaker_mlops.params import pipeline_params
from sagemaker_mlops.register_operator import RegisterModelVersionOperator
from sagemaker_mlops.retry import retry_args
from sagemaker_mlops.sagemaker_jobs import ResumableProcessingOperator, ResumableTrainingOperator
from sagemaker_mlops.settings import parse_time_settings
from sagemaker_mlops.specs import PipelineSpec, load_specs, spec_dirs

SETTINGS = parse_time_settings()
CONN = SETTINGS.aws_conn_id
WAIT = {
    "aws_conn_id": CONN,
    "check_interval": SETTINGS.poll_seconds,
    "deferrable": SETTINGS.deferrable,
}
# a deferred wait must outlast the job's MaxRuntimeInSeconds (the provider stops after 60 polls)
JOB_WAIT = {**WAIT, "max_attempts": int(2 * MAX_RUNTIME_SECONDS / SETTINGS.poll_seconds) + 1}


def pipeline_dag(spec: PipelineSpec) -> DAG:
    # "x-": a scheme no provider registers; Airflow then skips looking for a URI normalizer,
    # which would import every provider's asset module (~35 ms of each parse of this file).
    group_asset = Asset(
        name=f"sagemaker/model-package-group/{spec.model_package_group}",
        uri=f"x-sagemaker://model-package-group/{spec.model_package_group}",
    )
    with DAG(
        dag_id=spec.dag_id,
        description=spec.description
        or "Train, evaluate against the champion, gate, register and deploy serverless",
        schedule=SETTINGS.schedule_for(spec.schedule),
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        params=pipeline_params(spec.params),
        default_args={
            **retry_args(SETTINGS.retry_delay_seconds),  # transient failures back off and retry, deterministic ones fail now
            "on_failure_callback": [failure_notifier(SETTINGS)],
        },
        tags=["mlops", "sagemaker", "quality-gate", *spec.tags],
        doc_md=f"{__doc__}\n\nPipeline spec: `{spec.name}` (group `{spec.model_package_group}`, "
        f"endpoint `{spec.endpoint_name}`, S3 prefix `{spec.s3_prefix}`).",
    ) as dag:

        @task(multiple_outputs=True)
        def validate_params(params=None, run_id=None) -> dict:
            return tasks.validate_params(params, run_id, spec)

        @task(multiple_outputs=True)
        def stage_code(plan: dict) -> dict:
            return tasks.stage_code(plan, CONN)

        @task(multiple_outputs=True)
        def find_champion(plan: dict, training: dict) -> dict:
            return tasks.find_champion(plan, training, CONN)

        @task.branch(retries=0)  # a failed check is deterministic: nothing to retry
        def data_checks(plan: dict, ti=None, dag=None) -> str:
            return tasks.data_checks(plan, CONN, ti, dag)

        plan = validate_params()
        staged = stage_code(plan)
        # resumable: a retried or cleared task attaches to / reuses its run's job
        preprocess = ResumableProcessingOperator(
            task_id="preprocess", config=plan["preprocess_config"], **JOB_WAIT
        )
        train = ResumableTrainingOperator(
            task_id="train", config=plan["train_config"], **JOB_WAIT
        )
        checked = data_checks(plan)
        data_check_alert = SnsPublishOperator(
            task_id="data_check_alert",
            target_arn=plan["alert_topic_arn"],
            subject=checked["alert_subject"],
            message=checked["alert_message"],
            aws_conn_id=CONN,
        )
        lookup = find_champion(plan, train.output)
        evaluate = EvaluateOperator(
            task_id="evaluate", config=lookup["evaluate_config"], **JOB_WAIT
        )
        quality_gate = QualityGateOperator(
            task_id="quality_gate",
            python_callable=tasks.quality_gate,
            op_kwargs={"plan": plan, "champion": lookup["champion"], "aws_conn_id": CONN},
        )
        register_model = RegisterModelVersionOperator(
            task_id="register_model",
            image_uri=plan["image_uri"],
            model_url=lookup["candidate_model_artifact"],
            package_group_name=plan["model_package_group"],
            package_desc=f"Models of the {spec.name} pipeline ({spec.dag_id})",
            model_approval=plan["approval_status"],
            run_plan=plan,
            training_job=lookup["candidate_training_job"],
            verdict=quality_gate.output["verdict"],
            code_sha256=staged["code_sha256"],
            aws_conn_id=CONN,
            outlets=[group_asset],
        )
        approve_model = ModelApprovalOperator(
            task_id="approve_model",
            model_package_arn=register_model.output,
            run_plan=plan,
            aws_conn_id=CONN,
            retries=0,
        )
        deploy_serverless = ServerlessDeployOperator(
            task_id="deploy_serverless",
            # runs after an approval, or when approve_model skipped itself (approval_mode auto)
            trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS,
            model_package_arn=register_model.output,
            endpoint_name=plan["endpoint_name"],
            role_arn=plan["role_arn"],
            memory_mb=plan["serverless_memory_mb"],
            max_concurrency=plan["serverless_max_concurrency"],
            pool=SETTINGS.deploy_pool,  # re-run safe: a retry finishes or restores the change
            **WAIT,
        )
        retrain_alert = SnsPublishOperator(
            task_id="retrain_alert",
            target_arn=plan["alert_topic_arn"],
            subject=quality_gate.output["alert_subject"],
            message=quality_gate.output["alert_message"],
            aws_conn_id=CONN,
        )

        chain(plan, staged, preprocess, checked, train, lookup, evaluate, quality_gate)
        checked >> data_check_alert
        quality_gate >> [register_model, retrain_alert]
        register_model >> approve_model >> deploy_serverless
    return dag


# invalid specs are skipped here and reported by dags/pipeline_specs.py
SPECS, _INVALID = load_specs(spec_dirs(base=Path(__file__).parent / "pipelines"))
for _spec in SPECS:
    pipeline_dag(_spec)
