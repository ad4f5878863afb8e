"""The run note's text and where it is sent (the REST call itself: tests/compose)."""

from __future__ import annotations

import pytest
from sagemaker_mlops.gate import decide
from sagemaker_mlops.gate_policy import GatePolicy
from sagemaker_mlops.run_note import api_base_url, set_run_note, verdict_note


def test_a_passing_verdict_is_its_summary_line(evaluation, metric):
    verdict = decide(evaluation({"r2_score": metric(0.7)}), GatePolicy.build("regression", None),
                     champion_expected=False)
    assert verdict_note(verdict) == "Quality gate PASSED on point estimates: 2/2 checks passed"


def test_a_failing_verdict_names_each_failed_check_and_its_requirement(evaluation, metric):
    policy = GatePolicy.build("regression", {"r2_score": ">= 0.8", "rmse": "<= 100"})
    verdict = decide(evaluation({"r2_score": metric(0.7), "rmse": metric(50.0)},
                                load_passed=False), policy, champion_expected=False)
    assert verdict_note(verdict) == (
        "Quality gate FAILED on point estimates: 1/3 checks passed; failed: "
        "r2_score 0.7000 (required >= 0.8000), load_check (the model did not load and predict)"
    )


@pytest.mark.parametrize(("host", "schema", "port", "url"), [
    ("http://airflow-apiserver:8080", None, None, "http://airflow-apiserver:8080"),
    ("airflow-apiserver", None, 8080, "http://airflow-apiserver:8080"),
    ("airflow.example.com/", "https", None, "https://airflow.example.com"),
    ("http://127.0.0.1:28080/", None, 9999, "http://127.0.0.1:28080"),
])
def test_api_base_url_from_the_connection(host, schema, port, url):
    assert api_base_url(host, schema, port) == url


def test_without_the_connection_the_note_is_left_alone(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_NO_SUCH_API", raising=False)
    assert set_run_note("mlops_pipeline", "manual__x", "note", "no_such_api") is False
