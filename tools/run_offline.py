"""Run a quality-gated pipeline end to end, offline, with one command.

    python tools/run_offline.py [--pipeline NAME | --data PATH --target COL [--problem-type P]]
                                [--conf JSON] [--fresh] [--keep-emulator]

Sets up an Airflow home under .airflow/, starts the local SageMaker emulator on a free
loopback port with its state under .local_sagemaker/offline-run/ (kept between runs, so a second
run of a pipeline meets the first one's Approved version as champion; ``--fresh`` starts clean),
creates the bucket and the alert topic, uploads the pipeline's data (a shipped spec's bundled
sample, or the CSV given with ``--data``, for which a spec is written and validated), runs the
pipeline's DAG with ``dag.test()`` in a child process configured like any Airflow worker, prints
a summary a person can read (failed tasks with their own reasons, the gate's verdict table, the
model version and its approval, the endpoint and a live prediction) and stops the emulator.
Exits non-zero when the DAG run failed.

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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = ROOT / "plugins"
OFFLINE_DIR = ROOT / ".local_sagemaker" / "offline-run"
AIRFLOW_HOME = ROOT / ".airflow"
BYOD_SPECS = AIRFLOW_HOME / "pipelines"  # specs written for --data (MLOPS_PIPELINES_DIR)
DEFAULT_PIPELINE = "california_housing"
REGION = "us-east-1"
START_TIMEOUT = 60

for _path in (ROOT, PLUGINS):  # run as a script: make local_sagemaker and sagemaker_mlops importable
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from sagemaker_mlops import naming  # noqa: E402
from sagemaker_mlops.settings import Settings, load_settings  # noqa: E402
from sagemaker_mlops.specs import EXTRA_DIR_ENV, PipelineSpec, SpecError, find_spec, load_specs  # noqa: E402

from local_sagemaker.launcher import EmulatorClient, EmulatorProcess  # noqa: E402
from tools.dag_worker import (  # noqa: E402,F401 - the e2e tests and bench import these from here
    DagRunResult,
    DagWorker,
    RunRejected,
    _dag_test,
    execute_dag_run,
    load_dag,
    run_dag,
)
from tools.data_spec import DataError, write_spec  # noqa: E402
from tools.offline_summary import (  # noqa: E402,F401 - the e2e tests and bench import these from here
    job_durations,
    live_prediction,
    read_s3_json,
    summarize,
)


def start_emulator(data_dir: Path, *, iam_policy: Path | None = None,
                   iam_audit: Path | None = None) -> EmulatorProcess:
    """Start the emulator on a free loopback port; return once /health answers. With
    ``iam_policy`` the Airflow identity's calls are checked against it (decisions to ``iam_audit``)."""
    args = [] if iam_policy is None else ["--iam-policy", str(iam_policy)]
    if iam_audit is not None:
        args += ["--iam-audit", str(iam_audit)]
    return EmulatorProcess(data_dir, *args, start_timeout=START_TIMEOUT)


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
        "MLOPS_RETRY_DELAY_SECONDS": "2",  # no instance to provision before a retried job
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
        EXTRA_DIR_ENV: str(BYOD_SPECS),
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


def bootstrap_aws(
    emulator: EmulatorClient, settings: Settings, specs: list[PipelineSpec] | None = None
) -> str:
    """Create the bucket and alert topic, upload each spec's sample data; return the raw URIs."""
    s3 = emulator.client("s3")
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if settings.bucket not in existing:
        s3.create_bucket(Bucket=settings.bucket)
    emulator.client("sns").create_topic(Name=settings.topic_arn.rsplit(":", 1)[-1])
    specs = load_specs()[0] if specs is None else specs
    return ", ".join(upload_sample(emulator, settings, spec) for spec in specs if spec.sample_data)


def upload_sample(emulator: EmulatorClient, settings: Settings, spec: PipelineSpec) -> str:
    """Make the spec's raw prefix hold exactly its sample data file; return the prefix's URI."""
    if spec.sample_data is None or not spec.sample_data.is_file():
        raise SpecError(f"{spec.path}: field 'sample_data': {spec.sample_data} does not exist")
    s3 = emulator.client("s3")
    layout = naming.RunLayout(settings.bucket, spec.s3_prefix, "unused")
    bucket, prefix = naming.split_s3_uri(layout.default_raw_uri)
    key = prefix + spec.sample_data.name
    stale = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
             for o in page.get("Contents", []) if o["Key"] != key]
    for old in stale:  # preprocess reads every file under raw/: only this data set may be there
        s3.delete_object(Bucket=bucket, Key=old)
    s3.upload_file(str(spec.sample_data), bucket, key)
    return layout.default_raw_uri


