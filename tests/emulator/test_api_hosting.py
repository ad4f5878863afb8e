"""Models, endpoint configs and endpoints over real HTTP: real model servers really serve."""

from __future__ import annotations

import io
import json
import tarfile
import uuid

import joblib
import numpy as np
import pytest

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

ROW = [0.5, 1.5]


@pytest.fixture(scope="module")
def artifacts(emulator):
    """Two fitted models (y = 2*x1 + x2 and y = 3*x1 + x2), their code, and a missing model."""
    s3 = emulator.client("s3")
    bucket = f"hosting-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    uris = {}
    for coef in (2, 3):
        body = model_tarball(coef)
        s3.put_object(Bucket=bucket, Key=f"models/v{coef}/model.tar.gz", Body=body)
        uris[coef] = f"s3://{bucket}/models/v{coef}/model.tar.gz"
    s3.put_object(Bucket=bucket, Key="code/sourcedir.tar.gz", Body=tarball({"inference.py": INFERENCE_PY}))
    return {"model": uris, "source": f"s3://{bucket}/code/sourcedir.tar.gz",
            "missing": f"s3://{bucket}/models/missing/model.tar.gz"}


def local_prediction(model_tar_uri: str, emulator) -> float:
    """What the model in the artifact predicts for ROW when loaded in this process."""
    bucket, key = model_tar_uri[len("s3://"):].split("/", 1)
    body = emulator.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        model = joblib.load(tar.extractfile("model.joblib"))
    return float(model.predict(np.array([ROW]))[0])


def create_model(sm, model_data: str, source: str | None) -> str:
    name = unique("model")
    env = {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": source} if source else {}
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE_ARN,
                    PrimaryContainer={"Image": SKLEARN_IMAGE, "ModelDataUrl": model_data,
                                      "Environment": env})
    return name


def create_config(sm, model_name: str, serverless: bool = True) -> str:
    name = unique("config")
    variant = {"VariantName": "AllTraffic", "ModelName": model_name}
    if serverless:
        variant["ServerlessConfig"] = {"MemorySizeInMB": 1024, "MaxConcurrency": 20}
    else:
        variant.update(InstanceType="ml.m5.large", InitialInstanceCount=1)
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[variant])
    return name


def settled(sm, name: str) -> dict:
    return wait_for(lambda: sm.describe_endpoint(EndpointName=name), "EndpointStatus",
                    ("Creating", "Updating", "SystemUpdating"))


def invoke_rows(runtime, name: str, row: list[float]) -> float:
    """The image's default input_fn: a JSON list of rows (one CSV row would decode to 1-D)."""
    response = runtime.invoke_endpoint(EndpointName=name, ContentType="application/json",
                                       Accept="application/json", Body=json.dumps([row]))
    return float(np.ravel(json.loads(response["Body"].read()))[0])


