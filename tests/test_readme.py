"""The README is the contract with new users: its commands, Params and settings must match the code."""

from __future__ import annotations

import re
import subprocess
from dataclasses import fields
from pathlib import Path

from sagemaker_mlops.params import deploy_params, pipeline_params
from sagemaker_mlops.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_two_commands_are_the_dev_entry_points() -> None:
    assert "./dev run" in README and "./dev test" in README
    usage = subprocess.run(
        ["bash", str(ROOT / "dev"), "help"], capture_output=True, text=True, check=False
    )
    assert usage.returncode == 2 and "run" in usage.stderr and "test" in usage.stderr


def test_ci_runs_the_readme_test_command() -> None:
    assert "./dev test" in (ROOT / ".ci" / "run").read_text()


def test_every_param_is_documented_with_its_default() -> None:
    for name, param in pipeline_params().items():
        row = re.search(rf"^\| `{name}` \| ([^|]+) \|", README, re.M)
        assert row, f"Param {name} has no row in the README's Params table"
        if param.value not in (None, {}):
            assert str(param.value) in row.group(1), f"README default for {name}: want {param.value!r}"
    for name in deploy_params(["california_housing"], "california_housing"):
        assert f"`{name}`" in README, f"deploy_approved_model Param {name} is missing from README"


def test_every_setting_is_documented() -> None:
    for field in fields(Settings):
        env = f"MLOPS_{field.name.upper()}"
        assert f"`{env}`" in README, f"setting {env} is missing from README"


# SageMaker calls the provider's operators make for the DAGs (Amazon provider 9.x): job creation
# and waits, RegisterModelVersion (group creation, and its removal when registering fails) and
# the endpoint operator ServerlessDeployOperator extends
PROVIDER_SAGEMAKER_CALLS = {
    "CreateProcessingJob", "DescribeProcessingJob", "CreateTrainingJob", "DescribeTrainingJob",
    "CreateModelPackageGroup", "DeleteModelPackageGroup", "CreateModelPackage", "CreateModel",
    "CreateEndpointConfig", "DescribeEndpointConfig", "CreateEndpoint", "UpdateEndpoint",
    "DescribeEndpoint",
}


def _sagemaker_calls_the_dags_make() -> set[str]:
    ours = set()
    for path in (ROOT / "plugins" / "sagemaker_mlops").glob("*.py"):
        for name in re.findall(r"\b(?:client|conn|runtime)\.([a-z_]+)\b", path.read_text()):
            if name != "get_waiter":  # the endpoint_in_service waiter calls DescribeEndpoint
                ours.add("".join(part.title() for part in name.split("_")))
    return {f"sagemaker:{op}" for op in ours | PROVIDER_SAGEMAKER_CALLS}


def test_airflow_permissions_list_exactly_the_sagemaker_calls_the_dags_make() -> None:
    section = README.split("3. **Airflow's own permissions**", 1)[1].split("\n4. ", 1)[0]
    listed = set(re.findall(r"`(sagemaker:\w+)`", section))
    needed = _sagemaker_calls_the_dags_make()
    assert listed == needed, f"missing {sorted(needed - listed)}, not called {sorted(listed - needed)}"
    for other in ("iam:PassRole", "s3:ListBucket", "s3:GetObject", "s3:PutObject", "sns:Publish",
                  "logs:DescribeLogStreams", "logs:GetLogEvents"):
        assert f"`{other}`" in section, other


def test_airflow_permissions_are_generated_from_the_shipped_policy() -> None:
    """README's list is tools/iam_policy.py's rendering of deploy/iam/airflow-policy.json, inside
    item 3, and the policy's SageMaker actions are exactly the calls the DAGs make."""
    from tools import iam_policy

    document = iam_policy.load_document()
    section = README.split("3. **Airflow's own permissions**", 1)[1].split("\n4. ", 1)[0]
    assert iam_policy.readme_block(section) == iam_policy.readme_list(document), (
        "README's permission list differs from deploy/iam/airflow-policy.json: "
        "run python tools/iam_policy.py readme --write")
    actions = {a for a in iam_policy.policy_actions(document) if a.startswith("sagemaker:")}
    needed = _sagemaker_calls_the_dags_make()
    assert actions == needed, f"policy lacks {sorted(needed - actions)}, not called {sorted(actions - needed)}"
