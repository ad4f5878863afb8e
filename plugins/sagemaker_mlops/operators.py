"""The provider's SageMaker operators, extended where the pipeline needs more than they do.

- ``RegisterModelVersionOperator``: idempotent per DAG run (a cleared and re-run task returns the
  version it registered before), with our InferenceSpecification, ModelMetrics and lineage.
- ``ServerlessDeployOperator``: creates the Model and serverless EndpointConfig, creates or
  updates the endpoint, then verifies what serves and smoke-tests it; on any failure it restores
  the previous endpoint config and marks the version Rejected with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NoReturn

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.operators.sagemaker import (
    SageMakerEndpointOperator,
    SageMakerRegisterModelVersionOperator,
)
from airflow.providers.amazon.aws.utils.sagemaker import ApprovalStatus
from airflow.providers.common.compat.sdk import (
    AirflowException,
    AirflowFailException,
    AirflowSkipException,
)

from sagemaker_mlops import deploy, job_configs, registry
from sagemaker_mlops.gate import Verdict, summary_line
from sagemaker_mlops.plan import RunPlan
from sagemaker_mlops.s3io import read_json, s3_sha256

PREVIOUS_CONFIG_KEY = "previous_endpoint_config"


class RegisterModelVersionOperator(SageMakerRegisterModelVersionOperator):
    """Register the candidate as a new version, once per DAG run.

    :param run_plan: the pipeline's run plan (``validate_params`` output).
    :param training_job: name of the candidate's training job, which produced ``model_url``.
    :param verdict: the quality gate's verdict dict.
    :param code_sha256: fingerprint of the staged training code.
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
            "code_sha256": self.code_sha256,
            "artifact_sha256": s3_sha256(s3, self.model_url),
            "verdict": summary_line(verdict),
        }
        self.model_approval = ApprovalStatus(getattr(self.model_approval, "value", self.model_approval))
        self.extras = job_configs.model_package_extras(
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


class ServerlessDeployOperator(SageMakerEndpointOperator):
    """Deploy an Approved model package version to a serverless endpoint, safely.

    :param model_package_arn: the version to deploy.
    :param endpoint_name: the endpoint to create or update.
    :param role_arn: execution role of the SageMaker Model.
    :param memory_mb: ServerlessConfig.MemorySizeInMB.
    :param max_concurrency: ServerlessConfig.MaxConcurrency.
    """

    template_fields: Sequence[str] = (
        *SageMakerEndpointOperator.template_fields,
        "model_package_arn",
        "endpoint_name",
        "role_arn",
        "memory_mb",
        "max_concurrency",
    )

    def __init__(
        self,
        *,
        model_package_arn: str,
        endpoint_name: str,
        role_arn: str,
        memory_mb: int | str,
        max_concurrency: int | str,
        **kwargs: Any,
    ) -> None:
        super().__init__(config={}, **kwargs)
        self.model_package_arn = model_package_arn
        self.endpoint_name = endpoint_name
        self.role_arn = role_arn
        self.memory_mb = memory_mb
        self.max_concurrency = max_concurrency

    def _names(self, context: Any, version: registry.ModelVersion) -> tuple[str, str]:
        unique = f"{context['run_id']}:{version.arn}"
        model = job_configs.resource_name(self.endpoint_name, f"v{version.version}", unique=unique)
        config = job_configs.resource_name(
            self.endpoint_name, f"v{version.version}", "cfg", unique=unique
        )
        return model, config

    def execute(self, context: Any) -> dict[str, Any]:
        client = self.hook.conn
        version = registry.describe_version(client, self.model_package_arn)
        if version.approval_status == "PendingManualApproval":
            raise AirflowSkipException(
                f"version {version.version} awaits manual approval: approve it in the "
                "registry, then deploy it with the deploy_approved_model DAG"
            )
        if version.approval_status != "Approved":
            raise AirflowFailException(
                f"version {version.version} is {version.approval_status}; only Approved "
                "versions are deployed"
            )
        model_name, config_name = self._names(context, version)
        before = deploy.describe_endpoint(client, self.endpoint_name)
        if before and before.get("EndpointStatus") == "Failed":
            # it accepts only DeleteEndpoint, and serves nothing worth restoring
            self.log.warning("Endpoint %s is Failed (%s): deleting it to deploy afresh",
                             self.endpoint_name, before.get("FailureReason", "no reason given"))
            deploy.delete_and_wait(client, self.endpoint_name, delay=float(self.check_interval))
            before = None
        previous = before.get("EndpointConfigName") if before else None
        context["ti"].xcom_push(key=PREVIOUS_CONFIG_KEY, value=previous)
        self.log.info(
            "Deploying version %s to %s as %s (previous config: %s)",
            version.version, self.endpoint_name, config_name, previous,
        )
        if previous == config_name and before.get("EndpointStatus") == "InService":
            self.log.info("Endpoint already serves %s (task re-run): verifying only", config_name)
            return self._verify(context, version, config_name, previous)
        try:
            config: dict[str, Any] = {
                "Endpoint": {"EndpointName": self.endpoint_name, "EndpointConfigName": config_name}
            }
            if not deploy.exists(client.describe_model, ModelName=model_name):
                config["Model"] = job_configs.model_config(
                    name=model_name, model_package_arn=version.arn, role_arn=self.role_arn
                )
            if not deploy.exists(client.describe_endpoint_config, EndpointConfigName=config_name):
                config["EndpointConfig"] = job_configs.serverless_endpoint_config(
                    name=config_name, model_name=model_name,
                    memory_mb=int(self.memory_mb), max_concurrency=int(self.max_concurrency),
                )
            self.config = config
            self.operation = "update" if before else "create"
            super().execute(context)  # defers when deferrable; then execute_complete resumes
        except Exception as exc:
            self._fail(version, previous, exc)
        return self._verify(context, version, config_name, previous)

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        client = self.hook.conn
        version = registry.describe_version(client, self.model_package_arn)
        previous = context["ti"].xcom_pull(task_ids=self.task_id, key=PREVIOUS_CONFIG_KEY)
        _, config_name = self._names(context, version)
        try:
            super().execute_complete(context, event)
        except Exception as exc:
            self._fail(version, previous, exc)
        return self._verify(context, version, config_name, previous)

    def _verify(
        self, context: Any, version: registry.ModelVersion, config_name: str, previous: str | None
    ) -> dict[str, Any]:
        try:
            endpoint = deploy.describe_endpoint(self.hook.conn, self.endpoint_name)
            deploy.verify_serving(endpoint, config_name)
            if not version.evaluation_uri:
                raise deploy.DeployError("the version has no ModelMetrics evaluation to smoke-test against")
            evaluation = read_json(S3Hook(aws_conn_id=self.aws_conn_id), version.evaluation_uri)
            sample = evaluation.get("sample_predictions") or {}
            runtime = AwsBaseHook(aws_conn_id=self.aws_conn_id, client_type="sagemaker-runtime").conn
            predictions = deploy.smoke_check(runtime, self.endpoint_name, sample)
        except Exception as exc:
            self._fail(version, previous, exc)
        self.log.info(
            "Endpoint %s serves version %s on %s; smoke check passed on %d rows",
            self.endpoint_name, version.version, config_name, len(predictions),
        )
        return {
            "endpoint_name": self.endpoint_name,
            "endpoint_config": config_name,
            "model_package_arn": version.arn,
            "version": version.version,
            "status": endpoint["EndpointStatus"],
            "smoke_predictions": predictions,
        }

    def _fail(
        self, version: registry.ModelVersion, previous: str | None, exc: Exception
    ) -> NoReturn:
        reason = f"deployment of version {version.version} failed: {exc}"
        self.log.error("%s", reason)
        try:
            restored = deploy.restore(
                self.hook.conn, self.endpoint_name, previous, delay=float(self.check_interval)
            )
            self.log.warning("%s", restored)
        finally:
            registry.reject_version(self.hook.conn, version.arn, reason)
            self.log.warning("Marked version %s Rejected", version.version)
        # no retry: the endpoint is restored and the version Rejected already
        raise AirflowFailException(reason) from exc