def test_endpoint_lifecycle_update_rollback_and_delete(emulator, artifacts):
    sm, runtime = emulator.client("sagemaker"), emulator.client("sagemaker-runtime")
    v2 = create_config(sm, create_model(sm, artifacts["model"][2], artifacts["source"]))
    endpoint = unique("endpoint")
    arn = sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=v2)["EndpointArn"]
    assert arn == f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{endpoint}"
    assert sm.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] in ("Creating", "InService")
    sm.get_waiter("endpoint_in_service").wait(EndpointName=endpoint, WaiterConfig={"Delay": 1})
    described = sm.describe_endpoint(EndpointName=endpoint)
    assert described["EndpointConfigName"] == v2
    assert described["ProductionVariants"][0]["CurrentServerlessConfig"]["MaxConcurrency"] == 20
    assert invoke_rows(runtime, endpoint, ROW) == pytest.approx(local_prediction(artifacts["model"][2], emulator), rel=1e-4)

    # the image answers a handler's error with Flask's HTTP 500 page: SageMaker's ModelError
    error, response = aws_error(runtime.invoke_endpoint, EndpointName=endpoint, ContentType="text/csv",
                                Body="not,a-number\n1,2")
    assert error["Code"] == "ModelError"
    assert response["OriginalStatusCode"] == 500
    assert "<title>500 Internal Server Error</title>" in response["OriginalMessage"]
    assert error["Message"] == (
        f'Received server error (500) from primary with message "{response["OriginalMessage"]}". '
        "See https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1"
        f"#logEventViewer:group=/aws/sagemaker/Endpoints/{endpoint} in account 123456789012 "
        "for more information.")
    assert response["LogStreamArn"].endswith(f":log-group:/aws/sagemaker/Endpoints/{endpoint}")
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 424
    logs = emulator.client("logs")
    streams = logs.describe_log_streams(logGroupName=f"/aws/sagemaker/Endpoints/{endpoint}")["logStreams"]
    assert streams and streams[0]["logStreamName"].startswith("AllTraffic/i-")
    wait_for(lambda: {"found": any("could not convert string to float" in e["message"] for e in logs.get_log_events(
        logGroupName=f"/aws/sagemaker/Endpoints/{endpoint}", logStreamName=streams[0]["logStreamName"])["events"])},
        "found", (False,), timeout=10)

    error, _ = aws_error(sm.create_endpoint, EndpointName=endpoint, EndpointConfigName=v2)
    assert error["Code"] == "ValidationException"
    assert error["Message"].startswith("Cannot create already existing endpoint")

    # A config whose model cannot load: SageMaker rolls back silently to the old config.
    broken = create_config(sm, create_model(sm, artifacts["missing"], None))
    sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=broken)
    rolled_back = settled(sm, endpoint)
    assert rolled_back["EndpointStatus"] == "InService"
    assert rolled_back["EndpointConfigName"] == v2
    assert artifacts["missing"] in rolled_back["FailureReason"]
    assert invoke_rows(runtime, endpoint, ROW) == pytest.approx(local_prediction(artifacts["model"][2], emulator), rel=1e-4)

    # A healthy config takes over and clears the FailureReason.
    v3 = create_config(sm, create_model(sm, artifacts["model"][3], artifacts["source"]), serverless=False)
    sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=v3)
    updated = settled(sm, endpoint)
    assert (updated["EndpointStatus"], updated["EndpointConfigName"]) == ("InService", v3)
    assert "FailureReason" not in updated
    assert updated["ProductionVariants"][0]["CurrentInstanceCount"] == 1
    assert invoke_rows(runtime, endpoint, ROW) == pytest.approx(local_prediction(artifacts["model"][3], emulator), rel=1e-4)

    names = [e["EndpointName"] for e in sm.list_endpoints(NameContains=endpoint)["Endpoints"]]
    assert names == [endpoint]
    sm.delete_endpoint(EndpointName=endpoint)
    error, _ = aws_error(runtime.invoke_endpoint, EndpointName=endpoint, ContentType="text/csv", Body="1,2")
    assert (error["Code"], error["Message"]) == (
        "ValidationError", f"Endpoint {endpoint} of account 123456789012 not found.")
    assert aws_error(sm.describe_endpoint, EndpointName=endpoint)[0]["Code"] == "ValidationException"


def test_endpoint_that_cannot_load_fails_with_the_reason(emulator, artifacts):
    sm = emulator.client("sagemaker")
    config = create_config(sm, create_model(sm, artifacts["missing"], None))
    endpoint = unique("broken")
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=config)
    failed = settled(sm, endpoint)
    assert failed["EndpointStatus"] == "Failed"
    assert artifacts["missing"] in failed["FailureReason"]
    error, _ = aws_error(sm.update_endpoint, EndpointName=endpoint, EndpointConfigName=config)
    assert error["Code"] == "ValidationException"
    sm.delete_endpoint(EndpointName=endpoint)


