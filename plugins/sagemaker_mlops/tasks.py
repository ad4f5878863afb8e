"""Bodies of the pipeline's Python tasks; the DAG files only wire them.

The run plan (``plan.RunPlan``) is built by the first task and travels as XCom; every later task
reads it back with ``RunPlan.from_xcom``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sagemaker_mlops import alerts, job_configs, naming, registry
from sagemaker_mlops.gate import decide
from sagemaker_mlops.plan import PipelineIdentity, RunPlan, build_plan
from sagemaker_mlops.verdict import render_table, summary_line

log = logging.getLogger(__name__)

REGISTER_TASK = "register_model"
ALERT_TASK = "retrain_alert"
TRAIN_TASK = "train"
DATA_CHECK_ALERT_TASK = "data_check_alert"
# Python sources only: a requirements.txt would be pip-installed by the training toolkit and the
# serving container at every job and cold start (and never by Processing), so none is shipped
CODE_SUFFIXES = (".py",)


def validate_params(
    params: Mapping[str, Any], run_id: str, pipeline: PipelineIdentity
) -> dict[str, Any]:
    """First task of a run: reject bad parameter combinations before any job starts."""
    from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook
    from airflow.providers.common.compat.sdk import AirflowFailException

    from sagemaker_mlops.run_options import ParamsError
    from sagemaker_mlops.settings import runtime_settings

    settings = runtime_settings()
    try:
        champion = registry.find_champion(
            SageMakerHook(aws_conn_id=settings.aws_conn_id).conn, pipeline.model_package_group
        )
        baseline = baseline_profile(champion, settings.aws_conn_id)
        plan = build_plan(dict(params), run_id, settings, pipeline, baseline_profile_uri=baseline)
        registry.check_same_task(champion, plan.problem_type, plan.target)
    except (ParamsError, registry.RegistryError) as exc:
        raise AirflowFailException(f"invalid run parameters: {exc}") from None
    log.info(
        "Run %s of %s: %s %s on %s (target %s); gate %s",
        run_id, plan.pipeline, plan.problem_type, plan.model, plan.raw_data_uri, plan.target,
        plan.gate.to_dict(),
    )
    return plan.to_xcom()


def baseline_profile(champion: registry.ModelVersion | None, aws_conn_id: str) -> str | None:
    """The champion's training-data profile.json the data checks compare with, if it exists.

    A champion registered before profiles were recorded has none, and an S3 lifecycle rule may
    have expired an old run's objects; the checks then look at the new data by itself (logged),
    rather than failing every run until a new champion exists.
    """
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    if champion is None:
        return None
    uri = registry.data_profile_uri(champion)
    if uri is None:
        log.warning("Champion version %s has no recorded data profile: the data checks check "
                    "the new data by itself", champion.version)
        return None
    bucket, key = naming.split_s3_uri(uri)
    if not S3Hook(aws_conn_id=aws_conn_id).check_for_key(key, bucket):
        log.warning("Champion version %s's data profile %s no longer exists: the data checks "
                    "check the new data by itself", champion.version, uri)
        return None
    log.info("Data checks compare with champion version %s's training data (%s)",
             champion.version, uri)
    return uri


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


def stage_code(plan_xcom: Mapping[str, Any], aws_conn_id: str) -> dict[str, Any]:
    """Upload the scripts (for Processing) and sourcedir.tar.gz (for training and serving)."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook
    from airflow.providers.common.compat.sdk import AirflowFailException

    plan = RunPlan.from_xcom(plan_xcom)
    s3 = S3Hook(aws_conn_id=aws_conn_id)
    raw_bucket, raw_prefix = naming.split_s3_uri(plan.raw_data_uri)
    raw_keys = [
        k for k in s3.list_keys(bucket_name=raw_bucket, prefix=raw_prefix)
        if k.endswith((".csv", ".csv.gz"))
    ]
    if not raw_keys:
        raise AirflowFailException(
            f"no raw data: {plan.raw_data_uri} holds no *.csv or *.csv.gz files"
        )
    check_slice_columns(s3, plan, raw_bucket, sorted(raw_keys)[0])
    code_dir = Path(plan.training_code_dir)
    files = code_files(code_dir)
    bucket, scripts_prefix = naming.split_s3_uri(plan.layout.scripts_uri)
    for path in files:
        s3.load_file(
            str(path), scripts_prefix + path.relative_to(code_dir).as_posix(), bucket, replace=True
        )
    _, sourcedir_key = naming.split_s3_uri(plan.layout.sourcedir_uri)
    SageMakerHook(aws_conn_id=aws_conn_id).tar_and_s3_upload(str(code_dir), sourcedir_key, bucket)
    fingerprint = code_sha256(code_dir, files)
    log.info(
        "Staged %d code files (sha256 %s) and found %d raw data files under %s",
        len(files), fingerprint, len(raw_keys), plan.raw_data_uri,
    )
    return {"code_sha256": fingerprint, "raw_files": len(raw_keys)}


