"""The CloudFormation template: lint-clean, hardened, and in step with the code it deploys for.

The template is what a platform engineer deploys, so drift from the repository is a bug that
only shows on a real account. These tests pin it to its sources: the IAM documents in
deploy/iam/ (which the emulator enforces), the pipeline specs' prefixes and endpoints, the
scikit-learn image accounts and the settings the DAGs read.
"""

from __future__ import annotations

import json
import re
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint_file
from cfnlint.decode import decode
from sagemaker_mlops.settings import SKLEARN_IMAGE_ACCOUNTS, Settings
from sagemaker_mlops.specs import load_specs

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "deploy" / "cloudformation" / "mlops-pipeline.yaml"
IAM_DIR = ROOT / "deploy" / "iam"

# Settings whose value exists only once the stack exists in an account; every other setting
# has a default that is right on AWS too (connection id, images per region, polling, ...).
ACCOUNT_SETTINGS = {"bucket", "role_arn", "alert_topic_arn", "region"}

# What each placeholder of the deploy/iam documents must be bound to in the template.
PLACEHOLDER_BINDINGS = {
    "SageMakerExecutionRoleArn": {"Fn::GetAtt": ["SageMakerExecutionRole", "Arn"]},
    "AlertTopicArn": {"Ref": "AlertTopic"},
    "SklearnImageAccount": {
        "Fn::FindInMap": ["SklearnImageAccounts", {"Ref": "AWS::Region"}, "Account"]
    },
}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    loaded, problems = decode(str(TEMPLATE))
    assert not problems, f"{TEMPLATE}: cannot be parsed: {problems}"
    return loaded


def resources_of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def as_placeholders(node: Any) -> Any:
    """The template fragment written as deploy/iam documents write it: ``!Sub`` strings keep
    their ``${...}`` placeholders; a variable map must bind each to its expected resource."""
    if isinstance(node, dict):
        if set(node) == {"Fn::Sub"}:
            sub = node["Fn::Sub"]
            if isinstance(sub, str):
                return sub
            text, bindings = sub
            for name, value in bindings.items():
                assert PLACEHOLDER_BINDINGS.get(name) == value, (
                    f"{TEMPLATE.name}: ${{{name}}} is bound to {value}, "
                    f"expected {PLACEHOLDER_BINDINGS.get(name)}"
                )
            return text
        assert not any(k.startswith("Fn::") or k == "Ref" for k in node), (
            f"{TEMPLATE.name}: write policy values as plain strings or !Sub, not {node}"
        )
        return {k: as_placeholders(v) for k, v in node.items()}
    if isinstance(node, list):
        return [as_placeholders(v) for v in node]
    return node


def test_cfn_lint_reports_nothing_in_any_supported_region() -> None:
    matches = lint_file(TEMPLATE, ManualArgs(regions=sorted(SKLEARN_IMAGE_ACCOUNTS)))
    assert [str(m) for m in matches] == []


def test_cfn_lint_runs_offline_and_catches_a_broken_copy(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(TEMPLATE.read_text().replace("Status: Enabled\n      # SSE", "Status: On\n      # SSE"))
    assert broken.read_text() != TEMPLATE.read_text()
    found = [m.rule.id for m in lint_file(broken, ManualArgs(regions=["us-east-1"]))]
    assert found and all(rule.startswith("E") for rule in found), found


def test_bucket_is_versioned_encrypted_private_and_tls_only(template: dict[str, Any]) -> None:
    (bucket_id, bucket), = resources_of_type(template, "AWS::S3::Bucket").items()
    props = bucket["Properties"]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"AES256", "aws:kms"}
    block = props["PublicAccessBlockConfiguration"]
    assert block == {k: True for k in (
        "BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")}
    (policy,) = resources_of_type(template, "AWS::S3::BucketPolicy").values()
    assert policy["Properties"]["Bucket"] == {"Ref": bucket_id}
    (deny,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Action"] == "s3:*" and deny["Principal"] == "*"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert deny["Resource"] == [
        {"Fn::GetAtt": [bucket_id, "Arn"]}, {"Fn::Sub": f"${{{bucket_id}.Arn}}/*"}]


