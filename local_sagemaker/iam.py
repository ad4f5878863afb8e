"""IAM policy enforcement for the identity Airflow calls with, so the shipped least-privilege
policy is proven offline: every request signed with the Airflow connection's access key is
checked against one identity-based policy document with moto's evaluator (Allow/Deny,
wildcards, NotAction/NotResource, StringEquals conditions), and refused as AWS refuses it.

Requests signed with any other key (the emulator's own S3 staging and model downloads, test
harnesses setting up buckets and topics) act as the account's administrator and are not checked.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moto.iam.access_control import IAMPolicyStatement, PermissionResult

from local_sagemaker.protocol import ACCOUNT_ID

# The access key of the aws_default connection offline (compose, run_offline, the e2e tests).
AIRFLOW_ACCESS_KEY = "test"
# The key the emulator's own clients and the test harnesses sign with: never checked.
ADMIN_ACCESS_KEY = "local-sagemaker-admin"
# The key of what jobs and model servers do as the execution role (S3 staging, the toolkits'
# downloads, logs): checked against --iam-execution-policy when one is given.
EXECUTION_ACCESS_KEY = "local-sagemaker-execution-role"
# Who the Airflow identity is in refusals: an assumed role, as MWAA's execution role appears.
AIRFLOW_PRINCIPAL = f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/MlopsAirflow/airflow"
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9:_]+)\}")
# Calls AWS answers whatever the policies say (GetCallerIdentity needs no permission)
ALWAYS_ALLOWED = {"sts:getcalleridentity"}


class PolicyError(ValueError):
    """A policy file that cannot be enforced (unreadable, not a policy, unknown placeholder)."""


@dataclass(frozen=True)
class Call:
    """One authorization question: may the caller perform ``action`` on ``resource``?"""

    action: str
    resource: str
    conditions: tuple[tuple[str, str], ...] = ()

    @property
    def condition_values(self) -> dict[str, str]:
        return dict(self.conditions)


def offline_values(region: str, environ: Mapping[str, str]) -> dict[str, str]:
    """What the CloudFormation ``${...}`` placeholders stand for offline: the pipeline settings'
    offline defaults (``MLOPS_BUCKET``/``MLOPS_ROLE_ARN``/``MLOPS_ALERT_TOPIC_ARN`` override)."""
    return {
        "AWS::Region": region,
        "AWS::AccountId": ACCOUNT_ID,
        "AWS::Partition": "aws",
        "BucketName": environ.get("MLOPS_BUCKET") or "mlops-offline",
        "SageMakerExecutionRoleArn": environ.get("MLOPS_ROLE_ARN")
        or f"arn:aws:iam::{ACCOUNT_ID}:role/SageMakerExecutionRole",
        "AlertTopicArn": environ.get("MLOPS_ALERT_TOPIC_ARN")
        or f"arn:aws:sns:{region}:{ACCOUNT_ID}:mlops-alerts",
        # the account publishing the scikit-learn image (never called offline: ECR is not emulated)
        "SklearnImageAccount": (environ.get("MLOPS_SKLEARN_IMAGE_URI") or "683313688378").split(".", 1)[0],
    }


def load_policy(path: Path, values: Mapping[str, str]) -> dict[str, Any]:
    """Read a policy document written for CloudFormation's ``!Sub`` and fill its placeholders."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise PolicyError(f"cannot read IAM policy {path}: {exc.strerror or exc}") from exc
    unknown = sorted({name for name in PLACEHOLDER.findall(text) if name not in values})
    if unknown:
        raise PolicyError(f"IAM policy {path}: unknown placeholder(s) {', '.join(unknown)}; "
                          f"known: {', '.join(sorted(values))}")
    try:
        document = json.loads(PLACEHOLDER.sub(lambda m: values[m.group(1)], text))
    except ValueError as exc:
        raise PolicyError(f"IAM policy {path} is not valid JSON: {exc}") from exc
    if not isinstance(document, dict) or "Statement" not in document:
        raise PolicyError(f"IAM policy {path} has no 'Statement': not a policy document")
    return document


