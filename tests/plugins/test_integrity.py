"""Integrity before serving, against moto's S3 and SageMaker registry (in-process): the objects a
version serves are hashed again and compared with what registration recorded."""

from __future__ import annotations

import hashlib

import boto3
import pytest
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.common.compat.sdk import AirflowFailException
from moto import mock_aws
from sagemaker_mlops import integrity, registry
from sagemaker_mlops.deploy_operator import ServerlessDeployOperator
from sagemaker_mlops.integrity import IntegrityError
from sagemaker_mlops.s3io import s3_sha256

BUCKET = "models"
MODEL_URI = f"s3://{BUCKET}/runs/r1/model/model.tar.gz"
SOURCE_URI = f"s3://{BUCKET}/runs/r1/code/sourcedir.tar.gz"
MODEL, SOURCE = b"model bytes " * 1000, b"serving code"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", '{"conn_type": "aws", "extra": {"region_name": "us-east-1"}}')
    for key, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key=MODEL_URI.split("/", 3)[3], Body=MODEL)
        s3.put_object(Bucket=BUCKET, Key=SOURCE_URI.split("/", 3)[3], Body=SOURCE)
        sagemaker = boto3.client("sagemaker")
        sagemaker.create_model_package_group(ModelPackageGroupName="g")
        yield s3, sagemaker


def register(sagemaker, **metadata: str) -> registry.ModelVersion:
    arn = sagemaker.create_model_package(
        ModelPackageGroupName="g", ModelApprovalStatus="Approved",
        InferenceSpecification={
            "Containers": [{"Image": "img", "ModelDataUrl": MODEL_URI,
                            "Environment": {registry.SUBMIT_DIRECTORY_ENV: SOURCE_URI}}],
            "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"],
        },
        CustomerMetadataProperties=registry.customer_metadata(metadata),
    )["ModelPackageArn"]
    return registry.describe_version(sagemaker, arn)


def recorded() -> dict[str, str]:
    return {integrity.ARTIFACT_SHA256_KEY: sha(MODEL), integrity.SOURCEDIR_SHA256_KEY: sha(SOURCE)}


def test_s3_sha256_streams_the_object_and_names_a_missing_one(aws):
    hook = S3Hook()
    assert s3_sha256(hook, MODEL_URI) == sha(MODEL)
    with pytest.raises(Exception, match=f"s3://{BUCKET}/nowhere.tar.gz does not exist"):
        s3_sha256(hook, f"s3://{BUCKET}/nowhere.tar.gz")


def test_version_serves_the_artifact_and_the_submit_directory(aws):
    _, sagemaker = aws
    version = register(sagemaker, **recorded())
    assert [(o.uri, o.metadata_key) for o in integrity.served_objects(version)] == [
        (MODEL_URI, "artifact_sha256"), (SOURCE_URI, "sourcedir_sha256")]
    lines = integrity.verify(version, lambda uri: s3_sha256(S3Hook(), uri))
    assert lines == [f"model artifact {MODEL_URI} sha256 {sha(MODEL)} matches the registration",
                     f"serving code {SOURCE_URI} sha256 {sha(SOURCE)} matches the registration"]


@pytest.mark.parametrize(("uri", "label", "original"), [(MODEL_URI, "model artifact", MODEL),
                                                         (SOURCE_URI, "serving code", SOURCE)])
def test_an_overwritten_object_is_refused_with_both_hashes(aws, uri, label, original):
    s3, sagemaker = aws
    version = register(sagemaker, **recorded())
    s3.put_object(Bucket=BUCKET, Key=uri.split("/", 3)[3], Body=b"tampered")
    with pytest.raises(IntegrityError) as error:
        integrity.verify(version, lambda u: s3_sha256(S3Hook(), u))
    assert str(error.value) == (
        f"{label} {uri} changed since registration: sha256 {sha(b'tampered')} now, "
        f"{sha(original)} registered; the endpoint is untouched")


def test_a_version_without_recorded_hashes_cannot_be_verified(aws):
    _, sagemaker = aws
    version = register(sagemaker, artifact_sha256=sha(MODEL))
    with pytest.raises(IntegrityError, match="version 1 has no sourcedir_sha256 in its registry metadata"):
        integrity.verify(version, lambda u: s3_sha256(S3Hook(), u))


def test_deploy_refuses_a_tampered_version_before_creating_anything(aws):
    s3, sagemaker = aws
    version = register(sagemaker, **recorded())
    s3.put_object(Bucket=BUCKET, Key=MODEL_URI.split("/", 3)[3], Body=b"tampered")
    operator = ServerlessDeployOperator(
        task_id="deploy_serverless", model_package_arn=version.arn, endpoint_name="e",
        role_arn="arn:aws:iam::123456789012:role/r", memory_mb=2048, max_concurrency=5,
        check_interval=0,
    )
    with pytest.raises(AirflowFailException) as error:  # deterministic: never retried
        operator.execute(context={"run_id": "manual__1"})
    assert str(error.value).startswith(f"version 1 not deployed: model artifact {MODEL_URI} changed")
    assert sha(b"tampered") in str(error.value) and sha(MODEL) in str(error.value)
    assert sagemaker.list_models()["Models"] == []
    assert sagemaker.list_endpoint_configs()["EndpointConfigs"] == []
    assert sagemaker.list_endpoints()["Endpoints"] == []
    package = sagemaker.describe_model_package(ModelPackageName=version.arn)
    assert package["ModelApprovalStatus"] == "Approved"  # the people who approved it decide
