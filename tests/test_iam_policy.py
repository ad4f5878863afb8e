"""Every action of the shipped Airflow policy is needed: without it, a named end-to-end test fails.

The end-to-end tests run under deploy/iam/airflow-policy.json and record which of their tests
made which call (tests/dags/iam_calls.json, kept current by those tests). Here each action is
removed in turn and the recorded calls are evaluated against the reduced policy with the same
evaluator the emulator enforces with: some call of a named test must then be refused.
tests/dags/test_iam_policy_e2e.py shows once, for real, that such a refusal fails the task.
"""

from __future__ import annotations

import json
import re

import pytest

from local_sagemaker.iam import Call, evaluate, policy_actions
from tools import iam_policy

POLICY = iam_policy.offline_policy()
RECORD = json.loads(iam_policy.RECORD.read_text())
NEEDED = iam_policy.needed_by(POLICY, RECORD)


@pytest.mark.parametrize("action", policy_actions(POLICY))
def test_removing_the_action_fails_a_named_end_to_end_test(action):
    tests = NEEDED[action]["tests"]
    assert tests, (f"{action}: no recorded end-to-end call needs it; drop it from "
                   "deploy/iam/airflow-policy.json or add the test that exercises it")
    print(f"without {action}: {tests[0]} fails" + (f" (and {len(tests) - 1} more)" if len(tests) > 1 else "")
          + f"; called by {', '.join(NEEDED[action]['callers'])}")


def test_the_recorded_tests_exist_and_every_recorded_call_is_allowed():
    for module, calls in RECORD.items():
        for call in calls:
            assert evaluate(POLICY, Call(call["action"], call["resource"],
                                         tuple(sorted(call.get("conditions", {}).items())))) == "allowed", call
            for test in call["tests"]:
                path, name = test.split("::")
                name = name.split("[", 1)[0]  # a parametrized test's id names its function
                assert path == f"tests/dags/{module}.py", test
                source = (iam_policy.ROOT / path).read_text()
                assert re.search(rf"^def {re.escape(name)}\(", source, re.M), f"{test} no longer exists"
