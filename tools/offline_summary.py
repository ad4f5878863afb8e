"""What a person wants to know after an offline run, read from the systems themselves.

The verdict table (with the champion comparison when there was one), the SageMaker jobs, the
model version and its approval, the endpoint and a live prediction; for a failed run, each
failed task with its own one-line reason instead of the symptoms further down the line.
"""

from __future__ import annotations

import json
from typing import Any

from sagemaker_mlops import naming, registry
from sagemaker_mlops.job_attempts import MAX_JOBS_PER_TASK, attempt_name
from sagemaker_mlops.settings import Settings
from sagemaker_mlops.specs import PipelineSpec
from sagemaker_mlops.verdict import Verdict, render_table, summary_line

from local_sagemaker.launcher import EmulatorClient
from tools.dag_worker import DagRunResult

JOB_TASKS = {"preprocess": "Processing", "train": "Training", "evaluate": "Processing"}


def read_s3_json(emulator: EmulatorClient, uri: str) -> Any:
    bucket, key = naming.split_s3_uri(uri)
    return json.loads(emulator.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())


def failure_lines(emulator: EmulatorClient, run: DagRunResult) -> list[str]:
    """One line per failed task: its own reason (a SageMaker job's FailureReason, else the
    task's exception), never a downstream symptom."""
    sagemaker = emulator.client("sagemaker")
    lines = []
    for task_id, state in sorted(run.tasks.items()):
        if state not in ("failed", "up_for_retry"):
            continue
        reason = run.failures.get(task_id, "")
        if task_id in JOB_TASKS:
            kind = JOB_TASKS[task_id]
            try:
                job = latest_job(sagemaker, kind, task_id, run.run_id)
                # a processing script's own message is the ExitMessage; FailureReason is generic
                reason = job.get("ExitMessage") or job.get("FailureReason") or reason
            except Exception:  # noqa: BLE001 - the job never started; the task's error says why
                pass
        lines.append(f"FAILED {task_id}: {_one_line(reason) or 'no reason recorded; see ' + str(run.log_path)}")
    upstream = sorted(t for t, s in run.tasks.items() if s == "upstream_failed")
    if lines and upstream:
        lines.append(f"Not run because of it: {', '.join(upstream)}")
    return lines


def _one_line(text: str, limit: int = 400) -> str:
    first = next((line.strip() for line in str(text).splitlines() if line.strip()), "")
    return first if len(first) <= limit else first[: limit - 1] + "…"


def summarize(
    emulator: EmulatorClient, settings: Settings, spec: PipelineSpec, run: DagRunResult
) -> str:
    lines = [f"DAG run {run.dag_id} / {run.run_id}: {run.state} in {run.seconds:.1f} s"]
    lines.append("Tasks: " + ", ".join(f"{t}={s}" for t, s in sorted(run.tasks.items())))
    failures = failure_lines(emulator, run)
    if failures:
        lines += ["", *failures]
    layout = naming.RunLayout(settings.bucket, spec.s3_prefix, run.run_id)
    if run.tasks.get("data_checks") in ("success", "failed"):
        lines += ["", *data_check_lines(emulator, layout.data_checks_json_uri, run)]
    if run.tasks.get("quality_gate") in ("success", "failed"):
        try:
            verdict = Verdict.from_dict(read_s3_json(emulator, layout.verdict_json_uri))
            lines += ["", summary_line(verdict), render_table(verdict)]
            lines += [f"  reason: {r}" for r in verdict.reasons]
        except Exception as exc:  # noqa: BLE001 - the summary reports what is missing
            lines += ["", f"No verdict ({layout.verdict_json_uri}): {_one_line(exc)}"]
    sagemaker = emulator.client("sagemaker")
    if run.dag_id == spec.dag_id:
        lines += ["", "SageMaker jobs: " + job_durations(sagemaker, run.run_id)]
    group = spec.model_package_group
    version = registry.find_run_version(sagemaker, group, run.run_id)
    lines.append("")
    if version is None:
        lines.append(f"Model registry: this run registered no version in {group}")
    else:
        lines.append(
            f"Model registry: {group} version {version.version} is {version.approval_status} "
            f"({version.arn})"
        )
    try:
        endpoint = sagemaker.describe_endpoint(EndpointName=spec.endpoint_name)
    except Exception:  # noqa: BLE001
        lines.append(f"Endpoint {spec.endpoint_name}: does not exist")
        return "\n".join(lines)
    lines.append(
        f"Endpoint {spec.endpoint_name}: {endpoint['EndpointStatus']} on "
        f"{endpoint['EndpointConfigName']}"
    )
    lines.append(live_prediction(emulator, spec.endpoint_name, endpoint))
    return "\n".join(lines)