def data_checks(plan: Mapping[str, Any], aws_conn_id: str, ti: Any, dag: Any) -> str:
    """Read preprocess's data_checks.json and choose: train, or stop with the data-check alert.

    The checks themselves ran inside the preprocess job (include/training/data_checks.py), which
    recorded the result under the run's ``data/profile/``; nothing is computed here. A failed
    check is deterministic, so stopping is a branch (training skipped, the alert sent), not a
    task failure that a retry would repeat. ``data_checks: warn`` trains anyway.
    """
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from sagemaker_mlops.run_note import set_run_note
    from sagemaker_mlops.s3io import read_json

    run = RunPlan.from_xcom(plan)
    result = read_json(S3Hook(aws_conn_id=aws_conn_id), run.layout.data_checks_json_uri)
    log.info("%s\n%s", result["summary"], result["table"])
    for note in result.get("notes", []):
        log.info("%s", note)
    ti.xcom_push(key="data_checks", value={"passed": result["passed"], "summary": result["summary"]})
    if result["passed"]:
        return TRAIN_TASK
    if run.data_checks_mode == "warn":
        log.warning("Data checks failed but data_checks is 'warn': training goes ahead")
        return TRAIN_TASK
    subject, message = alerts.data_check_alert(
        result, dag_id=dag.dag_id, run_id=run.run_id, data_checks_uri=run.layout.data_checks_json_uri,
    )
    ti.xcom_push(key="alert_subject", value=subject)
    ti.xcom_push(key="alert_message", value=message)
    log.info("Training skipped: %s", result["summary"])
    set_run_note(dag.dag_id, run.run_id, f"Training skipped: {result['summary']}")
    return DATA_CHECK_ALERT_TASK


def check_slice_columns(s3: Any, plan: RunPlan, bucket: str, key: str) -> None:
    """Fail before any job when a slice column is not in the raw data (header of one file)."""
    from airflow.providers.common.compat.sdk import AirflowFailException
    from botocore.exceptions import ClientError

    from sagemaker_mlops.slice_options import HEADER_BYTES, csv_header, missing_columns

    if not plan.slice_columns:
        return
    try:
        body = s3.get_conn().get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{HEADER_BYTES - 1}")
        header = csv_header(body["Body"].read(), key)
    except ClientError as exc:  # e.g. raw data in a bucket this identity may list but not read
        log.warning("Could not read the header of s3://%s/%s (%s): slice columns are checked by "
                    "the evaluate job instead", bucket, key, exc.response.get("Error", {}).get("Code"))
        return
    problem = missing_columns(plan.slice_columns, header, f"s3://{bucket}/{key}")
    if problem:
        raise AirflowFailException(f"invalid run parameters: {problem}")


