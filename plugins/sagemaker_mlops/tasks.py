"""Bodies of the pipeline's Python tasks; the DAG files only wire them.

``build_plan`` is pure (settings + params + run id -> every name, URI and job request of the
run), so one run uses one consistent set of settings even if a Variable changes mid-run.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from sagemaker_mlops import alerts, job_configs, registry
from sagemaker_mlops.gate import GatePolicy, decide, render_table, summary_line
from sagemaker_mlops.params import RunOptions, parse_run_options
from sagemaker_mlops.settings import Settings

log = logging.getLogger(__name__)

REGISTER_TASK = "register_model"
ALERT_TASK = "retrain_alert"
CODE_SUFFIXES = (".py", ".txt")


def build_plan(params: dict[str, Any], run_id: str, settings: Settings) -> dict[str, Any]:
    """Everything a run needs, resolved once: names, S3 layout, job requests, gate policy."""
    options: RunOptions = parse_run_options(params)
    layout = job_configs.RunLayout(settings.bucket, settings.prefix, run_id)
    raw_uri = options.raw_data_uri or layout.default_raw_uri
    image_uri = settings.image_uri
    common = {"image_uri": image_uri, "role_arn": settings.role_arn}
    return {
        "run_id": run_id,
        "region": settings.region,
        "bucket": settings.bucket,
        "prefix": settings.prefix,
        "role_arn": settings.role_arn,
        "image_uri": image_uri,
        "model_package_group": settings.model_package_group,
        "endpoint_name": settings.endpoint_name,
        "alert_topic_arn": settings.topic_arn,
        "training_code_dir": settings.training_code_dir,
        "processing_instance_type": settings.processing_instance_type,
        "problem_type": options.problem_type,
        "target": options.target,
        "approval_status": options.approval_status,
        "serverless_memory_mb": options.serverless_memory_mb,
        "serverless_max_concurrency": options.serverless_max_concurrency,
        "gate": options.gate.to_dict(),
        "raw_data_uri": raw_uri,
        "layout": {
            "run_uri": layout.run_uri,
            "scripts_uri": layout.scripts_uri,
            "sourcedir_uri": layout.sourcedir_uri,
            "profile_json_uri": layout.profile_json_uri,
            "evaluation_uri": layout.evaluation_uri,
            "evaluation_json_uri": layout.evaluation_json_uri,
            "verdict_json_uri": layout.verdict_json_uri,
        },
        "evaluate_job_name": job_configs.job_name("evaluate", run_id),
        "preprocess_config": job_configs.preprocess_config(
            name=job_configs.job_name("preprocess", run_id), layout=layout, raw_uri=raw_uri,
            problem_type=options.problem_type, target=options.target,
            instance_type=settings.processing_instance_type, **common,
        ),
        "train_config": job_configs.training_config(
            name=job_configs.job_name("train", run_id), layout=layout,
            problem_type=options.problem_type, target=options.target, model=options.model,
            hyperparameters=options.hyperparameters, region=settings.region,
            instance_type=settings.training_instance_type, **common,
        ),
    }


def validate_params(params: dict[str, Any], run_id: str) -> dict[str, Any]:
    """First task of a run: reject bad parameter combinations before any job starts."""
    from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook
    from airflow.providers.common.compat.sdk import AirflowFailException

    from sagemaker_mlops.params import ParamsError
    from sagemaker_mlops.settings import runtime_settings

    settings = runtime_settings()
    try:
        plan = build_plan(dict(params), run_id, settings)
        champion = registry.find_champion(
            SageMakerHook(aws_conn_id=settings.aws_conn_id).conn, settings.model_package_group
        )
        registry.check_same_task(champion, plan["problem_type"], plan["target"])
    except (ParamsError, registry.RegistryError) as exc:
        raise AirflowFailException(f"invalid run parameters: {exc}") from None
    log.info(
        "Run %s: %s %s on %s (target %s); gate %s",
        run_id, plan["problem_type"], plan["train_config"]["HyperParameters"]["model"],
        plan["raw_data_uri"], plan["target"], plan["gate"],
    )
    return plan


def code_files(code_dir: Path) -> list[Path]:
    """The training code to ship: sources beside the scripts, no caches."""
    if not (code_dir / "train.py").is_file():
        raise FileNotFoundError(
            f"training code not found: {code_dir}/train.py (set MLOPS_TRAINING_CODE_DIR)"
        )
    return sorted(
        p for p in code_dir.rglob("*")
        if p.is_file() and p.suffix in CODE_SUFFIXES and "__pycache__" not in p.parts
    )


def code_sha256(code_dir: Path, files: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(code_dir).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def stage_code(plan: dict[str, Any], aws_conn_id: str) -> dict[str, Any]:
    """Upload the scripts (for Processing) and sourcedir.tar.gz (for training and serving)."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook
    from airflow.providers.common.compat.sdk import AirflowFailException

    s3 = S3Hook(aws_conn_id=aws_conn_id)
    raw_bucket, raw_prefix = job_configs.split_s3_uri(plan["raw_data_uri"])
    raw_keys = [
        k for k in s3.list_keys(bucket_name=raw_bucket, prefix=raw_prefix)
        if k.endswith((".csv", ".csv.gz"))
    ]
    if not raw_keys:
        raise AirflowFailException(
            f"no raw data: {plan['raw_data_uri']} holds no *.csv or *.csv.gz files"
        )
    code_dir = Path(plan["training_code_dir"])
    files = code_files(code_dir)
    bucket, scripts_prefix = job_configs.split_s3_uri(plan["layout"]["scripts_uri"])
    for path in files:
        s3.load_file(
            str(path), scripts_prefix + path.relative_to(code_dir).as_posix(), bucket, replace=True
        )
    _, sourcedir_key = job_configs.split_s3_uri(plan["layout"]["sourcedir_uri"])
    SageMakerHook(aws_conn_id=aws_conn_id).tar_and_s3_upload(str(code_dir), sourcedir_key, bucket)
    fingerprint = code_sha256(code_dir, files)
    log.info(
        "Staged %d code files (sha256 %s) and found %d raw data files under %s",
        len(files), fingerprint, len(raw_keys), plan["raw_data_uri"],
    )
    return {"code_sha256": fingerprint, "raw_files": len(raw_keys)}


