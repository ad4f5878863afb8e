"""Run the quality-gated pipeline end to end, offline, with one command.

    python tools/run_offline.py [--conf JSON] [--dag mlops_pipeline] [--keep-emulator]

Sets up an Airflow home under .airflow/, starts the local SageMaker emulator on a free
loopback port (fresh state under .local_sagemaker/offline-run/), creates the bucket and the
alert topic, uploads the bundled California housing data, runs the DAG with ``dag.test()`` in
a child process configured like any Airflow worker, prints a summary a person can read (the
gate's verdict table, the model version and its approval, the endpoint and a live
prediction) and stops the emulator. Exits non-zero when the DAG run failed.

The functions here are the same ones the end-to-end tests use.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = ROOT / "plugins"
DATA_FILE = ROOT / "include" / "data" / "california_housing.csv.gz"
REGION = "us-east-1"
START_TIMEOUT = 60

for _path in (ROOT, PLUGINS):  # run as a script: make local_sagemaker and sagemaker_mlops importable
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from sagemaker_mlops import job_configs, registry  # noqa: E402
from sagemaker_mlops.gate import Verdict, render_table, summary_line  # noqa: E402
from sagemaker_mlops.settings import Settings, load_settings  # noqa: E402

from local_sagemaker.launcher import EmulatorClient, EmulatorProcess  # noqa: E402


def start_emulator(data_dir: Path) -> EmulatorProcess:
    """Start the emulator on a free loopback port; return once /health answers."""
    return EmulatorProcess(data_dir, start_timeout=START_TIMEOUT)


def _pythonpath() -> str:
    parts = [str(ROOT), str(PLUGINS), os.environ.get("PYTHONPATH", "")]
    return os.pathsep.join(p for p in parts if p)


def aws_env(endpoint_url: str) -> dict[str, str]:
    """How every Airflow process reaches the emulator: the aws_default connection and guards."""
    connection = {
        "conn_type": "aws", "login": "test", "password": "test",
        "extra": {"region_name": REGION, "endpoint_url": endpoint_url},
    }
    return {
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(connection),
        # nothing may reach real AWS, whatever builds a client without the connection
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": endpoint_url,
        "MLOPS_POLL_SECONDS": "0.2",  # the emulator answers a status call in ~1 ms
    }


def airflow_env(home: Path, endpoint_url: str) -> dict[str, str]:
    """Environment of every Airflow process of the offline run."""
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PLUGINS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "PYTHONPATH": _pythonpath(),
        **aws_env(endpoint_url),
    }
    env.pop("AIRFLOW__CORE__EXECUTOR", None)
    return env


def airflow(env: dict[str, str], *args: str, log: Path | None = None) -> subprocess.CompletedProcess:
    """Run an ``airflow`` CLI command; raise with its output when it fails."""
    command = [sys.executable, "-m", "airflow", *args]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if log is not None:
        with open(log, "a") as handle:
            handle.write(f"$ airflow {' '.join(args)}\n{result.stdout}{result.stderr}\n")
    if result.returncode != 0:
        raise RuntimeError(
            f"airflow {' '.join(args)} failed ({result.returncode}):\n{result.stdout[-3000:]}"
            f"{result.stderr[-3000:]}"
        )
    return result


def prepare_airflow(env: dict[str, str], settings: Settings, log: Path | None = None) -> None:
    """Migrate the metadata DB and create the deploy pool."""
    airflow(env, "db", "migrate", log=log)
    ensure_pool(env, settings, log=log)


def ensure_pool(env: dict[str, str], settings: Settings, log: Path | None = None) -> None:
    """The one-slot pool that serializes deployments of both DAGs."""
    airflow(env, "pools", "set", settings.deploy_pool, "1",
            "one deployment at a time (mlops_pipeline and deploy_approved_model)", log=log)


def bootstrap_aws(emulator: EmulatorClient, settings: Settings) -> str:
    """Create the bucket and alert topic, upload the bundled data; return the raw data URI."""
    s3 = emulator.client("s3")
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if settings.bucket not in existing:
        s3.create_bucket(Bucket=settings.bucket)
    emulator.client("sns").create_topic(Name=settings.topic_arn.rsplit(":", 1)[-1])
    layout = job_configs.RunLayout(settings.bucket, settings.prefix, "unused")
    bucket, prefix = job_configs.split_s3_uri(layout.default_raw_uri)
    s3.upload_file(str(DATA_FILE), bucket, prefix + DATA_FILE.name)
    return layout.default_raw_uri


class RunRejected(ValueError):
    """The DAG's Params rejected the run configuration (as the trigger form would)."""