def test_alert_topic_is_encrypted_and_logs_expire(template: dict[str, Any]) -> None:
    (topic,) = resources_of_type(template, "AWS::SNS::Topic").values()
    assert topic["Properties"]["KmsMasterKeyId"]
    groups = resources_of_type(template, "AWS::Logs::LogGroup").values()
    assert groups and all(
        g["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionInDays"} for g in groups)


def test_log_groups_are_the_jobs_and_each_specs_endpoint(template: dict[str, Any]) -> None:
    specs, errors = load_specs()
    assert not errors, errors
    names = {g["Properties"]["LogGroupName"]
             for g in resources_of_type(template, "AWS::Logs::LogGroup").values()}
    assert names == {"/aws/sagemaker/TrainingJobs", "/aws/sagemaker/ProcessingJobs"} | {
        f"/aws/sagemaker/Endpoints/{s.endpoint_name}" for s in specs}


@pytest.mark.parametrize(
    ("policy_file", "locate"),
    [
        ("airflow-policy.json",
         lambda t: t["Resources"]["AirflowPolicy"]["Properties"]["PolicyDocument"]),
        ("sagemaker-execution-policy.json",
         lambda t: t["Resources"]["SageMakerExecutionRole"]["Properties"]["Policies"][0][
             "PolicyDocument"]),
    ],
)
def test_template_embeds_the_iam_documents_verbatim(
    template: dict[str, Any], policy_file: str, locate: Any
) -> None:
    expected = json.loads((IAM_DIR / policy_file).read_text())
    assert as_placeholders(locate(template)) == expected, (
        f"{TEMPLATE.name} and deploy/iam/{policy_file} differ: copy the document into the template"
    )


def test_execution_role_reaches_exactly_the_specs_prefixes() -> None:
    specs, errors = load_specs()
    assert not errors, errors
    wanted = {f"arn:aws:s3:::${{BucketName}}/{s.s3_prefix}/*" for s in specs}
    statements = json.loads((IAM_DIR / "sagemaker-execution-policy.json").read_text())["Statement"]
    objects = {r for s in statements
               for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])
               if r.startswith("arn:aws:s3:::${BucketName}/")}
    assert objects == wanted, (
        "deploy/iam/sagemaker-execution-policy.json: the S3 object resources must be one "
        f"<prefix>/* per pipeline spec; found {sorted(objects)}, specs want {sorted(wanted)}"
    )


def test_pass_role_only_for_the_execution_role_and_only_to_sagemaker(
    template: dict[str, Any],
) -> None:
    statements = template["Resources"]["AirflowPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    passing = [s for s in statements if "iam:PassRole" in json.dumps(s["Action"])]
    (statement,) = passing
    assert as_placeholders(statement["Resource"]) == "${SageMakerExecutionRoleArn}"
    assert statement["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}


def test_no_allow_statement_grants_a_whole_service(template: dict[str, Any]) -> None:
    documents = [template["Resources"]["AirflowPolicy"]["Properties"]["PolicyDocument"]] + [
        p["PolicyDocument"] for p in template["Resources"]["SageMakerExecutionRole"]["Properties"][
            "Policies"]]
    for statement in (s for d in documents for s in d["Statement"] if s["Effect"] == "Allow"):
        actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement[
            "Action"]
        assert not [a for a in actions if "*" in a], statement["Sid"]


def test_image_accounts_match_the_settings_table(template: dict[str, Any]) -> None:
    mapping = template["Mappings"]["SklearnImageAccounts"]
    assert {region: row["Account"] for region, row in mapping.items()} == SKLEARN_IMAGE_ACCOUNTS


def test_outputs_are_exactly_the_account_settings(template: dict[str, Any]) -> None:
    setting_names = {f.name for f in fields(Settings)}
    assert ACCOUNT_SETTINGS <= setting_names
    by_output = {}
    for name, output in template["Outputs"].items():
        snake = re.sub(r"(?<!^)(?=[A-Z])", "_", name.removeprefix("Mlops")).lower()
        assert output["Description"] == f"MLOPS_{snake.upper()}", name
        by_output[name] = snake
    assert sorted(by_output.values()) == sorted(ACCOUNT_SETTINGS)
