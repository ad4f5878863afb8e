"""End to end, against the emulator: a DAG run survives the emulator being killed mid-train.

The emulator is SIGKILLed while the run's training job runs and restarted on the same --data-dir
and port. The job comes back ``Failed`` with SageMaker's internal error, which the retry policy
treats as transient: the train task retries, starts one new job (the failed one cannot be
reused), and the run completes. Everything the run had written to S3 (preprocess's output) is
still there, so nothing before train runs again.
"""

from __future__ import annotations

import time
from urllib.parse import urlparse

import pytest

from local_sagemaker.launcher import EmulatorProcess
from local_sagemaker.runner.reasons import INTERNAL_ERROR
from tests.dags._iam_trail import POLICY
from tests.dags._offline_stack import offline_stack
from tests.dags.test_resumable_e2e import ResumableRun, jobs_of
from tools.run_offline import START_TIMEOUT, start_emulator

pytestmark = pytest.mark.slow


def wait_for_training(run: ResumableRun, worker, timeout: float = 300) -> str:
    """The name of the run's training job once its script is running."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert worker.poll() is None, "the worker ended before train started a job"
        jobs = jobs_of(run.emulator, "train", run.run_id)
        if jobs and jobs[-1]["TrainingJobStatus"] == "InProgress":
            name = jobs[-1]["TrainingJobName"]
            described = run.emulator.client("sagemaker").describe_training_job(TrainingJobName=name)
            if described["SecondaryStatus"] == "Training":
                return name
        time.sleep(0.1)
    raise AssertionError(f"train started no job in {timeout:.0f} s")


def test_dag_run_survives_an_emulator_restart_mid_train(airflow_db, tmp_path):
    data_dir = tmp_path / "emulator"
    first = start_emulator(data_dir, iam_policy=POLICY)
    second = None
    with offline_stack(first) as settings:
        run = ResumableRun(first, tmp_path)
        worker = run.start_worker()
        try:
            killed_job = wait_for_training(run, worker)
            first.process.kill()
            first.process.wait()
            # the same port, so the connection the worker holds stays right
            second = EmulatorProcess(data_dir, "--iam-policy", str(POLICY), "--port",
                                     str(urlparse(first.url).port), start_timeout=START_TIMEOUT)
            # the alert topic survived the kill with the rest of --data-dir (nothing recreated)
            second.client("sns").get_topic_attributes(TopicArn=settings.topic_arn)
            run.emulator = second
            assert worker.wait(timeout=900) == 0
        finally:
            if worker.poll() is None:
                worker.kill()
            if first.process.poll() is None:
                first.stop()
            log = (tmp_path / f"worker-{run.workers}.log").read_text()
        try:
            assert "RUN STATE success" in log, log[-5000:]
            states = run.task_states()
            assert states["train"] == "success" and states["quality_gate"] == "success", states
            train_jobs = {j["TrainingJobName"]: j["TrainingJobStatus"]
                          for j in jobs_of(second, "train", run.run_id)}
            assert train_jobs.pop(killed_job) == "Failed"
            assert list(train_jobs.values()) == ["Completed"], "one new job after the internal error"
            failed = second.client("sagemaker").describe_training_job(TrainingJobName=killed_job)
            assert failed["FailureReason"] == INTERNAL_ERROR
            # preprocess's output survived the kill: its one job was not run again
            assert [j["ProcessingJobStatus"] for j in jobs_of(second, "preprocess", run.run_id)] == ["Completed"]
        finally:
            if second is not None:
                assert second.stop() == 0, second.log()[-3000:]
