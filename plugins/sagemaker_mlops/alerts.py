"""Text of the retrain alert: which checks failed, by how much, against what."""

from __future__ import annotations

from typing import Any

from sagemaker_mlops.gate import Verdict, format_number, render_table
from sagemaker_mlops.settings import Settings

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


def failure_notifier(settings: Settings) -> Any:
    """SnsNotifier for task failures, to the same topic as the retrain alert.

    The topic resolves when the callback runs, so the Variable ``mlops_alert_topic_arn`` applies.
    ``exception`` has a default: Airflow 3.2 (MWAA) leaves it out of the callback context when a
    task runs in-process (``dag.test()``), and an undefined name would drop the alert.
    """
    from airflow.providers.amazon.aws.notifications.sns import SnsNotifier

    return SnsNotifier(
        aws_conn_id=settings.aws_conn_id,
        target_arn="{{ var.value.get('mlops_alert_topic_arn', '" + settings.topic_arn + "') }}",
        subject="[{{ dag.dag_id }}] task {{ ti.task_id }} failed",
        message=(
            "Task {{ ti.task_id }} of {{ dag.dag_id }} failed in run {{ run_id }} "
            "(try {{ ti.try_number }}).\n{{ exception | default('(error: see the task log)') }}"
        ),
    )
