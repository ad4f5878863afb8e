"""The decision table of resumable SageMaker tasks: attach, reuse, or start the next job."""

from __future__ import annotations

import pytest
from sagemaker_mlops.job_attempts import (
    Action,
    PreviousJob,
    attempt_name,
    decide,
    same_request,
)
from sagemaker_mlops.naming import MAX_NAME_LENGTH

BASE = "mlops-train-20261123T170000-1a2b3c4d"


def test_attempt_names_stay_valid_sagemaker_names():
    assert attempt_name(BASE, 1) == BASE
    assert attempt_name(BASE, 2) == f"{BASE}-r2"
    long = "x" * MAX_NAME_LENGTH
    assert len(attempt_name(long, 12)) == MAX_NAME_LENGTH
    assert attempt_name(long, 12).endswith("-r12")


@pytest.mark.parametrize(("previous", "action", "name", "wait_for"), [
    ([], Action.START, BASE, None),
    ([PreviousJob(BASE, "InProgress", True)], Action.ATTACH, BASE, None),
    ([PreviousJob(BASE, "Stopping", True)], Action.ATTACH, BASE, None),
    ([PreviousJob(BASE, "Completed", True)], Action.REUSE, BASE, None),
    ([PreviousJob(BASE, "Failed", True)], Action.START, f"{BASE}-r2", None),
    ([PreviousJob(BASE, "Stopped", True)], Action.START, f"{BASE}-r2", None),
    ([PreviousJob(BASE, "Completed", False)], Action.START, f"{BASE}-r2", None),
    ([PreviousJob(BASE, "InProgress", False)], Action.START, f"{BASE}-r2", BASE),
    ([PreviousJob(BASE, "Failed", True), PreviousJob(f"{BASE}-r2", "InProgress", True)],
     Action.ATTACH, f"{BASE}-r2", None),
    ([PreviousJob(BASE, "Failed", True), PreviousJob(f"{BASE}-r2", "Failed", True)],
     Action.START, f"{BASE}-r3", None),
])
def test_the_latest_job_decides(previous, action, name, wait_for):
    decision = decide(BASE, previous)
    assert (decision.action, decision.name, decision.wait_for) == (action, name, wait_for)


def test_same_request_ignores_fields_describe_adds_but_not_changed_values():
    request = {"RoleArn": "arn:r", "ProcessingInputs": [{"InputName": "raw", "S3Input": {"S3Uri": "s3://b/a"}}],
               "StoppingCondition": {"MaxRuntimeInSeconds": 3600}}
    described = {"RoleArn": "arn:r", "ProcessingJobStatus": "Completed",
                 "ProcessingInputs": [{"InputName": "raw", "AppManaged": False,
                                       "S3Input": {"S3Uri": "s3://b/a", "S3CompressionType": "None"}}],
                 "StoppingCondition": {"MaxRuntimeInSeconds": 3600}}
    assert same_request(request, described)
    changed = {**request, "ProcessingInputs": [{"InputName": "raw", "S3Input": {"S3Uri": "s3://b/other"}}]}
    assert not same_request(changed, described)
    assert not same_request({**request, "Environment": {"A": "1"}}, described)
