"""The serverless deployment operator: the provider's SageMakerEndpointOperator, made safe.

``ServerlessDeployOperator`` checks the version's S3 objects against their registered sha256,
creates the Model and serverless EndpointConfig, creates or updates the endpoint, then verifies
what serves and smoke-tests it; on any failure it restores the previous endpoint config and marks
the version Rejected with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NoReturn

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.operators.sagemaker import SageMakerEndpointOperator
from airflow.providers.common.compat.sdk import (
    AirflowException,
    AirflowFailException,
    AirflowSkipException,
)

from sagemaker_mlops import deploy, integrity, model_configs, naming, registry, retry
from sagemaker_mlops.s3io import read_json, s3_sha256

PREVIOUS_CONFIG_KEY = "previous_endpoint_config"


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
        model = naming.resource_name(self.endpoint_name, f"v{version.version}", unique=unique)
        config = naming.resource_name(
            self.endpoint_name, f"v{version.version}", "cfg", unique=unique
        )
        return model, config

    def execute(self, context: Any) -> dict[str, Any]:
        if not self.model_package_arn:
            # its trigger rule also counts validate_params' success, so a run that stopped
            # before registering (a failed data check or gate) reaches here with no version
            raise AirflowSkipException("this run registered no model version: nothing to deploy")
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
        self._check_integrity(version)
        model_name, config_name = self._names(context, version)
        # a re-run after a killed try may meet the endpoint still Creating/Updating
        before = deploy.wait_settled(client, self.endpoint_name, delay=float(self.check_interval))
        if before and before.get("EndpointStatus") == "Failed":
            # it accepts only DeleteEndpoint, and serves nothing worth restoring
            self.log.warning("Endpoint %s is Failed (%s): deleting it to deploy afresh",
                             self.endpoint_name, before.get("FailureReason", "no reason given"))
            deploy.delete_and_wait(client, self.endpoint_name, delay=float(self.check_interval))
            before = None
        previous = self._previous_config(context, config_name, before)
        self.log.info(
            "Deploying version %s to %s as %s (previous config: %s)",
            version.version, self.endpoint_name, config_name, previous,
        )
        if before and before.get("EndpointConfigName") == config_name:
            self.log.info("Endpoint already serves %s (task re-run): verifying only", config_name)
            return self._verify(context, version, config_name, previous)
        try:
            config: dict[str, Any] = {
                "Endpoint": {"EndpointName": self.endpoint_name, "EndpointConfigName": config_name}
            }
            if not deploy.exists(client.describe_model, ModelName=model_name):
                config["Model"] = model_configs.model_config(
                    name=model_name, model_package_arn=version.arn, role_arn=self.role_arn
                )
            if not deploy.exists(client.describe_endpoint_config, EndpointConfigName=config_name):
                config["EndpointConfig"] = model_configs.serverless_endpoint_config(
                    name=config_name, model_name=model_name,
                    memory_mb=int(self.memory_mb), max_concurrency=int(self.max_concurrency),
                )
            self.config = config
            self.operation = "update" if before else "create"
            super().execute(context)  # defers when deferrable; then execute_complete resumes
        except Exception as exc:
            self._fail(version, config_name, previous, exc)
        return self._verify(context, version, config_name, previous)

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        client = self.hook.conn
        version = registry.describe_version(client, self.model_package_arn)
        _, config_name = self._names(context, version)
        previous = self._recorded_previous(context, config_name)
        if not event or event.get("status") != "success":
            # e.g. a re-run resuming a deferral whose trigger died with its process: the event
            # is lost, so the endpoint itself says how the change ended (verify names it)
            self.log.warning("The wait ended without a success event (%s): checking the "
                             "endpoint itself", event)
        return self._verify(context, version, config_name, previous)

    def _check_integrity(self, version: registry.ModelVersion) -> None:
        """Refuse (no retry, nothing touched) unless the S3 objects are the registered ones."""
        s3 = S3Hook(aws_conn_id=self.aws_conn_id)
        try:
            for line in integrity.verify(version, lambda uri: s3_sha256(s3, uri)):
                self.log.info("%s", line)
        except (integrity.IntegrityError, AirflowException) as exc:
            raise AirflowFailException(
                f"version {version.version} not deployed: {exc}"
            ) from None

    def _recorded_previous(self, context: Any, config_name: str) -> str | None:
        """The config the endpoint served before this task's first try, if a try recorded it."""
        store = context.get("task_state_store")
        recorded = store.get(PREVIOUS_CONFIG_KEY) if store is not None else None
        if isinstance(recorded, dict) and recorded.get("config") == config_name:
            return recorded.get("previous") or None
        return context["ti"].xcom_pull(task_ids=self.task_id, key=PREVIOUS_CONFIG_KEY)

    def _previous_config(
        self, context: Any, config_name: str, before: dict[str, Any] | None
    ) -> str | None:
        """What to restore on failure, kept across tries in the task state store (Airflow 3.3).

        A re-run of a try killed after UpdateEndpoint finds the endpoint on *this* task's config;
        the config it replaced is then only known from what the first try recorded. The record
        is used only while the endpoint serves one of the two (otherwise someone else deployed
        since, and what serves now is what to keep).
        """
        current = before.get("EndpointConfigName") if before else None
        store = context.get("task_state_store")
        recorded = store.get(PREVIOUS_CONFIG_KEY) if store is not None else None
        if (
            isinstance(recorded, dict)
            and recorded.get("config") == config_name
            and current in (config_name, recorded.get("previous") or None)
        ):
            previous = recorded.get("previous") or None
            self.log.info("A previous try of this task recorded %s as the config to restore",
                          previous)
        else:
            previous = current
            if store is not None:
                store.set(PREVIOUS_CONFIG_KEY, {"config": config_name, "previous": previous or ""})
        if "ti" in context:
            context["ti"].xcom_push(key=PREVIOUS_CONFIG_KEY, value=previous)
        return previous

    def _verify(
        self, context: Any, version: registry.ModelVersion, config_name: str, previous: str | None
    ) -> dict[str, Any]:
        try:
            endpoint = deploy.wait_settled(
                self.hook.conn, self.endpoint_name, delay=float(self.check_interval)
            )
            deploy.verify_serving(endpoint, config_name)
            if not version.evaluation_uri:
                raise deploy.DeployError("the version has no ModelMetrics evaluation to smoke-test against")
            evaluation = read_json(S3Hook(aws_conn_id=self.aws_conn_id), version.evaluation_uri)
            sample = evaluation.get("sample_predictions") or {}
            runtime = AwsBaseHook(aws_conn_id=self.aws_conn_id, client_type="sagemaker-runtime").conn
            predictions = deploy.smoke_check(runtime, self.endpoint_name, sample)
        except Exception as exc:
            self._fail(version, config_name, previous, exc)
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
        self, version: registry.ModelVersion, config_name: str, previous: str | None,
        exc: Exception,
    ) -> NoReturn:
        client = self.hook.conn
        if deploy.is_concurrent_change(exc):
            # another deployment owns the endpoint right now: restoring would undo its change
            raise AirflowFailException(
                f"deployment of version {version.version} not started: another deployment is "
                f"changing endpoint {self.endpoint_name} ({exc}); this task changed nothing and "
                "the version stays Approved: deploy it again once the endpoint is InService"
            ) from exc
        reason = f"deployment of version {version.version} failed: {exc}"
        self.log.error("%s", reason)
        delay = float(self.check_interval)
        current = deploy.wait_settled(client, self.endpoint_name, delay=delay)
        serving = current.get("EndpointConfigName") if current else None
        if current and current.get("EndpointStatus") == "InService" and serving not in (
            config_name, previous
        ):
            raise AirflowFailException(
                f"{reason}; endpoint {self.endpoint_name} now serves {serving}, deployed by "
                "another deployment meanwhile: left as it is, version left Approved"
            ) from exc
        # throttling, a 5xx or a dropped connection says nothing about the version
        transient = retry.classify(exc)
        try:
            restored = deploy.restore(client, self.endpoint_name, previous, delay=delay)
            self.log.warning("%s", restored)
        finally:
            if transient.fault is not retry.Fault.TRANSIENT:
                registry.reject_version(client, version.arn, reason)
                self.log.warning("Marked version %s Rejected", version.version)
        if transient.fault is retry.Fault.TRANSIENT:
            raise AirflowException(
                f"{reason} ({transient.why}); endpoint restored, version left Approved: "
                "the task's retry deploys it again"
            ) from exc
        # no retry: the endpoint is restored and the version Rejected already
        raise AirflowFailException(reason) from exc
