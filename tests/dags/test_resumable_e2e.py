"""End to end, against the emulator: failures cost nothing twice.

1. A run whose input is wrong starts exactly one job and fails in seconds, with the job's own
   reason in the offline summary (no retry of a deterministic failure); a hyperparameter typo
   is refused at trigger time, before any job.
2. One run whose worker is SIGKILLed during preprocess, then train, then evaluate: each time the
   run resumes (the killed task marked up for retry, as the scheduler does when a worker's
   heartbeat stops; ``dag.test`` of the same logical date clears and reruns it), the task attaches
   to its still-running job or reuses the completed one, each task has exactly one job, and the
   run completes. The waits are deferred (the DAG's default), so a resumed task re-defers.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sagemaker_mlops import naming

from tests.dags._iam_trail import POLICY
from tests.dags._offline_stack import offline_stack
from tools.offline_summary import failure_lines
from tools.run_offline import DagRunResult, execute_dag_run, start_emulator

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DAG_ID = "mlops_pipeline"
JOB_TASKS = {"preprocess": "processing", "train": "training", "evaluate": "processing"}
UNFINISHED = ("running", "queued", "scheduled", "deferred", "restarting", "up_for_reschedule")
# one dag.test() of a fixed logical date, in a process of its own (so it can be killed)
DRIVER = """
import json, sys
from datetime import datetime
from tools.dag_worker import load_dag
when = datetime.fromisoformat(sys.argv[2])  # run_after too: the run id is made of it
run = load_dag(sys.argv[1]).test(logical_date=when, run_after=when, run_conf=json.loads(sys.argv[3]))
print("RUN STATE", run.state)
"""


@pytest.fixture(scope="module")
def emulator(airflow_db, tmp_path_factory):
    running = start_emulator(tmp_path_factory.mktemp("resumable-emulator"), iam_policy=POLICY)
    try:
        with offline_stack(running):
            yield running
    finally:
        code = running.stop()
        assert code == 0, running.log_path.read_text()[-3000:]


def jobs_of(emulator, task_id: str, run_id: str) -> list[dict[str, Any]]:
    """Every job of one task of one run (its name and any ``-r<n>`` successors)."""
    kind = JOB_TASKS[task_id]
    name = naming.job_name(task_id, run_id)
    sagemaker = emulator.client("sagemaker")
    summaries = getattr(sagemaker, f"list_{kind}_jobs")(NameContains=name)
    return summaries[f"{kind.capitalize()}JobSummaries"]


def test_a_data_error_starts_one_job_and_fails_in_seconds(emulator):
    started = time.monotonic()
    result = execute_dag_run(DAG_ID, {"target": "median_house_valu"})  # a typo in the target
    seconds = time.monotonic() - started
    run_id = result["run_id"]
    assert result["state"] == "failed"
    assert result["tasks"]["preprocess"] == "failed"  # failed, not up_for_retry
    assert [j["ProcessingJobStatus"] for j in jobs_of(emulator, "preprocess", run_id)] == ["Failed"]
    assert jobs_of(emulator, "train", run_id) == []
    assert seconds < 60, f"the run took {seconds:.0f} s"  # a retry would add >= 30 s and a job
    run = DagRunResult(DAG_ID, run_id, result["state"], result["tasks"], seconds, Path("log"))
    [line, *_] = failure_lines(emulator, run)
    assert line.startswith("FAILED preprocess: ") and "median_house_valu" in line


def test_a_hyperparameter_typo_is_refused_before_any_job(emulator):
    from airflow.sdk.exceptions import ParamValidationError

    sagemaker = emulator.client("sagemaker")

    def job_count() -> int:
        return sum(len(page[f"{kind.capitalize()}JobSummaries"])
                   for kind in ("training", "processing")
                   for page in sagemaker.get_paginator(f"list_{kind}_jobs").paginate())

    before = job_count()
    with pytest.raises(ParamValidationError, match="alpha"):
        execute_dag_run(DAG_ID, {"model": "ridge", "hyperparameters": {"alpha": "abc"}})
    assert job_count() == before


class ResumableRun:
    """One DAG run driven by successive worker processes of the same logical date."""

    def __init__(self, emulator, log_dir: Path) -> None:
        self.emulator = emulator
        self.logical_date = datetime.now(UTC).replace(microsecond=0)
        self.run_id = f"manual__{self.logical_date.isoformat()}"
        self.log_dir = log_dir
        self.workers = 0

    def start_worker(self) -> subprocess.Popen:
        self.workers += 1
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "plugins")])}
        log = open(self.log_dir / f"worker-{self.workers}.log", "w")  # noqa: SIM115 - closed by the child's exit
        return subprocess.Popen(
            [sys.executable, "-c", DRIVER, DAG_ID, self.logical_date.isoformat(), json.dumps({})],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def kill_during(self, worker: subprocess.Popen, task_id: str, timeout: float = 300) -> str:
        """SIGKILL the worker once ``task_id``'s job is running; return that job's name."""
        status_key = f"{JOB_TASKS[task_id].capitalize()}JobStatus"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert worker.poll() is None, f"the worker ended before {task_id} started a job"
            jobs = jobs_of(self.emulator, task_id, self.run_id)
            if jobs and jobs[-1][status_key] == "InProgress":
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
                self.mark_killed_tasks_up_for_retry()
                return jobs[-1][f"{JOB_TASKS[task_id].capitalize()}JobName"]
            time.sleep(0.05)
        raise AssertionError(f"{task_id} started no job in {timeout:.0f} s")

    def mark_killed_tasks_up_for_retry(self) -> None:
        """What the scheduler does to the tasks of a worker whose heartbeat stopped."""
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session

        with create_session() as session:
            for ti in session.query(TaskInstance).filter(TaskInstance.dag_id == DAG_ID,
                                                         TaskInstance.run_id == self.run_id):
                if ti.state in UNFINISHED:
                    ti.state = "up_for_retry"

    def task_states(self) -> dict[str, str]:
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session

        with create_session() as session:
            return {ti.task_id: ti.state for ti in session.query(TaskInstance).filter(
                TaskInstance.dag_id == DAG_ID, TaskInstance.run_id == self.run_id)}


def test_worker_killed_during_each_sagemaker_task_resumes_without_a_second_job(emulator, tmp_path):
    run = ResumableRun(emulator, tmp_path)
    killed = {}
    for task_id in ("preprocess", "train", "evaluate"):
        killed[task_id] = run.kill_during(run.start_worker(), task_id)
    last = run.start_worker()
    assert last.wait(timeout=600) == 0, (tmp_path / f"worker-{run.workers}.log").read_text()[-5000:]

    states = run.task_states()
    logs = _logs_after_kills(tmp_path, list(killed))
    assert states["quality_gate"] == "success", states
    for task_id, job in killed.items():
        jobs = jobs_of(emulator, task_id, run.run_id)
        status_key = f"{JOB_TASKS[task_id].capitalize()}JobStatus"
        assert [(j[f"{JOB_TASKS[task_id].capitalize()}JobName"], j[status_key]) for j in jobs] == [
            (job, "Completed")], f"{task_id}: one job, the one the killed worker started"
        assert states[task_id] == "success"
        # the worker after the kill found that job: still running (attach) or done (reuse)
        assert re.search(rf"(attaching to running|reusing completed) job {job}\b", logs[task_id]), task_id


def _logs_after_kills(log_dir: Path, killed: list[str]) -> dict[str, str]:
    """Per killed task, the log of the worker started right after its kill."""
    return {task_id: (log_dir / f"worker-{number + 2}.log").read_text()
            for number, task_id in enumerate(killed)}
