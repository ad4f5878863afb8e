"""The end-to-end tests run under the shipped Airflow policy (deploy/iam/airflow-policy.json):
the emulator refuses any call of the Airflow identity outside it and logs every decision.
``IamTrail`` attributes those decisions to the test that caused them (a module fixture's DAG
run counts for the first test), and the module's last test keeps tests/dags/iam_calls.json,
the record tests/test_iam_policy.py evaluates to show every action of the policy is needed.

Regenerate the record after a change to what the DAGs call:
``UPDATE_IAM_CALLS=1 .venv/bin/pytest tests/dags/test_pipeline_e2e.py tests/dags/test_classification_e2e.py``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "deploy" / "iam" / "airflow-policy.json"
RECORD = Path(__file__).with_name("iam_calls.json")
UPDATE_ENV = "UPDATE_IAM_CALLS"


class IamTrail:
    """The emulator's audit file, split by test."""

    def __init__(self, audit: Path) -> None:
        self.audit = audit
        self.by_test: dict[str, list[dict[str, Any]]] = {}
        self._seen = 0

    def _decisions(self) -> list[dict[str, Any]]:
        if not self.audit.exists():
            return []
        found = [json.loads(line) for line in self.audit.read_text().splitlines() if line.strip()]
        return [d for d in found if "identity" not in d]  # the Airflow identity's calls only

    @contextmanager
    def attribute(self, test: str) -> Iterator[None]:
        """Everything decided since the previous test ended belongs to ``test``."""
        try:
            yield
        finally:
            decisions = self._decisions()
            self.by_test.setdefault(test, []).extend(decisions[self._seen:])
            self._seen = len(decisions)

    def denied(self) -> list[str]:
        return [f"{test}: {d['action']} on {d['resource']} ({d['decision']})"
                for test, decisions in self.by_test.items() for d in decisions
                if d["decision"] != "allowed"]

    def calls(self) -> list[dict[str, Any]]:
        """Distinct (action, resource, conditions) with the tests that made them and the operator
        classes that called (the provider's User-Agent names them), sorted."""
        merged: dict[str, dict[str, Any]] = {}
        for test, decisions in self.by_test.items():
            for d in decisions:
                call = {k: d[k] for k in ("action", "resource", "conditions") if k in d}
                entry = merged.setdefault(json.dumps(call, sort_keys=True),
                                          {**call, "callers": [], "tests": []})
                for key, value in (("tests", test), ("callers", d.get("caller", "unknown"))):
                    if value not in entry[key]:
                        entry[key].append(value)
        return sorted(merged.values(), key=lambda c: (c["action"], c["resource"]))


def check_record(trail: IamTrail, module: str) -> None:
    """No call was refused, and the committed record has exactly the actions this module used
    (with ``UPDATE_IAM_CALLS=1``: rewrite the module's part of the record instead)."""
    assert not trail.denied(), "the shipped policy refused:\n" + "\n".join(trail.denied())
    record = json.loads(RECORD.read_text()) if RECORD.exists() else {}
    calls = trail.calls()
    if os.environ.get(UPDATE_ENV):
        record[module] = calls
        RECORD.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
        return
    made = {c["action"] for c in calls}
    recorded = {c["action"] for c in record.get(module, [])}
    assert made == recorded, (
        f"{RECORD.name} is stale for {module}: new {sorted(made - recorded)}, gone "
        f"{sorted(recorded - made)}; rerun the whole module with {UPDATE_ENV}=1")
