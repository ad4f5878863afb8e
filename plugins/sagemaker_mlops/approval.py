"""Human approval of a registered version in the Airflow UI (Param ``approval_mode=manual``).

Order, so that no state is half-done: register_model records the version as
PendingManualApproval → ``approve_model`` asks in the UI (Required actions) and waits without a
worker slot (Airflow 3.3 parks the task in ``awaiting_input``; 3.1/3.2, as on MWAA, defer it to
the triggerer) → the answer is written to the registry → only an Approved version reaches
deploy_serverless. Approve: Approved, with who and the comment in ApprovalDescription and
CustomerMetadataProperties, then deploy. Reject: Rejected the same way, deploy skipped. No answer
within ``approval_timeout_hours``: Rejected, and the task fails so the failure alert goes out.
In ``approval_mode=auto`` the task skips itself (the version is Approved already).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.providers.common.compat.sdk import AirflowFailException, AirflowSkipException
from airflow.providers.standard.operators.hitl import ApprovalOperator

from sagemaker_mlops import registry
from sagemaker_mlops.plan import RunPlan
from sagemaker_mlops.verdict import Verdict, render_table, summary_line

PENDING = "PendingManualApproval"
COMMENT = "comment"
DESCRIPTION_MAX = 1024  # UpdateModelPackage ApprovalDescription (botocore's SageMaker model)
# CustomerMetadataProperties keys the decision adds to the version's metadata
DECISION_KEY, BY_KEY, COMMENT_KEY, AT_KEY = (
    "approval_decision", "approval_by", "approval_comment", "approval_at",
)


def approval_body(
    verdict: Verdict, *, version: registry.ModelVersion, group: str, report_url: str,
    evaluation_uri: str, timeout_hours: float,
) -> str:
    """Markdown shown on the approval page: the verdict table, the report, what each answer does."""
    lines = [
        f"**{summary_line(verdict)}**",
        "",
        render_table(verdict),  # a GFM table, which the UI's Markdown renders
        "",
        f"[Open the evaluation report]({report_url}) (`{evaluation_uri}`)",
        "",
        f"Version **{version.version}** of model package group `{group}` "
        f"(`{version.arn}`) is registered `{PENDING}`.",
        "",
        "- **Approve**: the version becomes `Approved` and is deployed to the endpoint.",
        "- **Reject**: the version becomes `Rejected`; nothing is deployed.",
        f"- No answer within {timeout_hours:g} h: `Rejected`, and the failure alert is sent.",
        "",
        "Your name and comment are kept in the version's metadata.",
    ]
    return "\n".join(lines)


def responder_name(user: Mapping[str, Any] | None) -> str:
    """``HITLUser`` {id, name} as one string; nobody answered when it is None."""
    if not user:
        return "nobody (timeout)"
    name, user_id = str(user.get("name") or ""), str(user.get("id") or "")
    return name if not user_id or user_id == name else f"{name} ({user_id})"


def record_decision(
    client: Any, arn: str, *, status: str, by: str, comment: str, run_id: str, at: datetime,
) -> None:
    """Write the decision to the version: status, a readable description, searchable metadata."""
    description = f"{status} by {by} in Airflow run {run_id}"
    if comment:
        description += f": {comment}"
    metadata = registry.customer_metadata({
        DECISION_KEY: status, BY_KEY: by, COMMENT_KEY: comment, AT_KEY: at.isoformat(),
    })
    client.update_model_package(
        ModelPackageArn=arn,
        ModelApprovalStatus=status,
        ApprovalDescription=description[:DESCRIPTION_MAX],
        CustomerMetadataProperties=metadata,
    )


class ModelApprovalOperator(ApprovalOperator):
    """Ask a human to approve the registered version; record the answer in the registry.

    :param model_package_arn: the version register_model created (PendingManualApproval).
    :param run_plan: the run plan (``validate_params`` output): approval mode and timeout.

    The verdict shown is the run's verdict.json: an XCom argument from quality_gate would make
    this task a direct branch target of the gate, which would skip it.
    :param aws_conn_id: connection for SageMaker and S3.
    """

    template_fields: Sequence[str] = (
        *ApprovalOperator.template_fields, "model_package_arn", "run_plan",
    )

    def __init__(
        self,
        *,
        model_package_arn: str,
        run_plan: dict[str, Any],
        aws_conn_id: str | None = "aws_default",
        **kwargs: Any,
    ) -> None:
        from airflow.sdk import Param
        from airflow.sdk.definitions.param import ParamsDict

        kwargs.setdefault("subject", "Approve the candidate model for deployment?")
        # the form of the approval page; kwargs["params"] already holds the DAG's Params (source
        # "dag"), which the HITL operator leaves out of the form
        params = kwargs.pop("params", None)
        params = params if isinstance(params, ParamsDict) else ParamsDict(params or {})
        params[COMMENT] = Param(
            None, type=["null", "string"], maxLength=900, title="Comment",
            description="Why you approve or reject; kept with the model version.",
            source="task",
        )
        kwargs["params"] = params
        super().__init__(**kwargs)
        self.model_package_arn = model_package_arn
        self.run_plan = run_plan
        self.aws_conn_id = aws_conn_id

    def _client(self) -> Any:
        from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook

        return SageMakerHook(aws_conn_id=self.aws_conn_id).conn

    def execute(self, context: Any) -> Any:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        from sagemaker_mlops.links import report_url
        from sagemaker_mlops.s3io import read_json

        plan = RunPlan.from_xcom(self.run_plan)
        if plan.approval_status != PENDING:
            raise AirflowSkipException(
                f"approval_mode auto: the version was registered {plan.approval_status}; "
                "no human approval asked"
            )
        version = registry.describe_version(self._client(), self.model_package_arn)
        if version.approval_status != PENDING:
            # a cleared task whose decision is already in the registry: do not ask again
            return self._decided(context, version)
        timeout = timedelta(hours=plan.approval_timeout_hours)
        self.response_timeout = timeout
        verdict = Verdict.from_dict(
            read_json(S3Hook(aws_conn_id=self.aws_conn_id), plan.layout.verdict_json_uri)
        )
        self.subject = (
            f"Approve version {version.version} of {plan.model_package_group} for "
            f"{plan.endpoint_name}?"
        )
        self.body = approval_body(
            verdict, version=version, group=plan.model_package_group,
            report_url=report_url(self.aws_conn_id, plan.layout.evaluation_uri,
                                  expires_in=int(timeout.total_seconds()) + 3600),
            evaluation_uri=plan.layout.evaluation_uri, timeout_hours=plan.approval_timeout_hours,
        )
        self.log.info("%s\n%s", self.subject, self.body)
        return super().execute(context)

    def _decided(self, context: Any, version: registry.ModelVersion) -> dict[str, Any]:
        self.log.info("Version %s is %s already (decided before this try)", version.version,
                      version.approval_status)
        if version.approval_status != "Approved":
            self.skip(ti=context["ti"], tasks=context["task"].get_direct_relatives(upstream=False))
        return {"decision": version.approval_status, "version": version.version,
                "model_package_arn": version.arn}

    def _note(self, context: Any, plan: RunPlan, decision: str) -> None:
        """The run's note: the gate's verdict, then the human decision (run_note.py)."""
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        from sagemaker_mlops.run_note import set_run_note, verdict_note
        from sagemaker_mlops.s3io import read_json

        verdict = Verdict.from_dict(
            read_json(S3Hook(aws_conn_id=self.aws_conn_id), plan.layout.verdict_json_uri)
        )
        set_run_note(self.dag_id, context["run_id"], f"{verdict_note(verdict)}; {decision}")

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        plan = RunPlan.from_xcom(self.run_plan)
        version = registry.describe_version(self._client(), self.model_package_arn)
        if event.get("error_type") == "timeout":
            reason = (f"no approval decision within {plan.approval_timeout_hours:g} h: version "
                      f"{version.version} of {plan.model_package_group} Rejected, not deployed")
            record_decision(self._client(), version.arn, status="Rejected", by=responder_name(None),
                            comment=reason, run_id=context["run_id"], at=datetime.now(UTC))
            self._note(context, plan, reason)
            raise AirflowFailException(reason)
        if "error" in event:  # the trigger failed (Airflow < 3.3): the provider raises its error
            return super().execute_complete(context=context, event=event)
        # record first: on Reject the provider's execute_complete ends this try by raising
        # (Airflow 3 skips downstream tasks through an exception), so nothing after it runs
        chosen, params_input = list(event["chosen_options"]), dict(event["params_input"] or {})
        self.validate_chosen_options(chosen)
        self.validate_params_input(params_input)
        status = "Approved" if chosen == [self.APPROVE] else "Rejected"
        by = responder_name(event.get("responded_by_user"))
        comment = str(params_input.get(COMMENT) or "").strip()
        responded_at = event.get("responded_at")
        record_decision(self._client(), version.arn, status=status, by=by, comment=comment,
                        run_id=context["run_id"],
                        at=responded_at if isinstance(responded_at, datetime) else datetime.now(UTC))
        self.log.info("Version %s %s by %s%s", version.version, status, by,
                      f": {comment}" if comment else "")
        self._note(context, plan, f"version {version.version} {status} by {by}"
                   + (f": {comment}" if comment else ""))
        super().execute_complete(context=context, event=event)  # on Reject: skips deploy
        return {"decision": status, "version": version.version, "model_package_arn": version.arn,
                "by": by, "comment": comment}
