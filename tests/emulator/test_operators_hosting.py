"""The provider's Model / EndpointConfig / Endpoint operators, unmodified, against the emulator."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.emulator._core_helpers import (
    MODEL_FN_ENTRY_POINT,
    ROLE_ARN,
    SKLEARN_IMAGE,
    model_tarball,
    tarball,
    unique,
)

pytestmark = pytest.mark.slow

INFERENCE_PY = MODEL_FN_ENTRY_POINT


@pytest.fixture(scope="module")
def artifacts(emulator):
    s3 = emulator.client("s3")
    bucket = f"operators-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    for coef in (2, 3):
        s3.put_object(Bucket=bucket, Key=f"models/v{coef}/model.tar.gz", Body=model_tarball(coef))
    s3.put_object(Bucket=bucket, Key="code/sourcedir.tar.gz", Body=tarball({"inference.py": INFERENCE_PY}))
    return bucket


def _deploy_model_and_config(conn_id: str, bucket: str, coef: int) -> str:
    from airflow.providers.amazon.aws.operators.sagemaker import (
        SageMakerEndpointConfigOperator,
        SageMakerModelOperator,
    )

    model_name, config_name = unique("model"), unique("config")
    model = SageMakerModelOperator(task_id="model", aws_conn_id=conn_id, config={
        "ModelName": model_name, "ExecutionRoleArn": ROLE_ARN,
        "PrimaryContainer": {"Image": SKLEARN_IMAGE,
                             "ModelDataUrl": f"s3://{bucket}/models/v{coef}/model.tar.gz",
                             "Environment": {"SAGEMAKER_PROGRAM": "inference.py",
                                             "SAGEMAKER_SUBMIT_DIRECTORY": f"s3://{bucket}/code/sourcedir.tar.gz"}}})
    assert model.execute(context={})["Model"]["ModelName"] == model_name
    config = SageMakerEndpointConfigOperator(task_id="config", aws_conn_id=conn_id, config={
        "EndpointConfigName": config_name,
        "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": model_name,
                                "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5}}]})
    described = config.execute(context={})["EndpointConfig"]
    assert described["ProductionVariants"][0]["ServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 5}
    return config_name


def test_endpoint_operator_creates_then_falls_back_to_update(aws_conn_env, emulator, artifacts):
    from airflow.providers.amazon.aws.operators.sagemaker import SageMakerEndpointOperator

    endpoint = unique("endpoint")
    runtime = emulator.client("sagemaker-runtime")
    predictions = []
    for coef in (2, 3):
        config_name = _deploy_model_and_config(aws_conn_env, artifacts, coef)
        op = SageMakerEndpointOperator(
            task_id="deploy", aws_conn_id=aws_conn_env, operation="create", check_interval=1,
            config={"EndpointName": endpoint, "EndpointConfigName": config_name})
        result = op.execute(context={})  # the second round hits "Cannot create already existing endpoint"
        assert result["Endpoint"]["EndpointStatus"] == "InService"
        assert result["Endpoint"]["EndpointConfigName"] == config_name
        response = runtime.invoke_endpoint(EndpointName=endpoint, ContentType="application/json",
                                           Body="[[1.0, 0.0]]")
        predictions.append(json.loads(response["Body"].read())[0])
    assert predictions == pytest.approx([2.0, 3.0], abs=1e-3)
    emulator.client("sagemaker").delete_endpoint(EndpointName=endpoint)
