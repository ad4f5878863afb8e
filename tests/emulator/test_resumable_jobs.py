"""Resumable Processing/Training operators against the emulator: a task of one run that runs
again finds its job (attach, reuse) and starts a new one only after a failure or a changed
request; a script error fails for good (no retry)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException, TaskDeferred
from sagemaker_mlops.retry import SageMakerJobFailed, SageMakerJobFailedForGood
from sagemaker_mlops.sagemaker_jobs import (
    ResumableProcessingOperator,
    ResumableTrainingOperator,
)

from tests.emulator._core_helpers import (
    processing_request,
    script,
    tarball,
    training_request,
    unique,
)

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]

SLOW_PY = script("""
    import os, time
    time.sleep(float(os.environ.get("SLEEP", "0")))
    os.makedirs("/opt/ml/processing/output", exist_ok=True)
    open("/opt/ml/processing/output/done.txt", "w").write("done")
""")
TRAIN_PY = script("""
    import argparse, os
    parser = argparse.ArgumentParser()
    parser.add_argument("--alpha", type=float, default=0.0)
    parser.parse_args()
    open(os.path.join(os.environ["SM_MODEL_DIR"], "model.txt"), "w").write("fitted")
""")


@pytest.fixture
def code(emulator, bucket):
    s3 = emulator.client("s3")
    s3.put_object(Bucket=bucket, Key="code/slow.py", Body=SLOW_PY.encode())
    s3.put_object(Bucket=bucket, Key="code/sourcedir.tar.gz", Body=tarball({"train.py": TRAIN_PY}))
    s3.put_object(Bucket=bucket, Key="data/train.csv", Body=b"a,b\n1,2\n")
    return bucket


def processing(code: str, name: str, sleep: str = "0") -> dict:
    config = processing_request(name, f"s3://{code}/code/slow.py", [], f"s3://{code}/out/{name}")
    config["Environment"] = {"SLEEP": sleep}
    return config


def jobs_named(emulator, name: str) -> list[str]:
    summaries = emulator.client("sagemaker").list_processing_jobs(NameContains=name)
    return sorted(s["ProcessingJobName"] for s in summaries["ProcessingJobSummaries"])


def operator(aws_conn_env, config: dict) -> ResumableProcessingOperator:
    return ResumableProcessingOperator(task_id="preprocess", config=config,
                                       aws_conn_id=aws_conn_env, check_interval=0.2,
                                       deferrable=False)


def test_a_completed_job_of_the_same_request_is_reused(aws_conn_env, emulator, code):
    name = unique("pre")
    first = operator(aws_conn_env, processing(code, name)).execute(context={})
    again = operator(aws_conn_env, processing(code, name)).execute(context={})
    assert again["Processing"]["ProcessingJobArn"] == first["Processing"]["ProcessingJobArn"]
    assert jobs_named(emulator, name) == [name]


def test_a_running_job_is_attached_to_not_started_twice(aws_conn_env, emulator, code):
    name = unique("pre")
    emulator.client("sagemaker").create_processing_job(**processing(code, name, sleep="3"))
    started = time.monotonic()
    result = operator(aws_conn_env, processing(code, name, sleep="3")).execute(context={})
    assert result["Processing"]["ProcessingJobStatus"] == "Completed"
    assert time.monotonic() - started < 60
    assert jobs_named(emulator, name) == [name]


def test_a_changed_request_waits_for_the_live_job_then_starts_the_next(aws_conn_env, emulator, code):
    name = unique("pre")
    sagemaker = emulator.client("sagemaker")
    sagemaker.create_processing_job(**processing(code, name, sleep="2"))
    result = operator(aws_conn_env, processing(code, name, sleep="0")).execute(context={})
    assert result["Processing"]["ProcessingJobName"] == f"{name}-r2"
    first = sagemaker.describe_processing_job(ProcessingJobName=name)
    assert first["ProcessingJobStatus"] == "Completed"
    second = sagemaker.describe_processing_job(ProcessingJobName=f"{name}-r2")
    assert first["ProcessingEndTime"] <= second["CreationTime"]  # never two live jobs
    assert jobs_named(emulator, name) == [name, f"{name}-r2"]


def test_a_stopped_job_is_followed_by_a_new_one(aws_conn_env, emulator, code):
    name = unique("pre")
    sagemaker = emulator.client("sagemaker")
    sagemaker.create_processing_job(**processing(code, name, sleep="30"))
    threading.Timer(0.5, lambda: sagemaker.stop_processing_job(ProcessingJobName=name)).start()
    with pytest.raises(SageMakerJobFailedForGood, match="stopped"):
        operator(aws_conn_env, processing(code, name, sleep="30")).execute(context={})
    result = operator(aws_conn_env, processing(code, name)).execute(context={})
    assert result["Processing"]["ProcessingJobName"] == f"{name}-r2"
    assert jobs_named(emulator, name) == [name, f"{name}-r2"]


def test_a_script_error_fails_for_good_with_its_reason(aws_conn_env, emulator, code):
    name = unique("train")
    config = training_request(name, f"s3://{code}/code/sourcedir.tar.gz", f"s3://{code}/data",
                              f"s3://{code}/models", hyperparameters={"alpha": '"abc"'})
    op = ResumableTrainingOperator(task_id="train", config=config, aws_conn_id=aws_conn_env,
                                   check_interval=0.2, deferrable=False)
    with pytest.raises(SageMakerJobFailed) as caught:
        op.execute(context={})
    assert isinstance(caught.value, AirflowFailException)
    assert "AlgorithmError" in str(caught.value) and name in str(caught.value)


async def _first_event(trigger):
    async for event in trigger.run():
        return event
    raise AssertionError("the trigger ended without an event")


def test_a_deferred_task_attaches_to_the_running_job_through_the_trigger(aws_conn_env, emulator, code):
    name = unique("pre")
    emulator.client("sagemaker").create_processing_job(**processing(code, name, sleep="2"))
    op = ResumableProcessingOperator(task_id="preprocess", config=processing(code, name, sleep="2"),
                                     aws_conn_id=aws_conn_env, check_interval=0.2, deferrable=True)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context={})
    assert deferred.value.trigger.job_name == name  # the running job, not a new one
    event = asyncio.run(_first_event(deferred.value.trigger))
    result = op.execute_complete(context={}, event=event.payload)
    assert result["Processing"]["ProcessingJobStatus"] == "Completed"
    assert jobs_named(emulator, name) == [name]


FAILING_PY = script("""
    import os
    os.makedirs("/opt/ml/output", exist_ok=True)
    open("/opt/ml/output/message", "w").write("target column 'x' is not in the data")
    raise SystemExit(1)