def find_champion(plan: dict[str, Any], training: dict[str, Any], aws_conn_id: str) -> dict[str, Any]:
    """Look up the champion and prepare the evaluation job that scores it beside the candidate."""
    from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook

    job = training["Training"]
    model_artifact = job["ModelArtifacts"]["S3ModelArtifacts"]
    champion = registry.find_champion(
        SageMakerHook(aws_conn_id=aws_conn_id).conn, plan["model_package_group"]
    )
    if champion is None:
        log.info("No Approved version in %s: the candidate faces absolute thresholds only",
                 plan["model_package_group"])
    else:
        log.info("Champion: version %s (%s), model %s", champion.version, champion.arn,
                 champion.model_data_url)
    layout = job_configs.RunLayout(plan["bucket"], plan["prefix"], plan["run_id"])
    evaluate = job_configs.evaluate_config(
        name=plan["evaluate_job_name"], layout=layout, model_artifact=model_artifact,
        champion_artifact=champion.model_data_url if champion else None,
        image_uri=plan["image_uri"], role_arn=plan["role_arn"],
        instance_type=plan["processing_instance_type"],
    )
    return {
        "champion": champion.to_dict() if champion else None,
        "model_artifact": model_artifact,
        "training_job": job["TrainingJobName"],
        "evaluate_config": evaluate,
    }


def quality_gate(
    plan: dict[str, Any], champion: dict[str, Any] | None, aws_conn_id: str, ti: Any, dag: Any
) -> str:
    """Decide, record the verdict (S3, XCom, log) and return the branch to follow."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from sagemaker_mlops.s3io import read_json

    s3 = S3Hook(aws_conn_id=aws_conn_id)
    layout = plan["layout"]
    evaluation = read_json(s3, layout["evaluation_json_uri"])
    verdict = decide(
        evaluation, GatePolicy.from_dict(plan["gate"]), champion_expected=champion is not None
    )
    table = render_table(verdict)
    log.info("%s\n%s", summary_line(verdict), table)
    for note in verdict.notes + verdict.reasons:
        log.info("%s", note)
    bucket, key = job_configs.split_s3_uri(layout["verdict_json_uri"])
    s3.load_string(json.dumps(verdict.to_dict(), indent=2), key, bucket, replace=True)
    ti.xcom_push(key="verdict", value=verdict.to_dict())
    ti.xcom_push(key="verdict_table", value=table)
    if verdict.passed:
        return REGISTER_TASK
    subject, message = alerts.retrain_alert(
        verdict, dag_id=dag.dag_id, run_id=plan["run_id"],
        model_package_group=plan["model_package_group"],
        evaluation_uri=layout["evaluation_json_uri"],
    )
    ti.xcom_push(key="alert_subject", value=subject)
    ti.xcom_push(key="alert_message", value=message)
    return ALERT_TASK


def resolve_version(
    version: int | None, settings: Settings, aws_conn_id: str
) -> dict[str, Any]:
    """The Approved version ``deploy_approved_model`` deploys (latest, or a chosen number)."""
    from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook

    chosen = registry.find_version(
        SageMakerHook(aws_conn_id=aws_conn_id).conn, settings.model_package_group, version
    )
    log.info("Deploying version %s of %s (%s)", chosen.version, settings.model_package_group,
             chosen.arn)
    return {
        "model_package_arn": chosen.arn,
        "version": chosen.version,
        "endpoint_name": settings.endpoint_name,
        "role_arn": settings.role_arn,
    }

