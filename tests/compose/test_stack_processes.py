"""docker-compose.yaml's stack, run as plain processes, schedules and runs mlops_pipeline.

The services' commands, environments, health checks and start order are read from the compose
file (see process_stack.py for the few translations a machine without Docker needs), so this
proves the file's settings: a real PostgreSQL server, the init service's script, `airflow
api-server`, `scheduler`, `dag-processor`, `triggerer`, the emulator and its seed step. Then it
does what a user does: log in, unpause, trigger through the REST API with a conf, wait for
success, and look at the run's grid in the UI (headless Chromium; the PNG lands in
test-output/compose/).
"""

from __future__ import annotations

import json
import secrets
import struct
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from .airflow_client import AirflowClient
from .browser import screenshot
from .compose_file import REPO, load
from .process_stack import ProcessStack

pytestmark = pytest.mark.slow

OUT = REPO / "test-output" / "compose"
DAG_ID = "mlops_pipeline"
USERNAME = "airflow"
# A run a user would choose in the trigger form: another model than the default, a gate
# the sample data passes, so the run goes all the way to a serving endpoint.
CONF = {
    "model": "ridge",
    "hyperparameters": {"alpha": 1.0},
    "thresholds": {"r2_score": ">= 0.5"},
}


class Stack:
    def __init__(self, processes: ProcessStack, password: str) -> None:
        self.processes = processes
        self.password = password
        port = processes.translate.host_port("airflow-apiserver", 8080)
        self.base_url = f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    password = secrets.token_urlsafe(16)  # what a user puts in .env
    model = load({"_AIRFLOW_WWW_USER_USERNAME": USERNAME, "_AIRFLOW_WWW_USER_PASSWORD": password})
    # What a user who only triggers runs by hand puts in .env: no scheduled run on unpause.
    dotenv = {"MLOPS_SCHEDULE": "none"}
    processes = ProcessStack(model, tmp_path_factory.mktemp("compose"), OUT / "logs", dotenv)
    try:
        processes.up(timeout=480)
        yield Stack(processes, password)
    finally:
        processes.close()


def test_every_component_reports_healthy_and_the_api_needs_the_login(stack: Stack) -> None:
    health = httpx.get(f"{stack.base_url}/api/v2/monitor/health", timeout=30).json()
    for component in ("metadatabase", "scheduler", "triggerer", "dag_processor"):
        assert health[component]["status"] == "healthy", health
    assert httpx.get(f"{stack.base_url}/api/v2/dags", timeout=30).status_code == 401
    wrong = httpx.post(f"{stack.base_url}/auth/token",
                       json={"username": USERNAME, "password": "not-the-password"}, timeout=30)
    assert wrong.status_code == 401
    # airflow-init generated the shared secrets in the volume, readable by owner and group only.
    secrets_dir = stack.processes.translate.volumes_dir / "airflow-secrets"
    for name in ("jwt_secret", "api_secret_key", "fernet_key"):
        path = secrets_dir / name
        assert len(path.read_text()) >= 32, name
        assert path.stat().st_mode & 0o777 == 0o640, name
    assert json.loads((secrets_dir / "simple_auth_manager_passwords.json").read_text()) == {
        USERNAME: stack.password
    }


def test_mlops_pipeline_triggered_through_the_rest_api_succeeds_and_shows_in_the_grid(
    stack: Stack,
) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for stale in OUT.glob("retry-*.log"):
        stale.unlink()
    client = AirflowClient(stack.base_url, USERNAME, stack.password)
    try:
        dag = client.wait_for_dag(DAG_ID, timeout=180)
        assert dag["is_paused"], "DAGs start paused (AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION)"
        client.unpause(DAG_ID)
        run_id = f"compose_{datetime.now(UTC):%Y%m%dT%H%M%S}"
        run = client.trigger(DAG_ID, run_id, CONF)
        assert run["conf"] == CONF and run["run_type"] == "manual"
        retried: list[str] = []

        def keep_retry_evidence(task_id: str, log: str) -> None:
            # Airflow 3.3's scheduler can retry a deferrable task whose trigger fires before
            # it drains the defer-exit event (apache/airflow#67287, #72716); retries absorb it.
            retried.append(task_id)
            (OUT / f"retry-{task_id}.log").write_text(log)

        tasks = {
            t["task_id"]: t["state"]
            for t in client.wait_for_run(DAG_ID, run_id, timeout=600, on_retry=keep_retry_evidence)
        }
    finally:
        client.close()
    assert tasks["quality_gate"] == "success"
    assert tasks["register_model"] == tasks["deploy_serverless"] == "success", tasks
    assert tasks["retrain_alert"] == "skipped", tasks

    png = OUT / "grid.png"
    text = screenshot(
        f"{stack.base_url}/dags/{DAG_ID}/runs/{run_id}",
        client.token,
        png,
        expect_text=[run_id, "quality_gate", "deploy_serverless", "retrain_alert"],
    )
    (OUT / "grid.txt").write_text(text)
    assert "Sign in" not in text and "password" not in text.lower()
    width, height = png_size(png)
    assert (width, height) == (1600, 1000)
    assert png.stat().st_size > 30_000, "a rendered grid, not a blank page"
    (OUT / "run.json").write_text(
        json.dumps({"run_id": run_id, "conf": CONF, "tasks": tasks, "retried": retried}, indent=2)
    )


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])
