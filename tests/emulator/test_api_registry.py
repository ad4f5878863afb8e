"""Model registry over real HTTP with boto3: groups, versions, approval, metadata, listing."""

from __future__ import annotations

import pytest

from tests.emulator._core_helpers import SKLEARN_IMAGE, aws_error, unique

pytestmark = pytest.mark.slow

ACCOUNT_ARN = "arn:aws:sagemaker:us-east-1:123456789012"


def _spec(uri: str) -> dict:
    return {"Containers": [{"Image": SKLEARN_IMAGE, "ModelDataUrl": uri,
                            "Environment": {"SAGEMAKER_PROGRAM": "inference.py"}}],
            "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]}


@pytest.fixture
def group(emulator) -> str:
    name = unique("grp")
    arn = emulator.client("sagemaker").create_model_package_group(
        ModelPackageGroupName=name, ModelPackageGroupDescription="housing models")["ModelPackageGroupArn"]
    assert arn == f"{ACCOUNT_ARN}:model-package-group/{name}"
    return name


def test_group_create_describe_duplicate_and_unknown(emulator, group):
    sm = emulator.client("sagemaker")
    described = sm.describe_model_package_group(ModelPackageGroupName=group)
    assert (described["ModelPackageGroupDescription"], described["ModelPackageGroupStatus"]) == (
        "housing models", "Completed")
    error, _ = aws_error(sm.create_model_package_group, ModelPackageGroupName=group)
    assert error["Code"] == "ValidationException"
    assert error["Message"].startswith("Model Package Group already exists")
    error, _ = aws_error(sm.describe_model_package_group, ModelPackageGroupName="no-such-group")
    assert error["Code"] == "ValidationException"
    names = [g["ModelPackageGroupName"] for g in
             sm.list_model_package_groups(NameContains=group)["ModelPackageGroupSummaryList"]]
    assert names == [group]


def test_versions_are_numbered_per_group_and_listed_with_filters(emulator, group):
    sm = emulator.client("sagemaker")
    other = unique("grp")
    sm.create_model_package_group(ModelPackageGroupName=other)
    arns = []
    for i, status in enumerate(["Approved", "Rejected", "Approved"]):
        arns.append(sm.create_model_package(
            ModelPackageGroupName=group, ModelPackageDescription=f"v{i + 1}",
            InferenceSpecification=_spec(f"s3://b/m{i}.tar.gz"), ModelApprovalStatus=status,
            CustomerMetadataProperties={"run_id": f"run-{i}"},
            ModelMetrics={"ModelQuality": {"Statistics": {"ContentType": "application/json",
                                                          "S3Uri": f"s3://b/eval{i}.json"}}},
        )["ModelPackageArn"])
    first_other = sm.create_model_package(ModelPackageGroupName=other,
                                          InferenceSpecification=_spec("s3://b/o.tar.gz"))["ModelPackageArn"]
    assert arns == [f"{ACCOUNT_ARN}:model-package/{group}/{v}" for v in (1, 2, 3)]
    assert first_other.endswith(f"model-package/{other}/1")

    described = sm.describe_model_package(ModelPackageName=arns[1])
    assert (described["ModelPackageVersion"], described["ModelApprovalStatus"],
            described["ModelPackageGroupName"]) == (2, "Rejected", group)
    assert described["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"] == "s3://b/eval1.json"
    assert described["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] == "s3://b/m1.tar.gz"
    assert described["CustomerMetadataProperties"] == {"run_id": "run-1"}
    assert sm.describe_model_package(ModelPackageName=first_other)["ModelApprovalStatus"] == "PendingManualApproval"

    listed = sm.list_model_packages(ModelPackageGroupName=group, ModelApprovalStatus="Approved",
                                    SortBy="CreationTime", SortOrder="Descending")["ModelPackageSummaryList"]
    assert [p["ModelPackageVersion"] for p in listed] == [3, 1]
    ascending = sm.list_model_packages(ModelPackageGroupName=group, SortOrder="Ascending", MaxResults=2)
    assert [p["ModelPackageVersion"] for p in ascending["ModelPackageSummaryList"]] == [1, 2]
    more = sm.list_model_packages(ModelPackageGroupName=group, SortOrder="Ascending", MaxResults=2,
                                  NextToken=ascending["NextToken"])
    assert [p["ModelPackageVersion"] for p in more["ModelPackageSummaryList"]] == [3]


def test_update_approval_and_metadata(emulator, group):
    sm = emulator.client("sagemaker")
    arn = sm.create_model_package(ModelPackageGroupName=group, InferenceSpecification=_spec("s3://b/m.tar.gz"),
                                  CustomerMetadataProperties={"run_id": "r1", "stale": "x"})["ModelPackageArn"]
    assert sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved",
                                   ApprovalDescription="passed the gate",
                                   CustomerMetadataProperties={"verdict": "passed"},
                                   CustomerMetadataPropertiesToRemove=["stale"])["ModelPackageArn"] == arn
    described = sm.describe_model_package(ModelPackageName=arn)
    assert described["ModelApprovalStatus"] == "Approved"
    assert described["ApprovalDescription"] == "passed the gate"
    assert described["CustomerMetadataProperties"] == {"run_id": "r1", "verdict": "passed"}
    assert described["LastModifiedTime"] >= described["CreationTime"]


def test_registry_errors(emulator, group):
    sm = emulator.client("sagemaker")
    error, _ = aws_error(sm.create_model_package, ModelPackageGroupName="no-such-group",
                   InferenceSpecification=_spec("s3://b/m.tar.gz"))
    assert error["Code"] == "ValidationException" and "no-such-group" in error["Message"]
    missing = f"{ACCOUNT_ARN}:model-package/{group}/99"
    error, _ = aws_error(sm.describe_model_package, ModelPackageName=missing)
    assert error["Code"] == "ValidationException" and missing in error["Message"]
    error, _ = aws_error(sm.update_model_package, ModelPackageArn=missing, ModelApprovalStatus="Approved")
    assert error["Code"] == "ValidationException"


def test_model_from_package_resolves_its_containers(emulator, group):
    sm = emulator.client("sagemaker")
    arn = sm.create_model_package(ModelPackageGroupName=group,
                                  InferenceSpecification=_spec("s3://b/m.tar.gz"))["ModelPackageArn"]
    name = unique("pkgmodel")
    sm.create_model(ModelName=name, ExecutionRoleArn="arn:aws:iam::123456789012:role/r",
                    Containers=[{"ModelPackageName": arn}])
    assert sm.describe_model(ModelName=name)["Containers"] == [{"ModelPackageName": arn}]
    error, _ = aws_error(sm.create_model, ModelName=unique("nopkg"), ExecutionRoleArn="arn:aws:iam::123456789012:role/r",
                   Containers=[{"ModelPackageName": f"{ACCOUNT_ARN}:model-package/{group}/42"}])
    assert error["Code"] == "ValidationException" and "does not exist" in error["Message"]


def test_metadata_outside_the_api_character_set_is_refused_and_the_pipeline_sanitises_it(emulator, group):
    from sagemaker_mlops import model_configs
    from sagemaker_mlops.gate import decide
    from sagemaker_mlops.gate_policy import GatePolicy
    from sagemaker_mlops.verdict import summary_line

    interval = {"lower": 0.7, "upper": 0.8, "level": 0.95}
    evaluation = {"schema_version": "1.0", "problem_type": "regression", "primary_metric": "r2_score",
                  "regression_metrics": {"r2_score": {"value": 0.75, "confidence_interval": interval}},
                  "champion": None, "load_check": {"passed": True, "message": "ok"}}
    verdict = decide(evaluation, GatePolicy.build("regression", decision_basis="lower_bound"))
    summary = summary_line(verdict)
    assert verdict.passed and "%" in summary
    sm = emulator.client("sagemaker")
    error, _ = aws_error(sm.create_model_package, ModelPackageGroupName=group,
                         InferenceSpecification=_spec("s3://b/m.tar.gz"),
                         CustomerMetadataProperties={"verdict": summary})
    assert error["Code"] == "ValidationException"
    assert "customerMetadataProperties.verdict.value" in error["Message"]
    error, _ = aws_error(sm.create_model_package, ModelPackageGroupName=group,
                         InferenceSpecification=_spec("s3://b/m.tar.gz"),
                         CustomerMetadataProperties={"target (y)": "x"})
    assert "customerMetadataProperties.target (y).key" in error["Message"]

    extras = model_configs.model_package_extras(
        image_uri=SKLEARN_IMAGE, model_artifact="s3://b/m.tar.gz",
        sourcedir_uri="s3://b/code/sourcedir.tar.gz", region="us-east-1",
        evaluation_json_uri="s3://b/evaluation.json", description=f"job (run): {summary}",
        metadata={"run_id": "manual__2026-11-26T10:00:00+00:00", "target": "price ($)",
                  "verdict": summary},
        approval_status="Approved")
    arn = sm.create_model_package(ModelPackageGroupName=group, **extras)["ModelPackageArn"]
    described = sm.describe_model_package(ModelPackageName=arn)
    assert described["CustomerMetadataProperties"] == {
        "run_id": "manual__2026-11-26T10:00:00+00:00", "target": "price _",
        "verdict": summary.replace("%", " pct")}
    assert described["ModelPackageDescription"] == f"job (run): {summary}"  # the full text stays