def prepare_pipeline(
    pipeline: str | None, data: Path | None, target: str | None, problem_type: str | None
) -> tuple[PipelineSpec, str]:
    """The spec to run: a shipped one by name, or one written for ``--data``; and a note."""
    if data is not None:
        if not target:
            raise DataError("--data needs --target: the column to predict")
        spec, how = write_spec(data, target, problem_type, BYOD_SPECS)
        note = (f"Pipeline {spec.name} for {data.name}: target {target}, "
                f"{spec.params['problem_type']} ({how}), model {spec.params['model']}; "
                f"spec {spec.path.relative_to(ROOT) if spec.path.is_relative_to(ROOT) else spec.path}")
        return spec, note
    spec = find_spec(pipeline or DEFAULT_PIPELINE, [ROOT / "dags" / "pipelines", BYOD_SPECS])
    return spec, f"Pipeline {spec.name} (spec {spec.path.relative_to(ROOT)})"


def reset_offline_state(home: Path = AIRFLOW_HOME, data_dir: Path = OFFLINE_DIR) -> None:
    """``--fresh``: forget the emulator's state (S3, registry, endpoints) and Airflow's runs."""
    shutil.rmtree(data_dir, ignore_errors=True)
    (home / "airflow.db").unlink(missing_ok=True)
    shutil.rmtree(BYOD_SPECS, ignore_errors=True)


def run_offline(
    conf: dict[str, Any] | None = None, spec: PipelineSpec | None = None,
    keep_emulator: bool = False, fresh: bool = False,
) -> int:
    spec = spec or find_spec(DEFAULT_PIPELINE)
    if fresh:
        reset_offline_state()
    home = AIRFLOW_HOME
    home.mkdir(exist_ok=True)
    log_path = home / "logs" / f"offline-{datetime.now(UTC):%Y%m%dT%H%M%S}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    state = "fresh state" if fresh or not OFFLINE_DIR.exists() else "state kept from earlier runs"
    print(f"Starting the local SageMaker emulator ({state}: {OFFLINE_DIR.relative_to(ROOT)})",
          flush=True)
    emulator = start_emulator(OFFLINE_DIR)
    try:
        env = airflow_env(home, emulator.url)
        settings = load_settings(environ=env)
        print(f"Emulator at {emulator.url} (log: {emulator.log_path}); preparing Airflow in {home}",
              flush=True)
        worker = DagWorker(env, spec.dag_id, log_path.with_suffix(".worker.log"))  # gets ready meanwhile
        try:
            prepare_airflow(env, settings, log=log_path)
            bootstrap_aws(emulator, settings, [])
            raw = upload_sample(emulator, settings, spec) if spec.sample_data else "(raw_data_uri)"
            data = spec.sample_data.name if spec.sample_data else "no sample data"
            print(f"Uploaded {data} to {raw}; running {spec.dag_id} (log: {worker.log_path})",
                  flush=True)
            run = worker.trigger(conf)
        except RunRejected as exc:
            print(f"\n{exc}", file=sys.stderr)
            return 2
        finally:
            worker.stop()
        print("\n" + summarize(emulator, settings, spec, run))
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
        target.add_argument("--pipeline", default=None,
                            help=f"a spec of dags/pipelines/ (default {DEFAULT_PIPELINE})")
        target.add_argument("--data", type=Path, default=None,
                            help="your own CSV or CSV.gz: runs it with a spec written for it")
        target.add_argument("--target", default=None, help="with --data: the column to predict")
        target.add_argument("--problem-type", choices=["regression", "classification"], default=None,
                            help="with --data (default: inferred from the target's values)")
        target.add_argument("--conf", default="{}", help="DAG run conf (JSON), e.g. '{\"model\": \"ridge\"}'")
        target.add_argument("--fresh", action="store_true",
                            help="start from empty emulator and Airflow state (no champion)")
        target.add_argument("--keep-emulator", action="store_true",
                            help="keep the emulator (and endpoint) running after the summary")
    child = sub.add_parser("dag-test", help=argparse.SUPPRESS)
    child.add_argument("dag_id")
    child.add_argument("--result", type=Path, required=True)
    child.add_argument("--ready", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "dag-test":
        return _dag_test(args.dag_id, args.result, args.ready)
    if args.data is not None and args.pipeline is not None:
        parser.error("--data and --pipeline exclude each other")
    if args.data is None and (args.target or args.problem_type):
        parser.error("--target and --problem-type go with --data (a spec sets them otherwise)")
    try:
        conf = json.loads(args.conf)
    except json.JSONDecodeError as exc:
        parser.error(f"--conf is not valid JSON: {exc}")
    if args.fresh:
        reset_offline_state()
    try:
        spec, note = prepare_pipeline(args.pipeline, args.data, args.target, args.problem_type)
    except (DataError, SpecError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(note, flush=True)
    return run_offline(conf, spec, args.keep_emulator, fresh=False)


if __name__ == "__main__":
    sys.exit(main())