def data_check_lines(emulator: EmulatorClient, uri: str, run: DagRunResult) -> list[str]:
    """The data checks' summary and table, and whether they stopped the run before training."""
    try:
        result = read_s3_json(emulator, uri)
    except Exception as exc:  # noqa: BLE001 - the summary reports what is missing
        return [f"No data checks ({uri}): {_one_line(exc)}"]
    lines = [result["summary"], result["table"], *(f"  note: {n}" for n in result["notes"])]
    if run.tasks.get("data_check_alert") == "success":
        lines.append("Training skipped: the data checks failed and data_check_alert was sent")
    return lines


def latest_job(sagemaker: Any, kind: str, task_id: str, run_id: str) -> dict[str, Any]:
    """The Describe*Job of the last job ``task_id`` started in the run (``<name>``, ``-r2``, ...);
    raises the ClientError of Describe when it started none."""
    describe = getattr(sagemaker, f"describe_{kind.lower()}_job")
    base = naming.job_name(task_id, run_id)
    job = describe(**{f"{kind}JobName": base})
    for number in range(2, MAX_JOBS_PER_TASK + 1):
        try:
            job = describe(**{f"{kind}JobName": attempt_name(base, number)})
        except sagemaker.exceptions.ClientError:
            break
    return job


def job_durations(sagemaker: Any, run_id: str) -> str:
    """How long each job of the run took, from the jobs' own start and end times."""
    parts = []
    for kind, prefix in JOB_TASKS.items():
        try:
            job = latest_job(sagemaker, prefix, kind, run_id)
        except Exception:  # noqa: BLE001 - a job that never started
            parts.append(f"{kind} not run")
            continue
        start, end = job.get(f"{prefix}StartTime"), job.get(f"{prefix}EndTime")
        took = f" in {(end - start).total_seconds():.1f} s" if start and end else ""
        parts.append(f"{kind} {job[f'{prefix}JobStatus']}{took}")
    return ", ".join(parts)


def live_prediction(emulator: EmulatorClient, endpoint_name: str, endpoint: dict[str, Any]) -> str:
    """Invoke the endpoint with one real test row of the model it serves."""
    from sagemaker_mlops import deploy

    sagemaker = emulator.client("sagemaker")
    package = deploy.served_package(sagemaker, endpoint["EndpointConfigName"])
    if not package:
        return "Live prediction: the endpoint's model is not from the registry"
    version = registry.describe_version(sagemaker, package)
    sample = read_s3_json(emulator, version.evaluation_uri)["sample_predictions"]
    row = {"columns": sample["columns"], "rows": sample["rows"][:1],
           "predictions": sample["predictions"][:1]}
    body, _ = deploy.sample_payload(row)
    try:
        response = emulator.client("sagemaker-runtime").invoke_endpoint(
            EndpointName=endpoint_name, Body=body, ContentType="text/csv", Accept="application/json",
        )
    except Exception as exc:  # noqa: BLE001 - the summary says why it could not predict
        return f"Live prediction (version {version.version}) failed: {_one_line(exc)}"
    predicted = deploy.parse_predictions(response["Body"].read(), response["ContentType"])
    features = ", ".join(f"{c}={v}" for c, v in zip(sample["columns"], sample["rows"][0], strict=True))
    return (
        f"Live prediction (version {version.version}) for [{features}]: {predicted[0]} "
        f"(evaluation predicted {sample['predictions'][0]})"
    )
