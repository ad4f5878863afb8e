"""Resumable Processing/Training operators against the emulator: a task of one run that runs
again finds its job (attach, reuse) and starts a new one only after a failure or a changed
request; a script error fails for good (no retry)."""

from __future__ import annotations

import asyncio
import threading
import time

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
