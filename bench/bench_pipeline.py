"""Benchmark: the offline end-to-end run of mlops_pipeline vs the same scripts run directly.

Ours, per repeat (reusing tools/run_offline.py, the code behind ``./dev run``):
- not timed (one-time set-up): ``airflow db migrate`` + pool (once), a fresh emulator with the
  bucket, topic and bundled data (each repeat starts from an empty registry, like a first run),
  and a ``DagWorker`` getting ready: a worker-like interpreter that imports Airflow, parses the
  DAG and brings up the Execution API ``dag.test()`` runs in-process, as a deployed Airflow has
  its DAG parsed and its API server up before anyone triggers a run (its time is in the notes;
  ``./dev run`` overlaps it with ``airflow db migrate``);
- timed, "trigger → endpoint answers": the trigger (``dag.test()`` creates the run and runs every
  task, every SageMaker job on the emulator, the serverless deployment and its smoke check) and
  then one InvokeEndpoint with a real test row that must answer.

Baseline, per repeat: the four scripts run directly in sequence with subprocess on the bundled
data, with the arguments the DAG's job configs give them: preprocess.py → train.py →
evaluate.py → inference.py predicting one row. No Airflow, no emulator, no S3.

The profile kept for the table's notes is where the median run of ours spent its time: each
task's duration (from the Airflow DB), each SageMaker job's script time (from the emulator), the
gaps between tasks, and the worker's time to get ready before the trigger.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sagemaker_mlops.settings import Settings, load_settings

from bench.common import DATA_ARGS, DATA_FILE, TRAINING, Row, log, median, project_env, run_timed
from local_sagemaker.launcher import EmulatorClient
from tools import run_offline

DAG_ID = "mlops_pipeline"
GOAL_RATIO, GOAL_SECONDS = 2.5, 30.0
MODEL = "linear_regression"  # the DAG's default ``model`` param; the baseline trains the same


@dataclass
class PipelineRun:
    seconds: float
    profile: dict[str, Any]


def run_ours(work: Path, home: Path, index: int) -> PipelineRun:
    """One offline run: fresh emulator (not timed), then trigger → endpoint answers (timed)."""
    emulator = run_offline.start_emulator(work / f"emulator-{index}")
    try:
        env = run_offline.airflow_env(home, emulator.url)
        settings = load_settings(environ=env)
        run_offline.bootstrap_aws(emulator, settings)
        log_path = work / f"dag-run-{index}.log"
        worker = run_offline.DagWorker(env, DAG_ID, log_path)
        try:
            ready_seconds = worker.wait_ready()
            started = time.perf_counter()
            run = worker.trigger({})
            if not run.succeeded:
                raise RuntimeError(f"{DAG_ID} run {run.run_id} ended {run.state} ({run.tasks}); see {log_path}")
            answer = answer_from_endpoint(emulator, settings)
            seconds = time.perf_counter() - started
        finally:
            worker.stop()
        profile = {"run_seconds": run.seconds, "ready_seconds": ready_seconds, "answer": answer,
                   "tasks": task_durations(home, run.run_id), "jobs": job_script_seconds(emulator)}
        return PipelineRun(seconds, profile)
    finally:
        emulator.stop()


def answer_from_endpoint(emulator: EmulatorClient, settings: Settings) -> str:
    """The endpoint's answer to a real test row; raises unless it serves the run's model."""
    from sagemaker_mlops.specs import find_spec

    name = find_spec("california_housing").endpoint_name  # the spec of DAG_ID
    endpoint = emulator.client("sagemaker").describe_endpoint(EndpointName=name)
    if endpoint["EndpointStatus"] != "InService":
        raise RuntimeError(f"endpoint {name} is {endpoint['EndpointStatus']}")
    return run_offline.live_prediction(emulator, name, endpoint)


def task_durations(home: Path, run_id: str) -> dict[str, Any]:
    """Per task (start offset, seconds) of one run, from the Airflow metadata DB, plus the run's
    own start/end, so the profile shows the time before the first task and between tasks."""
    with sqlite3.connect(home / "airflow.db") as db:
        tasks = db.execute(
            "SELECT task_id, start_date, end_date FROM task_instance WHERE dag_id=? AND run_id=? "
            "AND start_date IS NOT NULL AND state != 'skipped' ORDER BY start_date", (DAG_ID, run_id)).fetchall()
        run_start, run_end = db.execute(
            "SELECT start_date, end_date FROM dag_run WHERE dag_id=? AND run_id=?",
            (DAG_ID, run_id)).fetchone()
    origin = datetime.fromisoformat(run_start)
    return {
        "run_seconds": (datetime.fromisoformat(run_end) - origin).total_seconds(),
        "tasks": {task: {"start": round((datetime.fromisoformat(s) - origin).total_seconds(), 2),
                         "seconds": round((datetime.fromisoformat(e) - datetime.fromisoformat(s))
                                          .total_seconds(), 2)}
                  for task, s, e in tasks if e},
    }


def job_script_seconds(emulator: EmulatorClient) -> dict[str, float]:
    """{job: seconds its script ran} for every job of the run, from the emulator's job records."""
    import urllib.request

    sagemaker = emulator.client("sagemaker")
    out = {}
    for kind, lister, key in (("processing", sagemaker.list_processing_jobs, "ProcessingJobSummaries"),
                              ("training", sagemaker.list_training_jobs, "TrainingJobSummaries")):
        for summary in lister()[key]:
            name = summary.get("ProcessingJobName") or summary.get("TrainingJobName")
            with urllib.request.urlopen(f"{emulator.url}/_emulator/{kind}-jobs/{name}") as response:
                record = json.load(response)["_emulator"]
            out[name] = {"script_s": round(record["script_seconds"], 2),
                         "runner_s": round(record["runner_seconds"], 2)}
    return out