def statements(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    found = document["Statement"]
    return list(found) if isinstance(found, list) else [found]


def policy_actions(document: Mapping[str, Any]) -> list[str]:
    """Every action an Allow statement names, in document order."""
    actions: list[str] = []
    for statement in statements(document):
        if statement.get("Effect") == "Allow":
            named = statement.get("Action", [])
            for action in [named] if isinstance(named, str) else named:
                if action not in actions:
                    actions.append(action)
    return actions


def without_action(document: Mapping[str, Any], action: str) -> dict[str, Any]:
    """The policy with ``action`` removed from every Allow statement (emptied statements dropped)."""
    kept = []
    for statement in statements(document):
        named = statement.get("Action")
        if statement.get("Effect") != "Allow" or named is None:
            kept.append(statement)
            continue
        rest = [a for a in ([named] if isinstance(named, str) else named) if a != action]
        if rest:
            kept.append({**statement, "Action": rest})
    return {**document, "Statement": kept}


def _lowercase_actions(statement: dict[str, Any]) -> dict[str, Any]:
    """IAM matches action names case-insensitively; moto's matcher does not."""
    out = dict(statement)
    for key in ("Action", "NotAction"):
        if key in out:
            value = out[key]
            out[key] = value.lower() if isinstance(value, str) else [v.lower() for v in value]
    return out


def evaluate(document: Mapping[str, Any], call: Call) -> str:
    """``allowed``, ``implicit`` (no statement allows) or ``explicit`` (a Deny statement matches)."""
    allowed = False
    for statement in statements(document):
        result = IAMPolicyStatement(_lowercase_actions(statement)).is_action_permitted(
            call.action.lower(), call.resource, incoming_condition_values=call.condition_values)
        # moto answers DENIED for an Allow whose condition does not hold; IAM ignores that statement
        if result == PermissionResult.DENIED and statement.get("Effect") == "Deny":
            return "explicit"
        if result == PermissionResult.PERMITTED:
            allowed = True
    return "allowed" if allowed else "implicit"


def denial_message(call: Call, decision: str, principal: str = AIRFLOW_PRINCIPAL) -> str:
    """AWS's wording for a refused identity-based request."""
    reason = ("with an explicit deny in an identity-based policy" if decision == "explicit"
              else f"because no identity-based policy allows the {call.action} action")
    return f"User: {principal} is not authorized to perform: {call.action} on resource: {call.resource} {reason}"


def execution_principal(role_arn: str) -> str:
    """How SageMaker's session with the execution role appears in refusals."""
    return f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{role_arn.rsplit('/', 1)[-1]}/SageMaker"


class Authorizer:
    """Checks the Airflow identity's calls against its policy (and, when given, what jobs and
    model servers do as the execution role against that role's policy); logs every decision."""

    def __init__(self, document: Mapping[str, Any], audit: Path | None = None,
                 execution: Mapping[str, Any] | None = None,
                 execution_role_arn: str = f"arn:aws:iam::{ACCOUNT_ID}:role/SageMakerExecutionRole") -> None:
        self.identities: dict[str, tuple[Mapping[str, Any], str]] = {
            AIRFLOW_ACCESS_KEY: (document, AIRFLOW_PRINCIPAL)}
        if execution is not None:
            self.identities[EXECUTION_ACCESS_KEY] = (execution, execution_principal(execution_role_arn))
        self.audit = audit
        self._lock = threading.Lock()

    def applies_to(self, access_key: str | None) -> bool:
        return access_key in self.identities

    def first_denied(self, calls: Iterable[Call], caller: str | None = None,
                     access_key: str = AIRFLOW_ACCESS_KEY) -> tuple[Call, str, str] | None:
        """The first call the identity's policy refuses, why, and who was refused; every decision
        goes to the audit file, with the operator class that made the call when the client names
        it (``caller``)."""
        document, principal = self.identities[access_key]
        for call in calls:
            decision = "allowed" if call.action.lower() in ALWAYS_ALLOWED else evaluate(document, call)
            self._record(call, decision, caller, access_key)
            if decision != "allowed":
                return call, decision, principal
        return None

    def _record(self, call: Call, decision: str, caller: str | None, access_key: str) -> None:
        if self.audit is None:
            return
        entry: dict[str, Any] = {"action": call.action, "resource": call.resource, "decision": decision}
        if access_key != AIRFLOW_ACCESS_KEY:
            entry["identity"] = "execution-role"
        if call.conditions:
            entry["conditions"] = call.condition_values
        if caller:
            entry["caller"] = caller
        line = json.dumps(entry)
        with self._lock, open(self.audit, "a") as handle:
            handle.write(line + "\n")
