"""The shipped Airflow policy (deploy/iam/airflow-policy.json): the README's permission list
generated from it, and which end-to-end test needs each of its actions.

``python tools/iam_policy.py readme [--write]`` prints (or writes into README.md) the list;
``python tools/iam_policy.py needed`` prints, per action, the recorded end-to-end tests
(tests/dags/iam_calls.json) that a policy without that action would fail.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make local_sagemaker importable
    sys.path.insert(0, str(ROOT))

from local_sagemaker.iam import (  # noqa: E402
    Call,
    evaluate,
    load_policy,
    offline_values,
    policy_actions,
    statements,
    without_action,
)

POLICY = ROOT / "deploy" / "iam" / "airflow-policy.json"
RECORD = ROOT / "tests" / "dags" / "iam_calls.json"
README = ROOT / "README.md"
BEGIN = "<!-- BEGIN generated from deploy/iam/airflow-policy.json by tools/iam_policy.py -->"
END = "<!-- END generated from deploy/iam/airflow-policy.json -->"
# Why each statement exists, for the README (keyed by the statement's Sid).
PURPOSE = {
    "RunPipelineJobs": "the preprocess, train and evaluate jobs (job names start with `mlops-`)",
    "RegisterModelVersions": "registering versions; the provider deletes a group it has just "
    "created when the version cannot be registered; approval changes and rejections",
    "ListModelVersions": "finding a run's version and the champion (List calls have no "
    "resource-level permissions)",
    "DeployEndpoints": "the serverless endpoint: create or update, wait, smoke check "
    "(`InvokeEndpoint`), and `DeleteEndpoint` for a `Failed` endpoint, which accepts nothing else",
    "PassExecutionRoleToSageMaker": "handing the execution role to jobs and models, only to SageMaker",
    "ListProjectBucket": "checking that the raw data prefix holds CSVs (a `raw_data_uri` "
    "elsewhere needs `s3:ListBucket` on its bucket too)",
    "ReadWriteProjectObjects": "staged code, verdict.json, evaluation.json, profile.json and "
    "the model artifact's sha256",
    "PublishAlerts": "the retrain alert and failure notifications",
    "ReadTrainingLogs": "the training task's `print_log`",
}


def load_document(path: Path = POLICY) -> dict[str, Any]:
    """The policy as written (``${...}`` placeholders kept)."""
    return json.loads(path.read_text())


def readme_list(document: dict[str, Any]) -> str:
    """One bullet per statement: its actions, its resources (and condition), and why."""
    lines = [BEGIN]
    for statement in statements(document):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        text = (", ".join(f"`{a}`" for a in actions) + " on " + ", ".join(f"`{r}`" for r in resources))
        for operator, pairs in statement.get("Condition", {}).items():
            text += " when " + ", ".join(f"`{k}` {operator} `{v}`" for k, v in pairs.items())
        lines.append(f"   - {text}: {PURPOSE[statement['Sid']]};")
    lines[-1] = lines[-1].rstrip(";") + "."
    lines.append(f"   {END}")
    return "\n".join(lines)


def readme_block(readme: str) -> str:
    """The generated block as README.md has it now ('' when it has none)."""
    if BEGIN not in readme or END not in readme:
        return ""
    return readme[readme.index(BEGIN): readme.index(END) + len(END)]


def offline_policy(path: Path = POLICY) -> dict[str, Any]:
    """The policy with the offline values the end-to-end tests ran with."""
    return load_policy(path, offline_values("us-east-1", {}))


def needed_by(policy: dict[str, Any], record: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, list[str]]]:
    """For each action of the (placeholder-free) policy: the recorded ``tests`` with a call the
    policy allows and the policy without that action refuses (they fail when the action goes),
    and the operator classes (``callers``) that made those calls."""
    found: dict[str, dict[str, list[str]]] = {}
    for action in policy_actions(policy):
        reduced = without_action(policy, action)
        tests: set[str] = set()
        callers: set[str] = set()
        for module in record.values():
            for entry in module:
                call = Call(entry["action"], entry["resource"],
                            tuple(sorted(entry.get("conditions", {}).items())))
                if evaluate(policy, call) == "allowed" and evaluate(reduced, call) != "allowed":
                    tests.update(entry["tests"])
                    callers.update(entry.get("callers", []))
        found[action] = {"tests": sorted(tests), "callers": sorted(callers)}
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["readme", "needed"])
    parser.add_argument("--write", action="store_true", help="readme: replace the list in README.md")
    args = parser.parse_args(argv)
    document = load_document()
    if args.what == "needed":
        for action, needed in needed_by(offline_policy(), json.loads(RECORD.read_text())).items():
            tests = needed["tests"]
            print(f"{action}: {tests[0] if tests else 'NO RECORDED TEST NEEDS IT'}"
                  + (f" (+{len(tests) - 1} more)" if len(tests) > 1 else "")
                  + f"; called by {', '.join(needed['callers']) or 'unknown'}")
        return 0
    block = readme_list(document)
    if not args.write:
        print(block)
        return 0
    readme = README.read_text()
    current = readme_block(readme)
    if not current:
        print(f"README.md has no {BEGIN} ... {END} block to replace", file=sys.stderr)
        return 1
    README.write_text(readme.replace(current, block))
    return 0


if __name__ == "__main__":
    sys.exit(main())