@dataclass
class DagRunResult:
    dag_id: str
    run_id: str
    state: str
    tasks: dict[str, str | None]
    seconds: float
    log_path: Path

    @property
    def succeeded(self) -> bool:
        return self.state == "success"


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
                [sys.executable, str(Path(__file__).resolve()), "dag-test", dag_id,
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
                            self.log_path)

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
    _write_atomically(ready_file, f"{time.monotonic() - started:.3f}")
    line = sys.stdin.readline()
    if not line:
        return 3  # the parent went away before triggering
    try:
        result = execute_dag_run(dag_id, json.loads(line), dag=dag)
    except ParamValidationError as exc:
        _write_atomically(result_file, json.dumps({"rejected": str(exc).splitlines()[0]}))
        return 2
    _write_atomically(result_file, json.dumps(result))
    return 0 if result["state"] == "success" else 1


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


def read_s3_json(emulator: EmulatorClient, uri: str) -> Any:
    bucket, key = job_configs.split_s3_uri(uri)
    return json.loads(emulator.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())


def summarize(emulator: EmulatorClient, settings: Settings, run: DagRunResult) -> str:
    """What a person wants to know after a run, from the systems themselves."""
    lines = [f"DAG run {run.dag_id} / {run.run_id}: {run.state} in {run.seconds:.1f} s"]
    lines.append("Tasks: " + ", ".join(f"{t}={s}" for t, s in sorted(run.tasks.items())))
    layout = job_configs.RunLayout(settings.bucket, settings.prefix, run.run_id)
    try:
        verdict = Verdict.from_dict(read_s3_json(emulator, layout.verdict_json_uri))
        lines += ["", summary_line(verdict), render_table(verdict)]
        lines += [f"  reason: {r}" for r in verdict.reasons]
    except Exception as exc:  # noqa: BLE001 - the summary reports what is missing
        lines += ["", f"No verdict ({layout.verdict_json_uri}): {exc}"]
    sagemaker = emulator.client("sagemaker")
    if run.dag_id == "mlops_pipeline":
        lines += ["", "SageMaker jobs: " + job_durations(sagemaker, run.run_id)]
    version = registry.find_run_version(sagemaker, settings.model_package_group, run.run_id)
    lines.append("")
    if version is None:
        lines.append(f"Model registry: this run registered no version in {settings.model_package_group}")
    else:
        lines.append(
            f"Model registry: {settings.model_package_group} version {version.version} "
            f"is {version.approval_status} ({version.arn})"
        )
    try:
        endpoint = sagemaker.describe_endpoint(EndpointName=settings.endpoint_name)
    except Exception:  # noqa: BLE001
        lines.append(f"Endpoint {settings.endpoint_name}: does not exist")
        return "\n".join(lines)
    lines.append(
        f"Endpoint {settings.endpoint_name}: {endpoint['EndpointStatus']} on "
        f"{endpoint['EndpointConfigName']}"
    )
    lines.append(live_prediction(emulator, settings, endpoint))
    return "\n".join(lines)


def job_durations(sagemaker: Any, run_id: str) -> str:
    """How long each job of the run took, from the jobs' own start and end times."""
    parts = []
    for kind, describe, prefix in (
        ("preprocess", sagemaker.describe_processing_job, "Processing"),
        ("train", sagemaker.describe_training_job, "Training"),
        ("evaluate", sagemaker.describe_processing_job, "Processing"),
    ):
        name = job_configs.job_name(kind, run_id)
        try:
            job = describe(**{f"{prefix}JobName": name})
        except Exception:  # noqa: BLE001 - a job that never started
            parts.append(f"{kind} not run")
            continue
        start, end = job.get(f"{prefix}StartTime"), job.get(f"{prefix}EndTime")
        took = f" in {(end - start).total_seconds():.1f} s" if start and end else ""
        parts.append(f"{kind} {job[f'{prefix}JobStatus']}{took}")
    return ", ".join(parts)


