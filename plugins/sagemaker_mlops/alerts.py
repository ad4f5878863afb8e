"""Text of the retrain alert: which checks failed, by how much, against what."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from sagemaker_mlops.settings import Settings
from sagemaker_mlops.verdict import Verdict, format_number, render_table

SNS_SUBJECT_LIMIT = 100


def retrain_alert(
    verdict: Verdict, *, dag_id: str, run_id: str, model_package_group: str, evaluation_uri: str
) -> tuple[str, str]:
    """Subject and body of the SNS message published when the gate fails."""
    failed = verdict.failed_checks
    subject = f"[{dag_id}] retrain needed: {len(failed)} quality check(s) failed"
    lines = [
        f"The candidate model of run {run_id} did not pass the quality gate and was not "
        f"registered in {model_package_group}.",
        "",
        "Failed checks:",
    ]
    for check in failed:
        detail = f"- {check.metric}: {format_number(check.value)}"
        if check.metric != "load_check":
            detail += f" (required {check.op} {format_number(check.threshold)})"
        if check.champion_value is not None:
            detail += (
                f"; champion {format_number(check.champion_value)}, "
                f"delta {format_number(check.delta, signed=True)}"
            )
        lines.append(detail)
        if check.reason:
            lines.append(f"  {check.reason}")
    lines += [
        "",
        f"Decision basis: {verdict.decision_basis}",
        "",
        render_table(verdict),
        "",
        f"Evaluation: {evaluation_uri}",
    ]
    return subject[:SNS_SUBJECT_LIMIT], "\n".join(lines)


def data_check_alert(
    result: Mapping[str, Any], *, dag_id: str, run_id: str, data_checks_uri: str
) -> tuple[str, str]:
    """Subject and body of the SNS message published when the data checks stop a run.

    ``result`` is ``data_checks.json`` as include/training/data_checks.py writes it; its table
    (``Check | Value | Threshold | Conclusion``) is rendered there, once.
    """
    failed = [c for c in result["checks"] if c.get("passed") is False]
    subject = f"[{dag_id}] retrain blocked: {len(failed)} data check(s) failed"
    lines = [
        f"The new data of run {run_id} failed its data checks against the champion's training "
        "data, so no model was trained (no training job ran).",
        "",
        "Failed checks:",
        *(f"- {c['check']}" + (f" {c['column']}" if c.get("column") else "")
          + f": {c['shown']} (threshold {c['threshold']})" for c in failed),
        "",
        result["table"],
        "",
        *result.get("notes", []),
        f"Data checks: {data_checks_uri}",
        "If the change is intended, run once with data_checks 'warn': the new model's profile "
        "then becomes the baseline.",
    ]
    return subject[:SNS_SUBJECT_LIMIT], "\n".join(lines)


ERROR_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception)\b")
REASON_LIMIT = 400


def one_line_reason(exception: BaseException | str | None) -> str:
    """The first line of the error, plus its last ``...Error:`` line when the text is a traceback.

    A SageMaker job failure arrives as "SageMaker job failed because <FailureReason>", and a
    container's FailureReason is often a whole traceback whose useful part is its last line.
    """
    if exception is None:
        return "(the callback context has no exception: see the task log)"
    lines = [line.strip() for line in str(exception).splitlines() if line.strip()]
    if not lines:
        return type(exception).__name__
    reason = lines[0]
    error_lines = [line for line in lines[1:] if ERROR_LINE.match(line)]
    if error_lines and error_lines[-1] != reason:
        reason += f" | {error_lines[-1]}"
    return reason[:REASON_LIMIT]


def failure_alert(context: Mapping[str, Any], base_url: str) -> tuple[str, str]:
    """Subject and body of the task-failure alert: DAG, run, task, reason and where to look."""
    ti = context["ti"]
    dag_id = ti.dag_id
    run_id = context.get("run_id") or ti.run_id
    run_url = f"{base_url.rstrip('/')}/dags/{quote(dag_id)}/runs/{quote(run_id)}"
    subject = f"[{dag_id}] task {ti.task_id} failed"
    lines = [
        f"Task {ti.task_id} of DAG {dag_id} failed in run {run_id} (try {ti.try_number}).",
        f"Reason: {one_line_reason(context.get('exception'))}",
        f"Run: {run_url}",
        f"Task log: {run_url}/tasks/{quote(ti.task_id)}",
    ]
    # SNS refuses subjects with non-ASCII characters or line breaks
    subject = subject.encode("ascii", "replace").decode().replace("\n", " ")
    return subject[:SNS_SUBJECT_LIMIT], "\n".join(lines)


def failure_notifier(settings: Settings) -> Any:
    """SnsNotifier for task failures, to the same topic as the retrain alert.

    The topic resolves when the callback runs, so the Variable ``mlops_alert_topic_arn`` applies.
    Subject and body are built in Python from the callback context (``failure_alert``); the UI
    links use ``[api] base_url``, the setting Airflow itself uses for ``ti.log_url``. Airflow 3.2
    (MWAA) leaves ``exception`` out of the context when a task runs in-process (``dag.test()``),
    so the reason then points to the task log instead of dropping the alert.
    """
    from airflow.providers.amazon.aws.notifications.sns import SnsNotifier
    from airflow.providers.common.compat.sdk import conf

    class FailureNotifier(SnsNotifier):
        def notify(self, context: Any) -> None:
            base_url = conf.get("api", "base_url", fallback="http://localhost:8080/")
            self.subject, self.message = failure_alert(context, base_url)
            super().notify(context)

    return FailureNotifier(
        aws_conn_id=settings.aws_conn_id,
        target_arn="{{ var.value.get('mlops_alert_topic_arn', '" + settings.topic_arn + "') }}",
        message="",  # set in notify from the context
    )