""")
# a deferred task on Airflow 3.2.1 / provider 9.25 (MWAA), whose SageMakerTrigger raises when the
# job fails: the trigger must still hand the failure to the task, which then fails for good
MWAA_CHILD = """
import asyncio, json, sys
from airflow.sdk.exceptions import TaskDeferred
from airflow.sdk.module_loading import import_string
from sagemaker_mlops.retry import SageMakerJobFailedForGood
from sagemaker_mlops.sagemaker_jobs import ResumableProcessingOperator

op = ResumableProcessingOperator(task_id="preprocess", config=json.loads(sys.argv[1]),
                                 check_interval=0.2, deferrable=True)
try:
    op.execute(context={})
except TaskDeferred as deferred:
    classpath, kwargs = deferred.trigger.serialize()
trigger = import_string(classpath)(**kwargs)  # as the triggerer rebuilds it

async def first_event():
    async for event in trigger.run():
        return event

try:
    op.execute_complete(context={}, event=asyncio.run(first_event()).payload)
except SageMakerJobFailedForGood as error:
    print(json.dumps({"trigger": classpath, "error": str(error)}))
"""


def test_on_mwaa_a_deferred_job_failure_reaches_the_task_and_fails_for_good(emulator, bucket):
    python = ROOT / (os.environ.get("MLOPS_MWAA_VENV") or ".venv-mwaa") / "bin" / "python"
    if not python.exists():
        pytest.skip(f"no Airflow 3.2.1 environment at {python.parents[1]} (./dev test builds it)")
    emulator.client("s3").put_object(Bucket=bucket, Key="code/fail.py", Body=FAILING_PY.encode())
    name = unique("pre")
    config = processing_request(name, f"s3://{bucket}/code/fail.py", [], f"s3://{bucket}/out")
    connection = {"conn_type": "aws", "login": "test", "password": "test",
                  "extra": {"region_name": "us-east-1", "endpoint_url": emulator.url}}
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTHONPATH"))},
           "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "plugins")]),
           "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(connection),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    result = subprocess.run([str(python), "-c", MWAA_CHILD, json.dumps(config)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["trigger"] == "sagemaker_mlops.sagemaker_jobs.FailureEventTrigger"
    assert report["error"] == (f"SageMaker processing job {name} failed: target column 'x' is not in "
                               "the data (FailureReason: AlgorithmError: See job logs for more information)")
    assert jobs_named(emulator, name) == [name]