def live_prediction(emulator: EmulatorClient, settings: Settings, endpoint: dict[str, Any]) -> str:
    """Invoke the endpoint with one real test row of the model it serves."""
    from sagemaker_mlops import deploy

    sagemaker = emulator.client("sagemaker")
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    model = sagemaker.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    package = (model.get("Containers") or [model.get("PrimaryContainer", {})])[0].get("ModelPackageName")
    if not package:
        return "Live prediction: the endpoint's model is not from the registry"
    version = registry.describe_version(sagemaker, package)
    sample = read_s3_json(emulator, version.evaluation_uri)["sample_predictions"]
    row = {"columns": sample["columns"], "rows": sample["rows"][:1],
           "predictions": sample["predictions"][:1]}
    body, _ = deploy.sample_payload(row)
    response = emulator.client("sagemaker-runtime").invoke_endpoint(
        EndpointName=settings.endpoint_name, Body=body, ContentType="text/csv",
        Accept="application/json",
    )
    predicted = deploy.parse_predictions(response["Body"].read(), response["ContentType"])
    features = ", ".join(f"{c}={v}" for c, v in zip(sample["columns"], sample["rows"][0], strict=True))
    return (
        f"Live prediction (version {version.version}) for [{features}]: {predicted[0]} "
        f"(evaluation predicted {sample['predictions'][0]})"
    )


def run_offline(
    conf: dict[str, Any] | None = None, dag_id: str = "mlops_pipeline", keep_emulator: bool = False
) -> int:
    home = ROOT / ".airflow"
    home.mkdir(exist_ok=True)
    data_dir = ROOT / ".local_sagemaker" / "offline-run"
    shutil.rmtree(data_dir, ignore_errors=True)  # S3 lives in the emulator's memory: start clean
    log_path = home / "logs" / f"offline-{datetime.now(UTC):%Y%m%dT%H%M%S}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    print("Starting the local SageMaker emulator", flush=True)
    emulator = start_emulator(data_dir)
    try:
        env = airflow_env(home, emulator.url)
        settings = load_settings(environ=env)
        print(f"Emulator at {emulator.url} (log: {emulator.log_path}); preparing Airflow in {home}",
              flush=True)
        worker = DagWorker(env, dag_id, log_path.with_suffix(".worker.log"))  # gets ready meanwhile
        try:
            prepare_airflow(env, settings, log=log_path)
            raw = bootstrap_aws(emulator, settings)
            print(f"Uploaded {DATA_FILE.name} to {raw}; running {dag_id} (log: {worker.log_path})",
                  flush=True)
            run = worker.trigger(conf)
        except RunRejected as exc:
            print(f"\n{exc}", file=sys.stderr)
            return 2
        finally:
            worker.stop()
        print("\n" + summarize(emulator, settings, run))
        print(f"\nWall time of the offline run: {time.monotonic() - started:.1f} s")
        if keep_emulator:
            print(f"Emulator still running at {emulator.url} (pid {emulator.process.pid}); Ctrl-C stops it")
            try:
                emulator.process.wait()
            except KeyboardInterrupt:
                pass
        return 0 if run.succeeded else 1
    finally:
        emulator.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="the one-command offline run (default)")
    for target in (parser, run):
        target.add_argument("--conf", default="{}", help="DAG run conf (JSON), e.g. '{\"model\": \"ridge\"}'")
        target.add_argument("--dag", default="mlops_pipeline")
        target.add_argument("--keep-emulator", action="store_true",
                            help="keep the emulator (and endpoint) running after the summary")
    child = sub.add_parser("dag-test", help=argparse.SUPPRESS)
    child.add_argument("dag_id")
    child.add_argument("--result", type=Path, required=True)
    child.add_argument("--ready", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "dag-test":
        return _dag_test(args.dag_id, args.result, args.ready)
    try:
        conf = json.loads(args.conf)
    except json.JSONDecodeError as exc:
        parser.error(f"--conf is not valid JSON: {exc}")
    return run_offline(conf, args.dag, args.keep_emulator)


if __name__ == "__main__":
    sys.exit(main())
