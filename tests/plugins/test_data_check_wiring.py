"""The Airflow side of the data checks: Params and their validation, the champion's profile in
the registry metadata, and the data-check alert built from data_checks.json."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread
from types import SimpleNamespace

import boto3
import pytest
from airflow.sdk.definitions.param import ParamsDict
from moto import mock_aws
from sagemaker_mlops import alerts, registry, tasks
from sagemaker_mlops.params import pipeline_params
from sagemaker_mlops.plan import build_plan
from sagemaker_mlops.run_options import ParamsError, parse_run_options
from sagemaker_mlops.settings import PROJECT_ROOT, load_settings
from sagemaker_mlops.specs import load_spec

from include.training.data_check_policy import DEFAULTS, MODES, THRESHOLDS


def defaults() -> dict:
    return {name: param.value for name, param in pipeline_params().items()}


def test_data_check_params_carry_the_documented_defaults_in_their_own_section():
    params = pipeline_params()
    assert params["data_checks"].value == "enforce"
    assert params["data_checks"].schema["enum"] == list(MODES)
    for t in THRESHOLDS:
        assert params[t.name].value == t.default == DEFAULTS[t.name]
        assert params[t.name].schema["section"] == "Data checks"
        assert f"Default {t.default:g}." in params[t.name].description
    options = parse_run_options(defaults())
    assert options.data_checks.mode == "enforce" and options.data_checks.limits == DEFAULTS


def test_a_pipeline_spec_overrides_a_data_check_default():
    params = pipeline_params({"drift_psi_max": 0.1, "data_checks": "warn"})
    assert (params["drift_psi_max"].value, params["data_checks"].value) == (0.1, "warn")
    ParamsDict(params).validate()


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("data_checks", "off", "data_checks 'off' is not one of enforce, warn"),
        ("drift_psi_max", -0.1, "drift_psi_max must be a number from 0 to 10"),
        ("missing_rate_max", 1.5, "missing_rate_max must be a number from 0 to 1"),
        ("target_psi_max", True, "target_psi_max must be a number"),
    ],
)
def test_bad_data_check_values_are_refused_with_the_param_named(name, value, message):
    with pytest.raises(ParamsError, match=message):
        parse_run_options({**defaults(), name: value})


def _version(metadata: dict[str, str]) -> registry.ModelVersion:
    return registry.ModelVersion("arn", 4, "Approved", "s3://b/m.tar.gz", None, metadata)


def test_the_champions_profile_comes_from_its_metadata():
    uri = "s3://b/california-housing/runs/manual__2026-11-23T17-00-00-00-00/data/profile/profile.json"
    assert registry.data_profile_uri(_version({registry.DATA_PROFILE_KEY: uri})) == uri
    assert registry.metadata_text(uri) == uri  # survives the API's character set unchanged
    assert registry.data_profile_uri(_version({})) is None  # registered before profiles were kept
    assert registry.data_profile_uri(None) is None


def test_the_baseline_is_the_champions_profile_while_it_exists(monkeypatch, caplog):
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", '{"conn_type": "aws", "extra": {"region_name": "us-east-1"}}')
    for key, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    kept = "s3://bucket-x/p/runs/r1/data/profile/profile.json"
    gone = "s3://bucket-x/p/runs/r0/data/profile/profile.json"
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="bucket-x")
        s3.put_object(Bucket="bucket-x", Key="p/runs/r1/data/profile/profile.json", Body=b"{}")
        assert tasks.baseline_profile(_version({registry.DATA_PROFILE_KEY: kept}), "aws_default") == kept
        assert tasks.baseline_profile(_version({registry.DATA_PROFILE_KEY: gone}), "aws_default") is None
        assert f"data profile {gone} no longer exists" in caplog.text
        assert tasks.baseline_profile(_version({}), "aws_default") is None
        assert "has no recorded data profile" in caplog.text
        assert tasks.baseline_profile(None, "aws_default") is None


RESULT = {
    "passed": False,
    "summary": "Data checks FAILED: 1/2 checks passed (failed: drift PSI median_income)",
    "checks": [
        {"check": "drift PSI", "column": "median_income", "shown": "1.2440", "threshold": "< 0.25",
         "conclusion": "FAIL", "passed": False},
        {"check": "missing rate", "column": "longitude", "shown": "0.0000", "threshold": "<= 0.5",
         "conclusion": "pass", "passed": True},
    ],
    "table": "Check | Value | Threshold | Conclusion\n(rows)",
    "notes": [],
}


def test_the_data_check_alert_names_the_failed_checks_and_carries_the_table():
    subject, message = alerts.data_check_alert(
        RESULT, dag_id="mlops_pipeline", run_id="manual__1",
        data_checks_uri="s3://bucket-x/p/runs/manual__1/data/profile/data_checks.json")
    assert subject == "[mlops_pipeline] retrain blocked: 1 data check(s) failed"
    assert "no model was trained (no training job ran)" in message
    assert "- drift PSI median_income: 1.2440 (threshold < 0.25)" in message
    assert "longitude:" not in message.split("Check | Value")[0]
    assert RESULT["table"] in message
    assert "s3://bucket-x/p/runs/manual__1/data/profile/data_checks.json" in message
    assert "data_checks 'warn'" in message


class _RecordingApi(BaseHTTPRequestHandler):
    """The two REST calls run_note makes: a token, then PATCH of the run's note."""

    notes: list[tuple[str, dict]] = []

    def do_POST(self):  # noqa: N802 - http.server's naming
        self._answer({"access_token": "t0k"} if self.path == "/auth/token" else {})

    def do_PATCH(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        assert self.headers["Authorization"] == "Bearer t0k"
        type(self).notes.append((self.path, body))
        self._answer({})

    def _answer(self, document: dict) -> None:
        if self.command == "POST":
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
        payload = json.dumps(document).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


class _TaskInstance:
    def __init__(self) -> None:
        self.pushed: dict = {}

    def xcom_push(self, key: str, value) -> None:
        self.pushed[key] = value


def test_a_failed_data_check_skips_training_sends_the_alert_and_notes_the_run(monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RecordingApi)
    Thread(target=server.serve_forever, daemon=True).start()
    for key, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", '{"conn_type": "aws", "extra": {"region_name": "us-east-1"}}')
    monkeypatch.setenv("AIRFLOW_CONN_AIRFLOW_API", json.dumps({
        "conn_type": "http", "host": f"http://127.0.0.1:{server.server_port}",
        "login": "admin", "password": "admin"}))
    spec = load_spec(PROJECT_ROOT / "dags" / "pipelines" / "california_housing.yaml")
    params = {name: param.value for name, param in pipeline_params(spec.params).items()}
    plan = build_plan(params, "manual__1", load_settings(environ={}), spec)
    bucket, key = plan.layout.data_checks_json_uri.removeprefix("s3://").split("/", 1)
    ti = _TaskInstance()
    try:
        with mock_aws():
            s3 = boto3.client("s3")
            s3.create_bucket(Bucket=bucket)
            s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(RESULT).encode())
            chosen = tasks.data_checks(plan.to_xcom(), "aws_default", ti, SimpleNamespace(dag_id=spec.dag_id))
    finally:
        server.shutdown()
    assert chosen == tasks.DATA_CHECK_ALERT_TASK
    assert ti.pushed["data_checks"] == {"passed": False, "summary": RESULT["summary"]}
    assert "median_income" in ti.pushed["alert_message"]
    [(path, body)] = _RecordingApi.notes
    assert path == f"/api/v2/dags/{spec.dag_id}/dagRuns/manual__1?update_mask=note"
    assert body == {"note": f"Training skipped: {RESULT['summary']}"}
