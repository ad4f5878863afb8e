"""``serve --iam-policy``: the Airflow identity's calls are checked against the policy and refused
as AWS refuses them; other callers are not checked. Plus the evaluation and request mapping."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from local_sagemaker.iam import (
    AIRFLOW_PRINCIPAL,
    Call,
    PolicyError,
    evaluate,
    load_policy,
    offline_values,
    policy_actions,
    without_action,
)
from local_sagemaker.iam_requests import logs_calls, s3_calls, sagemaker_calls
from local_sagemaker.launcher import REGION, EmulatorProcess

ARN = f"arn:aws:sagemaker:{REGION}:123456789012"
ROLE = "arn:aws:iam::123456789012:role/SageMakerExecutionRole"
POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": ["sagemaker:Describe*", "SageMaker:ListModelPackages"],
         "Resource": "*"},
        {"Effect": "Allow", "Action": "sagemaker:CreateTrainingJob",
         "Resource": "arn:aws:sagemaker:${AWS::Region}:${AWS::AccountId}:training-job/mlops-*"},
        {"Effect": "Deny", "Action": "sagemaker:*", "Resource": f"{ARN}:endpoint/forbidden"},
        {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "${SageMakerExecutionRoleArn}",
         "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}},
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
         "Resource": "arn:aws:s3:::${BucketName}/*"},
        {"Effect": "Allow", "NotAction": ["sns:Publish", "s3:*", "sagemaker:*", "iam:*"],
         "Resource": "*"},
    ],
}


def _policy(tmp_path: Path, document: dict) -> dict:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(document))
    return load_policy(path, offline_values(REGION, {}))


def test_evaluation_wildcards_case_deny_notaction_and_conditions(tmp_path):
    policy = _policy(tmp_path, POLICY)
    assert evaluate(policy, Call("sagemaker:DescribeEndpoint", f"{ARN}:endpoint/x")) == "allowed"
    assert evaluate(policy, Call("sagemaker:listmodelpackages", "*")) == "allowed"
    assert evaluate(policy, Call("sagemaker:CreateTrainingJob", f"{ARN}:training-job/mlops-a")) == "allowed"
    assert evaluate(policy, Call("sagemaker:CreateTrainingJob", f"{ARN}:training-job/other")) == "implicit"
    assert evaluate(policy, Call("sagemaker:DescribeEndpoint", f"{ARN}:endpoint/forbidden")) == "explicit"
    assert evaluate(policy, Call("logs:GetLogEvents", "arn:aws:logs:x")) == "allowed"  # NotAction
    assert evaluate(policy, Call("sns:Publish", "arn:aws:sns:x")) == "implicit"
    to_sagemaker = (("iam:PassedToService", "sagemaker.amazonaws.com"),)
    assert evaluate(policy, Call("iam:PassRole", ROLE, to_sagemaker)) == "allowed"
    assert evaluate(policy, Call("iam:PassRole", ROLE, (("iam:PassedToService", "ec2.amazonaws.com"),))) \
        == "implicit"
    assert evaluate(policy, Call("s3:GetObject", "arn:aws:s3:::mlops-offline/a/b")) == "allowed"


def test_removing_an_action_removes_only_that_action(tmp_path):
    policy = _policy(tmp_path, POLICY)
    reduced = without_action(policy, "sagemaker:CreateTrainingJob")
    assert "sagemaker:CreateTrainingJob" not in policy_actions(reduced)
    assert evaluate(reduced, Call("sagemaker:CreateTrainingJob", f"{ARN}:training-job/mlops-a")) == "implicit"
    assert evaluate(reduced, Call("s3:PutObject", "arn:aws:s3:::mlops-offline/k")) == "allowed"


def test_a_policy_with_an_unknown_placeholder_or_no_statement_is_refused(tmp_path):
    with pytest.raises(PolicyError, match=r"unknown placeholder\(s\) Missing"):
        _policy(tmp_path, {"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "${Missing}"}]})
    with pytest.raises(PolicyError, match="has no 'Statement'"):
        _policy(tmp_path, {"Version": "2012-10-17"})


def test_requests_map_to_iam_actions_and_arns_as_aws_forms_them():
    assert s3_calls("GET", "/b", "list-type=2&prefix=a%2F", {}) == [Call("s3:ListBucket", "arn:aws:s3:::b")]
    assert s3_calls("HEAD", "/b", "", {}) == [Call("s3:ListBucket", "arn:aws:s3:::b")]
    assert s3_calls("HEAD", "/b/k%20x", "", {}) == [Call("s3:GetObject", "arn:aws:s3:::b/k x")]
    assert s3_calls("PUT", "/b/k", "", {"x-amz-copy-source": "/src/o"}) == [
        Call("s3:PutObject", "arn:aws:s3:::b/k"), Call("s3:GetObject", "arn:aws:s3:::src/o")]
    assert s3_calls("POST", "/b/k", "uploads", {}) == [Call("s3:PutObject", "arn:aws:s3:::b/k")]
    assert s3_calls("GET", "/", "", {}) == [Call("s3:ListAllMyBuckets", "*")]
    calls = sagemaker_calls("CreateModel", {"ModelName": "California-V1", "ExecutionRoleArn": ROLE}, REGION)
    assert calls == [Call("sagemaker:CreateModel", f"{ARN}:model/california-v1"),
                     Call("iam:PassRole", ROLE, (("iam:PassedToService", "sagemaker.amazonaws.com"),))]
    arn = f"{ARN}:model-package/g/3"
    assert sagemaker_calls("UpdateModelPackage", {"ModelPackageArn": arn}, REGION)[0].resource == arn
    assert sagemaker_calls("ListModelPackages", {"ModelPackageGroupName": "g"}, REGION)[0].resource == "*"
    group = f"arn:aws:logs:{REGION}:123456789012:log-group:/aws/sagemaker/TrainingJobs"
    assert logs_calls("DescribeLogStreams", {"logGroupName": "/aws/sagemaker/TrainingJobs"}, REGION) == [
        Call("logs:DescribeLogStreams", f"{group}:*")]
    assert logs_calls("GetLogEvents", {"logGroupName": "/aws/sagemaker/TrainingJobs", "logStreamName": "j/algo-1"},
                      REGION) == [Call("logs:GetLogEvents", f"{group}:log-stream:j/algo-1")]


@pytest.fixture(scope="module")
def enforced(tmp_path_factory):
    work = tmp_path_factory.mktemp("iam-enforced")
    (work / "policy.json").write_text(json.dumps(POLICY))
    running = EmulatorProcess(work / "data", "--iam-policy", str(work / "policy.json"),
                              "--iam-audit", str(work / "audit.jsonl"))
    running.client("s3").create_bucket(Bucket="mlops-offline")  # the admin key is not checked
    yield running, work / "audit.jsonl"
    assert running.stop() == 0, running.log()


def _airflow(running: EmulatorProcess, service: str):
    return boto3.client(service, endpoint_url=running.url, region_name=REGION, aws_access_key_id="test",
                        aws_secret_access_key="test",
                        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))


def test_a_refused_sagemaker_call_is_access_denied_in_aws_words(enforced):
    running, audit = enforced
    with pytest.raises(ClientError) as error:
        _airflow(running, "sagemaker").delete_endpoint(EndpointName="anything")
    response = error.value.response
    assert (response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]) == (
        "AccessDeniedException", 400)
    assert response["Error"]["Message"] == (
        f"User: {AIRFLOW_PRINCIPAL} is not authorized to perform: sagemaker:DeleteEndpoint on resource: "
        f"{ARN}:endpoint/anything because no identity-based policy allows the sagemaker:DeleteEndpoint action")
    with pytest.raises(ClientError, match="with an explicit deny in an identity-based policy"):
        _airflow(running, "sagemaker").describe_endpoint(EndpointName="forbidden")
    decisions = [json.loads(line) for line in audit.read_text().splitlines()]
    assert {"action": "sagemaker:DeleteEndpoint", "resource": f"{ARN}:endpoint/anything",
            "decision": "implicit"} in decisions


def test_an_allowed_call_is_answered_by_the_service(enforced):
    running, _ = enforced
    with pytest.raises(ClientError) as error:  # allowed by Describe*: the service itself answers
        _airflow(running, "sagemaker").describe_endpoint(EndpointName="missing")
    assert error.value.response["Error"]["Code"] == "ValidationException"
    _airflow(running, "s3").put_object(Bucket="mlops-offline", Key="a/b", Body=b"x")
    assert running.client("s3").get_object(Bucket="mlops-offline", Key="a/b")["Body"].read() == b"x"


def test_s3_and_sns_refuse_in_their_own_shapes(enforced):
    running, _ = enforced
    with pytest.raises(ClientError) as error:
        _airflow(running, "s3").list_objects_v2(Bucket="mlops-offline")
    assert (error.value.response["Error"]["Code"], error.value.response["ResponseMetadata"]["HTTPStatusCode"]) \
        == ("AccessDenied", 403)
    assert "s3:ListBucket on resource: arn:aws:s3:::mlops-offline" in error.value.response["Error"]["Message"]
    topic = running.client("sns").create_topic(Name="alerts")["TopicArn"]
    with pytest.raises(ClientError) as error:
        _airflow(running, "sns").publish(TopicArn=topic, Message="hello")
    assert error.value.response["Error"]["Code"] == "AuthorizationError"
    assert f"sns:Publish on resource: {topic}" in error.value.response["Error"]["Message"]
    running.client("sns").publish(TopicArn=topic, Message="the admin key is not checked")


def test_a_presigned_url_of_the_airflow_identity_is_checked_too(enforced):
    import urllib.error
    import urllib.request

    running, _ = enforced
    url = _airflow(running, "s3").generate_presigned_url(
        "get_object", Params={"Bucket": "other-bucket", "Key": "k"})
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(url, timeout=10)
    assert error.value.code == 403
    assert b"s3:GetObject on resource: arn:aws:s3:::other-bucket/k" in error.value.read()


def test_serve_refuses_a_policy_it_cannot_enforce_in_one_line(tmp_path):
    import subprocess
    import sys

    from local_sagemaker.launcher import PROJECT_ROOT

    bad = tmp_path / "policy.json"
    bad.write_text(json.dumps({"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "${Bucket}"}]}))
    result = subprocess.run([sys.executable, "-m", "local_sagemaker", "serve", "--port", "0", "--iam-policy", str(bad)],
                            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().startswith(f"--iam-policy: IAM policy {bad}: unknown placeholder(s) Bucket; known:")


@pytest.mark.slow
def test_jobs_act_as_the_execution_role_under_its_own_policy(tmp_path):
    """With --iam-execution-policy a job's S3 staging is the execution role's: outside the
    role's prefix the job fails with S3's 403; inside it completes."""
    from tests.emulator._core_helpers import processing_request, script, unique, wait_for

    allow_all = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    role = {"Statement": [
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::${BucketName}"},
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
         "Resource": "arn:aws:s3:::${BucketName}/allowed/*"},
        {"Effect": "Allow", "Action": "logs:*", "Resource": "*"}]}
    (tmp_path / "airflow.json").write_text(json.dumps(allow_all))
    (tmp_path / "role.json").write_text(json.dumps(role))
    running = EmulatorProcess(tmp_path / "data", "--iam-policy", str(tmp_path / "airflow.json"),
                              "--iam-execution-policy", str(tmp_path / "role.json"),
                              "--iam-audit", str(tmp_path / "audit.jsonl"))
    try:
        s3, sagemaker = running.client("s3"), _airflow(running, "sagemaker")
        s3.create_bucket(Bucket="mlops-offline")
        s3.put_object(Bucket="mlops-offline", Key="allowed/code/run.py",
                      Body=script("print('ran')").encode())
        for prefix in ("allowed", "forbidden"):
            s3.put_object(Bucket="mlops-offline", Key=f"{prefix}/data/x.csv", Body=b"1\n")
        states = {}
        for prefix in ("allowed", "forbidden"):
            name = unique(prefix)
            sagemaker.create_processing_job(**processing_request(
                name, "s3://mlops-offline/allowed/code/run.py",
                [{"name": "data", "uri": f"s3://mlops-offline/{prefix}/data/"}]))
            states[prefix] = wait_for(lambda n=name: sagemaker.describe_processing_job(ProcessingJobName=n),
                                      "ProcessingJobStatus", ("InProgress", "Stopping"))
        assert states["allowed"]["ProcessingJobStatus"] == "Completed", states["allowed"]
        failed = states["forbidden"]
        assert failed["ProcessingJobStatus"] == "Failed"
        assert failed["FailureReason"].endswith("forbidden/data/x.csv failed. 403: Forbidden"), failed
        decisions = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
        assert {"action": "s3:GetObject", "resource": "arn:aws:s3:::mlops-offline/forbidden/data/x.csv",
                "decision": "implicit", "identity": "execution-role"} in decisions
    finally:
        assert running.stop() == 0, running.log()
