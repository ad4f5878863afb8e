"""The shipped Airflow policy (deploy/iam/airflow-policy.json) on the paths the pipeline stories
do not take, and one real run without one of its actions.

- A first deployment whose model cannot load leaves a ``Failed`` endpoint, which accepts only
  DeleteEndpoint: the deploy task deletes it (sagemaker:DeleteEndpoint).
- Registering into a new group fails: the provider's operator removes the group it has just
  created (sagemaker:DeleteModelPackageGroup).
- mlops_pipeline under the policy minus sagemaker:CreateTrainingJob: the train task fails with
  AWS's AccessDeniedException, nothing is trained.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sagemaker_mlops import model_configs
from sagemaker_mlops.integrity import ARTIFACT_SHA256_KEY, SOURCEDIR_SHA256_KEY
from sagemaker_mlops.settings import Settings
from sagemaker_mlops.specs import find_spec

from local_sagemaker.iam import load_policy, offline_values, without_action
from local_sagemaker.launcher import EmulatorProcess
from tests.dags._iam_trail import POLICY, IamTrail, check_record
from tests.dags._offline_stack import offline_stack
from tools.dag_worker import FailureRecorder
from tools.run_offline import execute_dag_run, start_emulator

pytestmark = pytest.mark.slow

GROUP = "iam-checks"


@dataclass
class Enforced:
    emulator: EmulatorProcess
    settings: Settings
    trail: IamTrail


@pytest.fixture(scope="module")
def enforced(airflow_db, tmp_path_factory) -> Iterator[Enforced]:
    data_dir = tmp_path_factory.mktemp("iam-emulator")
    emulator = start_emulator(data_dir, iam_policy=POLICY, iam_audit=data_dir / "iam-audit.jsonl")
    try:
        with offline_stack(emulator, []) as settings:
            yield Enforced(emulator, settings, IamTrail(data_dir / "iam-audit.jsonl"))
    finally:
        assert emulator.stop() == 0, emulator.log()[-3000:]


@pytest.fixture(autouse=True)
def _iam_calls(request, enforced):
    with enforced.trail.attribute(request.node.nodeid):
        yield


def test_a_failed_first_deployment_deletes_its_endpoint(enforced):
    """The only approved version cannot load: the endpoint ends Failed and the task deletes it."""
    admin = enforced.emulator.client("sagemaker")
    spec, bucket = find_spec("california_housing"), enforced.settings.bucket
    s3 = enforced.emulator.client("s3")
    artifact, sourcedir = b"not a model", b"not a tarball"
    s3.put_object(Bucket=bucket, Key="broken/model.tar.gz", Body=artifact)
    s3.put_object(Bucket=bucket, Key="broken/sourcedir.tar.gz", Body=sourcedir)
    # the recorded hashes match, so the integrity check passes and the deployment itself fails
    metadata = {"run_id": "none", ARTIFACT_SHA256_KEY: hashlib.sha256(artifact).hexdigest(),
                SOURCEDIR_SHA256_KEY: hashlib.sha256(sourcedir).hexdigest()}
    admin.create_model_package_group(ModelPackageGroupName=spec.model_package_group)
    admin.create_model_package(ModelPackageGroupName=spec.model_package_group, **model_configs.model_package_extras(
        image_uri=enforced.settings.image_uri, model_artifact=f"s3://{bucket}/broken/model.tar.gz",
        sourcedir_uri=f"s3://{bucket}/broken/sourcedir.tar.gz", region=enforced.settings.region,
        evaluation_json_uri=f"s3://{bucket}/broken/evaluation.json", metadata=metadata,
        description="cannot load", approval_status="Approved"))

    result = execute_dag_run("deploy_approved_model", {"pipeline": spec.name})

    assert result["tasks"]["deploy_serverless"] == "failed", result
    configs = admin.list_endpoint_configs()["EndpointConfigs"]
    assert configs, "the deployment never reached CreateEndpointConfig/CreateEndpoint"
    assert spec.endpoint_name not in {e["EndpointName"] for e in admin.list_endpoints()["Endpoints"]}


def test_a_failed_registration_removes_the_group_it_created(enforced):
    from airflow.providers.amazon.aws.operators.sagemaker import (
        SageMakerRegisterModelVersionOperator,
    )
    from botocore.exceptions import ClientError

    operator = SageMakerRegisterModelVersionOperator(
        task_id="register_model", image_uri=enforced.settings.image_uri, package_group_name=GROUP,
        model_url="not-an-s3-uri")  # CreateModelPackage refuses it: ValidationException
    with pytest.raises(ClientError, match="ValidationException"):
        operator.execute(context={})
    groups = enforced.emulator.client("sagemaker").list_model_package_groups()["ModelPackageGroupSummaryList"]
    assert GROUP not in {g["ModelPackageGroupName"] for g in groups}


def test_the_policy_allowed_every_call_and_the_record_is_current(enforced):
    check_record(enforced.trail, "test_iam_policy_e2e")


def test_without_create_training_job_the_train_task_fails_with_access_denied(airflow_db, tmp_path):
    reduced = without_action(json.loads(POLICY.read_text()), "sagemaker:CreateTrainingJob")
    policy = tmp_path / "airflow-policy-without-CreateTrainingJob.json"
    policy.write_text(json.dumps(reduced))
    assert "sagemaker:CreateTrainingJob" not in json.dumps(load_policy(policy, _values()))
    emulator = start_emulator(tmp_path / "emulator", iam_policy=policy, iam_audit=tmp_path / "audit.jsonl")
    try:
        with offline_stack(emulator, [find_spec("california_housing")]):
            recorder = FailureRecorder.register()
            try:
                result = execute_dag_run("mlops_pipeline")
            finally:
                _unregister(recorder)
        assert result["tasks"]["preprocess"] == "success", result
        assert result["tasks"]["train"] == "failed", result
        assert "AccessDeniedException" in recorder.reasons["train"], recorder.reasons
        assert ("is not authorized to perform: sagemaker:CreateTrainingJob on resource: "
                "arn:aws:sagemaker:us-east-1:123456789012:training-job/mlops-train-") in recorder.reasons["train"]
        assert "because no identity-based policy allows the sagemaker:CreateTrainingJob action" \
            in recorder.reasons["train"]
        assert emulator.client("sagemaker").list_training_jobs()["TrainingJobSummaries"] == []
    finally:
        assert emulator.stop() == 0, emulator.log()[-3000:]


def _values() -> dict[str, str]:
    return offline_values("us-east-1", {})


def _unregister(recorder: Any) -> None:
    from airflow.sdk.listener import get_listener_manager

    manager = get_listener_manager()
    if manager.pm.is_registered(recorder):
        manager.pm.unregister(recorder)
