"""docs/aws.md is what a platform engineer follows on a real account: its tables must match the code."""

from __future__ import annotations

import re
from pathlib import Path

from cfnlint.decode import decode
from sagemaker_mlops.settings import SKLEARN_IMAGE_ACCOUNTS, Settings

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "aws.md").read_text()
TEMPLATE = ROOT / "deploy" / "cloudformation" / "mlops-pipeline.yaml"


def test_image_table_is_the_settings_table() -> None:
    rows = dict(re.findall(r"^\| ([a-z]+-[a-z]+-\d) \| (\d{12}) \|$", DOC, re.M))
    assert rows == SKLEARN_IMAGE_ACCOUNTS


def test_every_output_and_parameter_is_documented() -> None:
    template, problems = decode(str(TEMPLATE))
    assert not problems, problems
    for name, output in template["Outputs"].items():
        assert f"| `{name}` | `{output['Description']}` |" in DOC, f"output {name} missing"
    for name in template["Parameters"]:
        assert f"| `{name}` |" in DOC, f"parameter {name} has no row in docs/aws.md"


def test_job_instance_types_are_the_settings_defaults() -> None:
    defaults = Settings()
    assert defaults.processing_instance_type == defaults.training_instance_type == "ml.m5.large"
    assert DOC.count("| 1 × ml.m5.large |") == 3


def test_readme_links_the_aws_guide() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Running on real AWS", 1)[1].split("\n## ", 1)[0]
    assert "(docs/aws.md)" in section
