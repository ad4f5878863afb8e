"""deploy.restore against endpoints that really serve: a Failed endpoint is deleted and re-created."""

from __future__ import annotations

import uuid

import pytest
from sagemaker_mlops import deploy

from tests.emulator._core_helpers import (
    MODEL_FN_ENTRY_POINT,
    ROLE_ARN,
    SKLEARN_IMAGE,
    aws_error,
    model_tarball,
    tarball,
    unique,
    wait_for,
)

pytestmark = pytest.mark.slow

INFERENCE_PY = MODEL_FN_ENTRY_POINT


def _config(sm, model_data: str, source: str) -> str:
    model = unique("model")
    sm.create_model(ModelName=model, ExecutionRoleArn=ROLE_ARN, PrimaryContainer={
        "Image": SKLEARN_IMAGE, "ModelDataUrl": model_data,
        "Environment": {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": source}})
    name = unique("config")
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": model,
        "ServerlessConfig": {"MemorySizeInMB": 1024, "MaxConcurrency": 5}}])
    return name


def test_restore_recreates_a_failed_endpoint_on_the_previous_config(emulator):
    sm, s3 = emulator.client("sagemaker"), emulator.client("s3")
    bucket = f"restore-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="m/model.tar.gz", Body=model_tarball(2))
    s3.put_object(Bucket=bucket, Key="code/sourcedir.tar.gz", Body=tarball({"inference.py": INFERENCE_PY}))
    source = f"s3://{bucket}/code/sourcedir.tar.gz"
    good = _config(sm, f"s3://{bucket}/m/model.tar.gz", source)
    broken = _config(sm, f"s3://{bucket}/missing/model.tar.gz", source)
    endpoint = unique("restore")
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=broken)
    failed = wait_for(lambda: sm.describe_endpoint(EndpointName=endpoint), "EndpointStatus", ("Creating",))
    assert failed["EndpointStatus"] == "Failed"
    error, _ = aws_error(sm.update_endpoint, EndpointName=endpoint, EndpointConfigName=good)
    assert error["Code"] == "ValidationException"  # why restore cannot simply update it

    message = deploy.restore(sm, endpoint, good, delay=0.2)
    assert message == f"created endpoint {endpoint} again on {good} (it was Failed or gone)"
    restored = sm.describe_endpoint(EndpointName=endpoint)
    assert (restored["EndpointStatus"], restored["EndpointConfigName"]) == ("InService", good)
    sm.delete_endpoint(EndpointName=endpoint)