def test_endpoint_serves_a_registered_model_package(emulator, artifacts):
    sm, runtime = emulator.client("sagemaker"), emulator.client("sagemaker-runtime")
    group = unique("pkg")
    sm.create_model_package_group(ModelPackageGroupName=group)
    package = sm.create_model_package(
        ModelPackageGroupName=group, ModelApprovalStatus="Approved",
        InferenceSpecification={"Containers": [{
            "Image": SKLEARN_IMAGE, "ModelDataUrl": artifacts["model"][2],
            "Environment": {"SAGEMAKER_PROGRAM": "inference.py",
                            "SAGEMAKER_SUBMIT_DIRECTORY": artifacts["source"]}}],
            "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]})["ModelPackageArn"]
    model = unique("frompkg")
    sm.create_model(ModelName=model, ExecutionRoleArn=ROLE_ARN, Containers=[{"ModelPackageName": package}])
    endpoint = unique("pkgep")
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=create_config(sm, model))
    assert settled(sm, endpoint)["EndpointStatus"] == "InService"
    rows = json.dumps([ROW, ROW])
    response = runtime.invoke_endpoint(EndpointName=endpoint, ContentType="application/json", Body=rows)
    assert response["InvokedProductionVariant"] == "AllTraffic"
    predictions = np.ravel(json.loads(response["Body"].read()))
    assert predictions == pytest.approx([local_prediction(artifacts["model"][2], emulator)] * 2, rel=1e-4)
    sm.delete_endpoint(EndpointName=endpoint)


def test_target_variant_routes_to_that_variant(emulator, artifacts):
    sm, runtime = emulator.client("sagemaker"), emulator.client("sagemaker-runtime")
    variants = []
    for coef in (2, 3):
        variants.append({"VariantName": f"coef{coef}", "InitialVariantWeight": 0.5,
                         "ModelName": create_model(sm, artifacts["model"][coef], artifacts["source"]),
                         "InstanceType": "ml.m5.large", "InitialInstanceCount": 1})
    config, endpoint = unique("two"), unique("ab")
    sm.create_endpoint_config(EndpointConfigName=config, ProductionVariants=variants)
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=config)
    assert [v["VariantName"] for v in settled(sm, endpoint)["ProductionVariants"]] == ["coef2", "coef3"]
    for coef in (2, 3):
        response = runtime.invoke_endpoint(EndpointName=endpoint, ContentType="application/json",
                                           Body="[[1.0, 0.0]]", TargetVariant=f"coef{coef}")
        assert response["InvokedProductionVariant"] == f"coef{coef}"
        assert json.loads(response["Body"].read())[0] == pytest.approx(coef, abs=1e-3)
    error, _ = aws_error(runtime.invoke_endpoint, EndpointName=endpoint, ContentType="text/csv",
                         Body="1.0,0.0", TargetVariant="nope")
    assert error["Code"] == "ValidationError" and "nope" in error["Message"]
    sm.delete_endpoint(EndpointName=endpoint)


def test_hosting_errors_use_aws_codes_and_messages(emulator, artifacts):
    sm = emulator.client("sagemaker")
    for call, key in ((sm.describe_model, "ModelName"), (sm.describe_endpoint_config, "EndpointConfigName"),
                      (sm.describe_endpoint, "EndpointName")):
        error, _ = aws_error(call, **{key: "does-not-exist"})
        assert error["Code"] == "ValidationException" and "does-not-exist" in error["Message"]
    model = create_model(sm, artifacts["model"][2], artifacts["source"])
    error, _ = aws_error(sm.create_model, ModelName=model, ExecutionRoleArn=ROLE_ARN,
                      PrimaryContainer={"Image": SKLEARN_IMAGE, "ModelDataUrl": artifacts["model"][2]})
    assert error["Message"].startswith("Cannot create already existing model")
    # AWS refuses an image it cannot pull at CreateModel; here: one without an environment
    error, _ = aws_error(sm.create_model, ModelName=unique("model"), ExecutionRoleArn=ROLE_ARN,
                         PrimaryContainer={"Image": "my/own:1", "ModelDataUrl": artifacts["model"][2]})
    assert error["Code"] == "ValidationException"
    assert error["Message"].startswith("Image my/own:1 is not supported by the local emulator. Supported images: sklearn-1.4-2")
    error, _ = aws_error(sm.create_endpoint_config, EndpointConfigName=unique("cfg"),
                      ProductionVariants=[{"VariantName": "v", "ModelName": "no-such-model",
                                           "ServerlessConfig": {"MemorySizeInMB": 1024, "MaxConcurrency": 1}}])
    assert error["Code"] == "ValidationException" and "no-such-model" in error["Message"]
    error, _ = aws_error(sm.create_endpoint, EndpointName=unique("ep"), EndpointConfigName="no-such-config")
    assert error["Code"] == "ValidationException" and "no-such-config" in error["Message"]
    sm.delete_model(ModelName=model)
    assert aws_error(sm.describe_model, ModelName=model)[0]["Code"] == "ValidationException"
