"""The single endpoint routes each request to the right service."""

from __future__ import annotations

import json
import urllib.request

import pytest

from tests.emulator._core_helpers import aws_error

pytestmark = pytest.mark.slow


def test_health(emulator):
    with urllib.request.urlopen(f"{emulator.url}/health") as response:
        assert json.load(response) == {"status": "ok", "service": "local_sagemaker"}


def test_iam_sts_and_logs_are_served_by_moto(emulator):
    iam = emulator.client("iam")
    role = iam.create_role(RoleName="SageMakerRole-routing", AssumeRolePolicyDocument="{}")["Role"]
    assert iam.get_role(RoleName="SageMakerRole-routing")["Role"]["Arn"] == role["Arn"]
    assert emulator.client("sts").get_caller_identity()["Account"] == "123456789012"
    logs = emulator.client("logs")
    logs.create_log_group(logGroupName="/routing/test")
    assert [g["logGroupName"] for g in logs.describe_log_groups(logGroupNamePrefix="/routing/")["logGroups"]] == [
        "/routing/test"]


def test_s3_paths_that_look_like_runtime_paths_still_reach_s3(emulator):
    s3 = emulator.client("s3")
    s3.create_bucket(Bucket="endpoints")
    s3.put_object(Bucket="endpoints", Key="model/invocations", Body=b"not an invocation")
    assert s3.get_object(Bucket="endpoints", Key="model/invocations")["Body"].read() == b"not an invocation"


def test_unimplemented_sagemaker_operation_says_so(emulator):
    error, response = aws_error(emulator.client("sagemaker").list_notebook_instances)
    assert error["Code"] == "NotImplementedError"
    assert "ListNotebookInstances" in error["Message"]
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 501