def run_baseline(work: Path, index: int) -> tuple[float, dict[str, float]]:
    """The four scripts in sequence on the bundled data; (total seconds, seconds per step)."""
    root = work / f"direct-{index}"
    raw, splits, model, packed, evaluation = (root / d for d in ("raw", "splits", "model", "packed",
                                                                 "evaluation"))
    raw.mkdir(parents=True)
    packed.mkdir()
    shutil.copy(DATA_FILE, raw / DATA_FILE.name)
    env = project_env(OPT_ML_DIR=str(root / "opt" / "ml"))
    py = sys.executable
    steps: dict[str, float] = {}
    started = time.perf_counter()
    steps["preprocess"], _ = run_timed([py, str(TRAINING / "preprocess.py"), "--input-dir", str(raw),
                                        "--output-dir", str(splits), *DATA_ARGS], env=env)
    steps["train"], _ = run_timed([py, str(TRAINING / "train.py"), "--train", str(splits / "train"),
                                   "--validation", str(splits / "validation"), "--model-dir", str(model),
                                   "--model", MODEL], env=env)
    t0 = time.perf_counter()
    with tarfile.open(packed / "model.tar.gz", "w:gz") as tar:  # what the training job uploads
        for path in model.iterdir():
            tar.add(path, arcname=path.name)
    steps["package model"] = time.perf_counter() - t0
    steps["evaluate"], _ = run_timed([py, str(TRAINING / "evaluate.py"), "--model-dir", str(packed),
                                      "--test-dir", str(splits / "test"), "--output-dir",
                                      str(evaluation)], env=env)
    row = first_test_row(splits / "test")
    steps["predict one row"], answer = run_timed(
        [py, str(TRAINING / "inference.py"), "--model-dir", str(model), "--content-type", "text/csv"],
        env=env, stdin=row)
    if "predictions" not in answer:
        raise RuntimeError(f"inference.py gave no prediction for {row!r}: {answer!r}")
    return time.perf_counter() - started, steps


def first_test_row(test_dir: Path) -> str:
    """One raw feature row (target column dropped) as the endpoint would receive it."""
    import csv

    path = sorted(test_dir.glob("*.csv"))[0]
    with open(path, newline="") as handle:
        reader = csv.reader(handle)
        header, first = next(reader), next(reader)
    target = header.index("median_house_value")
    return ",".join(v for i, v in enumerate(first) if i != target) + "\n"