def find_champion(
    plan_xcom: Mapping[str, Any], training: Mapping[str, Any], aws_conn_id: str
) -> dict[str, Any]:
    """Look up the champion and prepare the evaluation job that scores it beside the candidate.

    Returns the champion (or None) and the *candidate's* artifact and training job, named so.
    """
    from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook

    plan = RunPlan.from_xcom(plan_xcom)
    job = training["Training"]
    candidate_artifact = job["ModelArtifacts"]["S3ModelArtifacts"]
    champion = registry.find_champion(
        SageMakerHook(aws_conn_id=aws_conn_id).conn, plan.model_package_group
    )
    if champion is None:
        log.info("No Approved version in %s: the candidate faces absolute thresholds only",
                 plan.model_package_group)
    else:
        log.info("Champion: version %s (%s), model %s", champion.version, champion.arn,
                 champion.model_data_url)
    layout = naming.RunLayout(plan.bucket, plan.prefix, plan.run_id)
    evaluate = job_configs.evaluate_config(
        name=plan.evaluate_job_name, layout=layout, model_artifact=candidate_artifact,
        champion_artifact=champion.model_data_url if champion else None,
        image_uri=plan.image_uri, role_arn=plan.role_arn,
        instance_type=plan.processing_instance_type, slice_arguments=plan.slice_arguments(),
    )
    return {
        "champion": champion.to_dict() if champion else None,
        "candidate_model_artifact": candidate_artifact,
        "candidate_training_job": job["TrainingJobName"],
        "evaluate_config": evaluate,
    }


def quality_gate(
    plan: Mapping[str, Any], champion: dict[str, Any] | None, aws_conn_id: str, ti: Any, dag: Any
) -> str:
    """Decide, record the verdict (S3, XCom, log) and return the branch to follow."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from sagemaker_mlops.run_note import set_run_note, verdict_note
    from sagemaker_mlops.s3io import read_json

    run = RunPlan.from_xcom(plan)
    s3 = S3Hook(aws_conn_id=aws_conn_id)
    evaluation = read_json(s3, run.layout.evaluation_json_uri)
    verdict = decide(evaluation, run.gate, champion_expected=champion is not None)
    table = render_table(verdict)
    log.info("%s\n%s", summary_line(verdict), table)
    for note in verdict.notes + verdict.reasons:
        log.info("%s", note)
    bucket, key = naming.split_s3_uri(run.layout.verdict_json_uri)
    s3.load_string(json.dumps(verdict.to_dict(), indent=2), key, bucket, replace=True)
    ti.xcom_push(key="verdict", value=verdict.to_dict())
    ti.xcom_push(key="verdict_table", value=table)
    set_run_note(dag.dag_id, run.run_id, verdict_note(verdict))
    if verdict.passed:
        return REGISTER_TASK
    subject, message = alerts.retrain_alert(
        verdict, dag_id=dag.dag_id, run_id=run.run_id,
        model_package_group=run.model_package_group,
        evaluation_uri=run.layout.evaluation_json_uri,
    )
    ti.xcom_push(key="alert_subject", value=subject)
    ti.xcom_push(key="alert_message", value=message)
    return ALERT_TASK


def resolve_version(
    pipeline: str, version: int | None, targets: Mapping[str, Mapping[str, str]], aws_conn_id: str
) -> dict[str, Any]:
    """The Approved version ``deploy_approved_model`` deploys (latest, or a chosen number).

    ``targets``: per pipeline name, its ``model_package_group`` and ``endpoint_name``.
    """
    from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook
    from airflow.providers.common.compat.sdk import AirflowFailException

    from sagemaker_mlops.settings import runtime_settings

    if pipeline not in targets:
        raise AirflowFailException(
            f"pipeline {pipeline!r} is not one of {', '.join(sorted(targets))}"
        )
    group, endpoint = targets[pipeline]["model_package_group"], targets[pipeline]["endpoint_name"]
    chosen = registry.find_version(SageMakerHook(aws_conn_id=aws_conn_id).conn, group, version)
    log.info("Deploying version %s of %s (%s) to %s", chosen.version, group, chosen.arn, endpoint)
    return {
        "model_package_arn": chosen.arn,
        "version": chosen.version,
        "endpoint_name": endpoint,
        "role_arn": runtime_settings().role_arn,
    }
