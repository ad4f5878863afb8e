"""Registry look-ups against moto's SageMaker model registry (in-process)."""

from __future__ import annotations

import boto3
import botocore.session
import pytest
import regex
from moto import mock_aws
from sagemaker_mlops import registry
from sagemaker_mlops.registry import RegistryError

GROUP = "california-housing"


@pytest.fixture
def sagemaker():
    with mock_aws():
        yield boto3.client(
            "sagemaker", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
        )


def register(client, run_id: str, approval: str = "Approved", **metadata: str) -> str:
    return client.create_model_package(
        ModelPackageGroupName=GROUP,
        ModelApprovalStatus=approval,
        InferenceSpecification={
            "Containers": [{"Image": "img", "ModelDataUrl": f"s3://b/{run_id}/model.tar.gz"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
        ModelMetrics={"ModelQuality": {"Statistics": {
            "ContentType": "application/json", "S3Uri": f"s3://b/{run_id}/evaluation.json"}}},
        CustomerMetadataProperties=registry.customer_metadata({registry.RUN_ID_KEY: run_id, **metadata}),
    )["ModelPackageArn"]


def test_no_group_means_no_champion(sagemaker):
    assert registry.find_champion(sagemaker, GROUP) is None
    assert registry.find_run_version(sagemaker, GROUP, "run-1") is None


def test_champion_is_the_latest_approved_version(sagemaker):
    sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
    register(sagemaker, "run-1")
    second = register(sagemaker, "run-2")
    register(sagemaker, "run-3", approval="PendingManualApproval")
    champion = registry.find_champion(sagemaker, GROUP)
    assert (champion.arn, champion.version, champion.approval_status) == (second, 2, "Approved")
    assert champion.model_data_url == "s3://b/run-2/model.tar.gz"
    assert champion.evaluation_uri == "s3://b/run-2/evaluation.json"
    registry.reject_version(sagemaker, second, "smoke check failed")
    assert registry.find_champion(sagemaker, GROUP).version == 1


def test_find_run_version_finds_what_a_run_registered(sagemaker):
    sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
    first = register(sagemaker, "run-1")
    register(sagemaker, "run-2")
    assert registry.find_run_version(sagemaker, GROUP, "run-1").arn == first
    assert registry.find_run_version(sagemaker, GROUP, "run-9") is None


def test_find_version_for_deploy_and_rollback(sagemaker):
    sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
    with pytest.raises(RegistryError, match="no Approved version"):
        registry.find_version(sagemaker, GROUP, None)
    first = register(sagemaker, "run-1")
    register(sagemaker, "run-2", approval="PendingManualApproval")
    assert registry.find_version(sagemaker, GROUP, None).arn == first
    assert registry.find_version(sagemaker, GROUP, 1).arn == first
    with pytest.raises(RegistryError, match="version 2 of 'california-housing' is PendingManualApproval"):
        registry.find_version(sagemaker, GROUP, 2)
    with pytest.raises(RegistryError, match="has no version 7"):
        registry.find_version(sagemaker, GROUP, 7)


def version_with(metadata: dict[str, str]) -> registry.ModelVersion:
    return registry.ModelVersion("arn", 4, "Approved", "s3://b/m.tar.gz", None, metadata)


def test_champion_must_solve_the_same_task():
    registry.check_same_task(None, "classification", "expensive")
    registry.check_same_task(version_with({}), "regression", "median_house_value")  # older versions
    same = version_with({"problem_type": "regression", "target": "median_house_value"})
    registry.check_same_task(same, "regression", "median_house_value")
    with pytest.raises(RegistryError) as error:
        registry.check_same_task(same, "classification", "expensive")
    assert str(error.value) == (
        "the champion (version 4) of this model package group has problem_type 'regression', "
        "target 'median_house_value', this run problem_type 'classification', target 'expensive'; "
        "another task needs its own pipeline spec (its own model_package_group, endpoint_name "
        "and s3_prefix)"
    )


METADATA_SHAPE = botocore.session.get_session().get_service_model("sagemaker").shape_for("CustomerMetadataMap")


def _allowed(shape, text: str) -> bool:
    return bool(regex.fullmatch(shape.metadata["pattern"], text)) and 1 <= len(text) <= shape.metadata["max"]


@pytest.mark.parametrize(("text", "encoded"), [
    ("Quality gate PASSED on 95% interval bounds: 3/3 checks passed",
     "Quality gate PASSED on 95 pct interval bounds: 3/3 checks passed"),
    ("r2_score >= 0.6 (champion 0.61), rmse<=5e4 | f1 > 0.8",
     "r2_score ge 0.6 champion 0.61 rmse le 5e4 / f1 gt 0.8"),
    ("manual__2026-11-26T10:00:00.123456+00:00", "manual__2026-11-26T10:00:00.123456+00:00"),
    ("price ($)", "price _"),
    ("Modèle n\u0303 #2; \"band\"\tok", "Modèle ñ no. 2 band ok"),
    ("x" * 300, "x" * 256),
])
def test_metadata_is_rewritten_to_the_api_character_set(text, encoded):
    assert registry.metadata_text(text) == encoded
    assert _allowed(METADATA_SHAPE.value, encoded)
    assert _allowed(METADATA_SHAPE.key, registry.metadata_text(text, registry.METADATA_KEY_MAX))


def test_customer_metadata_drops_empty_values_and_caps_entries():
    assert registry.customer_metadata({"a (b)": "%", "run_id": "r 1", "empty": ""}) == {
        "a b": "pct", "run_id": "r 1"}
    with pytest.raises(ValueError, match="51 metadata entries; SageMaker allows 50"):
        registry.customer_metadata({f"k{i}": "v" for i in range(51)})


def test_look_ups_compare_with_the_encoded_values(sagemaker):
    sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
    arn = register(sagemaker, "my run #1 (retry)", target="price ($)", problem_type="regression")
    version = registry.find_run_version(sagemaker, GROUP, "my run #1 (retry)")
    assert version.arn == arn and version.metadata["run_id"] == "my run no. 1 retry"
    registry.check_same_task(version, "regression", "price ($)")
    with pytest.raises(RegistryError, match="target 'price _'"):
        registry.check_same_task(version, "regression", "price")
