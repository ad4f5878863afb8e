"""Plain helpers for the control-plane tests: names, polling, request builders, a tiny model."""

from __future__ import annotations

import io
import tarfile
import textwrap
import time
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

ROLE_ARN = "arn:aws:iam::123456789012:role/SageMakerRole"
# SageMaker's scikit-learn 1.4-2 image, as the SDK names it in us-east-1: jobs run in its environment.
SKLEARN_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.4-2-cpu-py3"


def script(text: str) -> str:
    """A script body written indented inside a test."""
    return textwrap.dedent(text).lstrip()


def aws_error(call, **kwargs) -> tuple[dict, dict]:
    """Call an API that must fail: (the error's Code/Message, the whole error response)."""
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return caught.value.response["Error"], caught.value.response


def unique(prefix: str) -> str:
    """A valid SageMaker name unique to one test."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def wait_for(describe, key: str, pending: tuple[str, ...], timeout: float = 120) -> dict:
    """Poll a Describe call until ``key`` leaves the pending statuses."""
    deadline = time.monotonic() + timeout
    while True:
        response = describe()
        if response[key] not in pending:
            return response
        if time.monotonic() > deadline:
            raise TimeoutError(f"{key} still {response[key]} after {timeout} s")
        time.sleep(0.05)


def tarball(files: dict[str, str | bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def processing_request(name: str, code_uri: str, inputs: list[dict[str, Any]],
                       output_uri: str | None = None, instance_count: int = 1,
                       arguments: list[str] | None = None) -> dict[str, Any]:
    """A CreateProcessingJob request running ``code_uri`` with python3, as the DAG writes them."""
    processing_inputs = [{"InputName": "code", "S3Input": {
        "S3Uri": code_uri, "LocalPath": "/opt/ml/processing/input/code", "S3DataType": "S3Prefix",
        "S3InputMode": "File", "S3DataDistributionType": "FullyReplicated"}}]
    for item in inputs:
        processing_inputs.append({"InputName": item["name"], "S3Input": {
            "S3Uri": item["uri"], "LocalPath": f"/opt/ml/processing/input/{item['name']}",
            "S3DataType": "S3Prefix", "S3InputMode": "File",
            "S3DataDistributionType": item.get("distribution", "FullyReplicated")}})
    script_name = code_uri.rsplit("/", 1)[-1]
    request: dict[str, Any] = {
        "ProcessingJobName": name, "RoleArn": ROLE_ARN,
        "AppSpecification": {"ImageUri": SKLEARN_IMAGE,
                             "ContainerEntrypoint": ["python3", f"/opt/ml/processing/input/code/{script_name}"],
                             **({"ContainerArguments": arguments} if arguments else {})},
        "ProcessingResources": {"ClusterConfig": {"InstanceCount": instance_count,
                                                  "InstanceType": "ml.m5.large", "VolumeSizeInGB": 1}},
        "ProcessingInputs": processing_inputs,
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }
    if output_uri:
        request["ProcessingOutputConfig"] = {"Outputs": [{"OutputName": "result", "S3Output": {
            "S3Uri": output_uri, "LocalPath": "/opt/ml/processing/output", "S3UploadMode": "EndOfJob"}}]}
    return request


def training_request(name: str, source_uri: str, train_uri: str, output_path: str, *,
                     program: str = "train.py", hyperparameters: dict[str, str] | None = None,
                     max_runtime: int = 600) -> dict[str, Any]:
    """A script-mode CreateTrainingJob request (the SageMaker SDK's hyperparameter layout)."""
    return {
        "TrainingJobName": name, "RoleArn": ROLE_ARN,
        "AlgorithmSpecification": {
            "TrainingImage": SKLEARN_IMAGE, "TrainingInputMode": "File",
            "MetricDefinitions": [{"Name": "validation:rmse", "Regex": r"validation rmse=([0-9.]+)"}]},
        "HyperParameters": {"sagemaker_program": f'"{program}"',
                            "sagemaker_submit_directory": f'"{source_uri}"',
                            **(hyperparameters or {})},
        "InputDataConfig": [{"ChannelName": "train", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": train_uri, "S3DataDistributionType": "FullyReplicated"}}}],
        "OutputDataConfig": {"S3OutputPath": output_path},
        "ResourceConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime},
    }


# The image has no default model_fn: every served model names an entry point that loads it.
MODEL_FN_ENTRY_POINT = script("""
    import os
    import joblib

    def model_fn(model_dir):
        return joblib.load(os.path.join(model_dir, "model.joblib"))
""")


def model_tarball(coef: float = 2.0) -> bytes:
    """model.tar.gz holding a fitted sklearn Pipeline as model.joblib (y = coef*x1 + x2)."""
    import joblib
    import numpy as np
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 2))
    y = coef * x[:, 0] + x[:, 1]
    pipeline = make_pipeline(StandardScaler(), LinearRegression()).fit(x, y)
    buf = io.BytesIO()
    joblib.dump(pipeline, buf)
    return tarball({"model.joblib": buf.getvalue()})


def serving_container(s3, bucket: str, model_key: str) -> dict[str, Any]:
    """An sklearn 1.4-2 container serving ``model_key`` through an uploaded inference.py."""
    s3.put_object(Bucket=bucket, Key="serve/sourcedir.tar.gz",
                  Body=tarball({"inference.py": MODEL_FN_ENTRY_POINT}))
    return {"Image": SKLEARN_IMAGE, "ModelDataUrl": f"s3://{bucket}/{model_key}",
            "Environment": {"SAGEMAKER_PROGRAM": "inference.py",
                            "SAGEMAKER_SUBMIT_DIRECTORY": f"s3://{bucket}/serve/sourcedir.tar.gz"}}


def serve(sm, model_name: str, label: str) -> str:
    """A serverless endpoint for ``model_name``; returns the endpoint's name."""
    config, endpoint = unique(f"{label}-config"), unique(label)
    sm.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": model_name,
        "ServerlessConfig": {"MemorySizeInMB": 1024, "MaxConcurrency": 2}}])
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=config)
    return endpoint
