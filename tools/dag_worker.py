"""Running one DAG run the way a deployed Airflow would, for the offline runner and the tests.

``DagWorker`` is a child process configured like an Airflow worker that parses the DAGs folder
and warms the Execution API *before* the trigger, then runs one DAG run with ``dag.test()``;
a listener in it keeps each failed task's own error for the summary.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow.listeners import hookimpl

ROOT = Path(__file__).resolve().parents[1]
RUNNER = ROOT / "tools" / "run_offline.py"  # its hidden ``dag-test`` command is the child side


@dataclass
class DagRunResult:
    dag_id: str
    run_id: str
    state: str
    tasks: dict[str, str | None]
    seconds: float
    log_path: Path
    failures: dict[str, str] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return self.state == "success"


class RunRejected(ValueError):
    """The DAG's Params rejected the run configuration (as the trigger form would)."""


class DagWorker:
    """A child process configured like an Airflow worker that gets ready *before* the trigger.

    Starting it imports Airflow, parses the DAG folder and builds the Execution API app that
    ``dag.test()`` runs in-process: what a deployed Airflow has up (dag processor, API server)
    before anyone presses Trigger. ``trigger(conf)`` then runs one DAG run with ``dag.test()``.
    Getting ready overlaps with whatever the caller does meanwhile (``airflow db migrate``).
    """

    def __init__(self, env: dict[str, str], dag_id: str, log_path: Path) -> None:
        self.dag_id = dag_id
        self.log_path = log_path
        self.result_file = log_path.with_suffix(".result.json")
        self.ready_file = log_path.with_suffix(".ready")
        for stale in (self.result_file, self.ready_file):
            stale.unlink(missing_ok=True)
        self.started = time.monotonic()
        with open(log_path, "a") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(RUNNER), "dag-test", dag_id,
                 "--result", str(self.result_file), "--ready", str(self.ready_file)],
                cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
                text=True,
            )

    def wait_ready(self, timeout: float = 300) -> float:
        """Block until the worker is ready; return the seconds it took from its start."""
        deadline = self.started + timeout
        while not self.ready_file.exists():
            if self.process.poll() is not None:
                raise RuntimeError(f"the {self.dag_id} worker exited while getting ready; see {self.log_path}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the {self.dag_id} worker was not ready in {timeout:.0f} s; see {self.log_path}")
            time.sleep(0.02)
        return float(self.ready_file.read_text())

    def trigger(self, conf: dict[str, Any] | None = None) -> DagRunResult:
        """Run one DAG run with ``conf`` and wait for it to end (the worker then exits)."""
        self.wait_ready()
        started = time.monotonic()
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(conf or {}) + "\n")
        self.process.stdin.close()
        # the run is over when its result is written; the interpreter's exit is not part of it
        while not self.result_file.exists() and self.process.poll() is None:
            time.sleep(0.02)
        seconds = time.monotonic() - started
        if not self.result_file.exists():
            raise RuntimeError(f"{self.dag_id} did not produce a run; see {self.log_path}")
        data = json.loads(self.result_file.read_text())
        if "rejected" in data:
            raise RunRejected(f"{self.dag_id} rejected the run configuration: {data['rejected']}")
        return DagRunResult(self.dag_id, data["run_id"], data["state"], data["tasks"], seconds,
                            self.log_path, data.get("failures", {}))

    def stop(self, grace: float = 30) -> None:
        """Let a finished run's interpreter exit (it flushes its log); kill one that hangs."""
        try:
            self.process.wait(timeout=grace if self.result_file.exists() else 0)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def run_dag(
    env: dict[str, str], dag_id: str, conf: dict[str, Any] | None, log_path: Path
) -> DagRunResult:
    """Run one DAG run to the end with ``dag.test()`` in a child process (an Airflow worker's env)."""
    worker = DagWorker(env, dag_id, log_path)
    try:
        return worker.trigger(conf)
    finally:
        worker.stop()


def load_dag(dag_id: str) -> Any:
    """The DAG as the DAG processor parses it from the dags folder."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    if dag_id not in bag.dags:
        raise RuntimeError(f"DAG {dag_id} not found; import errors: {bag.import_errors}")
    return bag.dags[dag_id]


def execute_dag_run(dag_id: str, conf: dict[str, Any] | None = None, dag: Any = None) -> dict[str, Any]:
    """Run one DAG run with ``dag.test()`` in this process (Airflow must be configured)."""
    dag_run = (dag or load_dag(dag_id)).test(run_conf=conf or {})
    tasks = {ti.task_id: getattr(ti.state, "value", ti.state) for ti in dag_run.get_task_instances()}
    state = getattr(dag_run.state, "value", dag_run.state)
    return {"run_id": dag_run.run_id, "state": state, "tasks": tasks}


def _dag_test(dag_id: str, result_file: Path, ready_file: Path) -> int:
    """Child side of ``DagWorker``: get ready, say so, read the run conf, run; a run rejected at
    trigger time reports why."""
    from airflow.sdk.exceptions import ParamValidationError

    started = time.monotonic()
    dag = load_dag(dag_id)
    warm_execution_api()
    # What the worker built to get ready lives as long as it does. Airflow's LocalExecutor freezes
    # it the same way before it forks its workers; here every task of the run shares this one
    # interpreter, and each full collection would scan it again (seconds per run, measured).
    gc.freeze()
    _write_atomically(ready_file, f"{time.monotonic() - started:.3f}")
    line = sys.stdin.readline()
    if not line:
        return 3  # the parent went away before triggering
    recorder = FailureRecorder.register()
    try:
        result = execute_dag_run(dag_id, json.loads(line), dag=dag)
    except ParamValidationError as exc:
        _write_atomically(result_file, json.dumps({"rejected": rejection(exc)}))
        return 2
    result["failures"] = recorder.reasons
    _write_atomically(result_file, json.dumps(result))
    return 0 if result["state"] == "success" else 1


class FailureRecorder:
    """An Airflow listener (in the worker) keeping each failed task's own error, first line."""

    def __init__(self) -> None:
        self.reasons: dict[str, str] = {}

    @classmethod
    def register(cls) -> FailureRecorder:
        from airflow.sdk.listener import get_listener_manager

        recorder = cls()
        get_listener_manager().add_listener(recorder)
        return recorder

    @hookimpl
    def on_task_instance_failed(self, previous_state: Any, task_instance: Any, error: Any) -> None:
        text = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(error or "")
        first = next((line for line in text.splitlines() if line.strip()), "")
        self.reasons[task_instance.task_id] = first.strip()


def rejection(exc: Exception) -> str:
    """A trigger-time Param error in one line that names the parameter and the field in it."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    where = next((line for line in lines if line.startswith("On instance")), "")
    return f"{lines[0]} ({where.rstrip(':')})" if where else lines[0]


def warm_execution_api() -> None:
    """Build and call once the Execution API that ``dag.test()`` runs in-process.

    It is built lazily and its first request costs seconds (about 1 s to build, 3 s for the first
    call), which would otherwise land inside the run's first task; a deployed Airflow's API server
    has long been up when a run is triggered.
    """
    import httpx
    from airflow.sdk.execution_time.supervisor import in_process_api_server

    api = in_process_api_server()
    client = httpx.Client(transport=api.transport, base_url="http://in-process.invalid./")
    client.get("health/ping").raise_for_status()


def _write_atomically(path: Path, text: str) -> None:
    """The parent polls for these files: it must never read one half-written."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    partial.replace(path)
