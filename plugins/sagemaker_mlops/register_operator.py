"""The registration operator: the provider's SageMakerRegisterModelVersionOperator, extended.

``RegisterModelVersionOperator`` is idempotent per DAG run (a cleared and re-run task returns the
version it registered before) and registers our InferenceSpecification, ModelMetrics and lineage.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.operators.sagemaker import SageMakerRegisterModelVersionOperator
from airflow.providers.amazon.aws.utils.sagemaker import ApprovalStatus
from airflow.providers.common.compat.sdk import AirflowException

from sagemaker_mlops import integrity, model_configs, registry
from sagemaker_mlops.plan import RunPlan
from sagemaker_mlops.s3io import read_json, s3_sha256
from sagemaker_mlops.verdict import Verdict, summary_line


class RegisterModelVersionOperator(SageMakerRegisterModelVersionOperator):
    """Register the candidate as a new version, once per DAG run.

    :param run_plan: the pipeline's run plan (``validate_params`` output).
    :param training_job: name of the candidate's training job, which produced ``model_url``.
    :param verdict: the quality gate's verdict dict.
    :param code_sha256: fingerprint of the training code's files (names and contents), for
        lineage; the serving tarball's own sha256 is recorded as ``sourcedir_sha256``.
    """

    template_fields: Sequence[str] = (
        *SageMakerRegisterModelVersionOperator.template_fields,
        "run_plan",
        "training_job",
        "verdict",
        "code_sha256",
    )

    def __init__(
        self,
        *,
        run_plan: dict[str, Any],
        training_job: str,
        verdict: dict[str, Any],
        code_sha256: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.run_plan = run_plan
        self.training_job = training_job
        self.verdict = verdict
        self.code_sha256 = code_sha256

    def execute(self, context: Any) -> str:
        run_id = context["run_id"]
        existing = registry.find_run_version(self.hook.conn, self.package_group_name, run_id)
        if existing is not None:
            self.log.info(
                "Run %s already registered version %s (%s): not registering again",
                run_id, existing.version, existing.arn,
            )
            return existing.arn
        verdict = Verdict.from_dict(self.verdict)
        if not verdict.passed:
            raise AirflowException("refusing to register a model whose quality gate failed")
        plan = RunPlan.from_xcom(self.run_plan)
        layout = plan.layout
        s3 = S3Hook(aws_conn_id=self.aws_conn_id)
        metadata = {
            registry.RUN_ID_KEY: run_id,
            "dag_id": context["dag"].dag_id,
            "pipeline": plan.pipeline,
            "problem_type": plan.problem_type,
            "target": plan.target,
            "training_job": self.training_job,
            "data_sha256": data_fingerprint(read_json(s3, layout.profile_json_uri)),
            registry.DATA_PROFILE_KEY: layout.profile_json_uri,
            "code_sha256": self.code_sha256,
            # the exact objects the endpoint loads; every deployment checks them again
            integrity.ARTIFACT_SHA256_KEY: s3_sha256(s3, self.model_url),
            integrity.SOURCEDIR_SHA256_KEY: s3_sha256(s3, layout.sourcedir_uri),
            "verdict": summary_line(verdict),
        }
        self.model_approval = ApprovalStatus(getattr(self.model_approval, "value", self.model_approval))
        self.extras = model_configs.model_package_extras(
            image_uri=self.image_uri,
            model_artifact=self.model_url,
            sourcedir_uri=layout.sourcedir_uri,
            region=plan.region,
            evaluation_json_uri=layout.evaluation_json_uri,
            metadata=metadata,
            description=f"{self.training_job} ({run_id}): {summary_line(verdict)}",
            approval_status=self.model_approval.value,
        )
        arn = super().execute(context)
        self.log.info("Registered %s as %s", arn, self.model_approval.value)
        return arn


def data_fingerprint(profile: dict[str, Any]) -> str:
    """sha256 of the raw input data, as preprocess.py recorded it in profile.json."""
    value = profile.get("input_sha256")
    if not isinstance(value, str) or not value:
        raise AirflowException("profile.json has no input_sha256 (sha256 of the raw input files)")
    return value