def describe_profile(run: PipelineRun) -> str:
    """One line: where a run went. Each task (with its SageMaker job's script time and the
    emulator's time for the job, when it ran one), the gaps between tasks, the final invoke, and
    the worker's time to get ready before the trigger (not timed)."""
    tasks = run.profile["tasks"]
    outside = run.profile["run_seconds"] - tasks["run_seconds"]
    jobs = {name.split("-")[1]: j for name, j in run.profile["jobs"].items()}
    parts = []
    for task, t in tasks["tasks"].items():
        job = jobs.get(task)
        inner = f" (job: script {job['script_s']:.1f} s, emulator {job['runner_s']:.1f} s)" if job else ""
        parts.append(f"{task} {t['seconds']:.1f} s{inner}")
    in_tasks = sum(t["seconds"] for t in tasks["tasks"].values())
    after = run.seconds - run.profile["run_seconds"]
    return (f"end-to-end profile (median run, {run.seconds:.1f} s): creating the run and writing "
            f"its result {outside:.1f} s; tasks: " + ", ".join(parts)
            + f"; between tasks {tasks['run_seconds'] - in_tasks:.1f} s; InvokeEndpoint check "
            f"{after:.1f} s. Before the trigger, not timed: the worker got ready in "
            f"{run.profile['ready_seconds']:.1f} s (interpreter, Airflow import, DAG parse, "
            "Execution API build and first call)")


# Child (Airflow env): a fixed cost the profile points at, measured alone. Every provider hook
# and trigger makes its own boto3 session, which parses the service model again for each client.
FIXED_COSTS_CHILD = """\
import json, time
import boto3
seconds = []
for _ in range(4):
    started = time.perf_counter()
    boto3.session.Session().client("sagemaker", region_name="us-east-1")
    seconds.append(time.perf_counter() - started)
print(json.dumps({"first_client_s": seconds[0], "client_s": sum(seconds[1:]) / 3}))
"""


def fixed_costs(env: dict[str, str]) -> str:
    _, out = run_timed([sys.executable, "-c", FIXED_COSTS_CHILD], env=env)
    costs = json.loads(out.strip().splitlines()[-1])
    return (f"end-to-end fixed cost measured alone: a fresh boto3 session + SageMaker client "
            f"{costs['first_client_s']:.2f} s the first time, {costs['client_s']:.2f} s each after "
            "that (every provider hook and trigger builds its own session, so the service model "
            "is parsed again each time)")


def run(repeat: int) -> tuple[list[Row], list[str]]:
    """Interleaved runs of ours and the baseline, ``repeat`` times each."""
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        work = Path(tmp)
        home = work / "airflow-home"
        home.mkdir()
        log("end-to-end: airflow db migrate (set-up, not timed)")
        bootstrap = run_offline.start_emulator(work / "emulator-setup")
        try:
            env = run_offline.airflow_env(home, bootstrap.url)
            run_offline.prepare_airflow(env, load_settings(environ=env), log=work / "setup.log")
        finally:
            bootstrap.stop()
        ours: list[PipelineRun] = []
        base: list[float] = []
        base_steps: list[dict[str, float]] = []
        for i in range(repeat):
            log(f"end-to-end {i + 1}/{repeat}: {DAG_ID} offline")
            ours.append(run_ours(work, home, i))
            log(f"end-to-end {i + 1}/{repeat}: scripts directly ({ours[-1].seconds:.1f} s ours)")
            seconds, steps = run_baseline(work, i)
            base.append(seconds)
            base_steps.append(steps)
        row = Row("offline end-to-end run (trigger → endpoint answers)",
                  median([r.seconds for r in ours]), median(base), "s",
                  f"≤ {GOAL_RATIO}× and ≤ {GOAL_SECONDS:.0f} s", None,
                  runs={"ours": [r.seconds for r in ours], "baseline": base})
        row.met = row.ratio <= GOAL_RATIO and row.ours <= GOAL_SECONDS
        typical = sorted(ours, key=lambda r: r.seconds)[(len(ours) - 1) // 2]  # the median run
        steps = {k: median([s[k] for s in base_steps]) for k in base_steps[0]}
        notes = [describe_profile(typical),
                 "end-to-end baseline steps (median): "
                 + ", ".join(f"{k} {v:.1f} s" for k, v in steps.items())]
        if not row.met:
            notes.append(fixed_costs(env))
    return [row], notes
