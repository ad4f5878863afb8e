"""Fault injection on the emulator and its jobs: the emulator SIGKILLed mid-job and restarted, the
output bucket gone while a job uploads, a sandbox out of disk, /opt/ml over VolumeSizeInGB.

Each fault is real (a killed process, a deleted bucket, a full file system), never a patched
function; each test checks what SageMaker would show and that nothing partial counts as a result.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from local_sagemaker.launcher import EmulatorProcess
from local_sagemaker.runner.reasons import INTERNAL_ERROR
from local_sagemaker.runner.volume import UPLOAD_FULL, volume_bytes
from tests.emulator._core_helpers import (
    ROLE_ARN,
    model_tarball,
    processing_request,
    script,
    serve,
    serving_container,
    tarball,
    training_request,
    unique,
    wait_for,
)

pytestmark = pytest.mark.slow
ACTIVE = ("InProgress", "Stopping")


def sandbox(data_dir: Path, job: str) -> Path:
    """The /opt/ml of a job's first instance."""
    return data_dir / "work" / "jobs" / job / "instance-1" / "opt" / "ml"


def job_processes(data_dir: Path, job: str) -> list[int]:
    """PIDs of live processes started for ``job`` (their environment names its sandbox)."""
    marker = f"={data_dir / 'work' / 'jobs' / job}/".encode()
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if marker in Path(f"/proc/{pid}/environ").read_bytes():
                found.append(int(pid))
        except OSError:
            continue
    return found


def wait_path(path: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.1)


def keys(s3, bucket: str, prefix: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]


PARTIAL_TRAIN_PY = script("""
    import time
    with open("/opt/ml/model/partial.bin", "wb") as f:
        f.write(b"half a model")
    print("partial model written", flush=True)
    time.sleep(600)
""")

PARTIAL_PROCESS_PY = script("""
    import time
    with open("/opt/ml/processing/output/partial.csv", "w") as f:
        f.write("a,b\\n1,2\\n")
    time.sleep(600)
""")


def test_emulator_killed_mid_job_fails_it_internal_and_serves_again(tmp_path):
    """SIGKILL while a training and a processing job run: after a restart on the same --data-dir
    both are Failed with SageMaker's internal error (transient: a retry may succeed), nothing of
    their partial output is in S3 or left running, S3 written before the kill is intact and the
    endpoint serves its config again."""
    data_dir = tmp_path / "state"
    first = EmulatorProcess(data_dir)
    try:
        sm, s3 = first.client("sagemaker"), first.client("s3")
        bucket = unique("killed")
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="model.tar.gz", Body=model_tarball())
        s3.put_object(Bucket=bucket, Key="code/sourcedir.tar.gz", Body=tarball({"train.py": PARTIAL_TRAIN_PY}))
        s3.put_object(Bucket=bucket, Key="code/process.py", Body=PARTIAL_PROCESS_PY.encode())
        s3.put_object(Bucket=bucket, Key="data/train.csv", Body=b"1\n")
        model = unique("model")
        sm.create_model(ModelName=model, ExecutionRoleArn=ROLE_ARN,
                        PrimaryContainer=serving_container(s3, bucket, "model.tar.gz"))
        endpoint = serve(sm, model, "endpoint")
        before = wait_for(lambda: sm.describe_endpoint(EndpointName=endpoint), "EndpointStatus", ("Creating",))
        assert before["EndpointStatus"] == "InService", before.get("FailureReason")
        train, process = unique("train"), unique("process")
        sm.create_training_job(**training_request(train, f"s3://{bucket}/code/sourcedir.tar.gz",
                                                  f"s3://{bucket}/data", f"s3://{bucket}/out"))
        sm.create_processing_job(**processing_request(process, f"s3://{bucket}/code/process.py", [],
                                                      output_uri=f"s3://{bucket}/processed"))
        wait_path(sandbox(data_dir, train) / "model" / "partial.bin")
        wait_path(sandbox(data_dir, process) / "processing" / "output" / "partial.csv")
    finally:
        first.process.kill()  # no clean stop: nothing gets to save or stop anything
        first.process.wait()
    assert job_processes(data_dir, train), "the killed emulator's job script should still be running"

    second = EmulatorProcess(data_dir)
    try:
        sm, s3 = second.client("sagemaker"), second.client("s3")
        trained = sm.describe_training_job(TrainingJobName=train)
        assert trained["TrainingJobStatus"] == "Failed"
        assert trained["FailureReason"] == INTERNAL_ERROR
        assert trained["SecondaryStatus"] == "Failed"
        assert "ModelArtifacts" not in trained or not trained["ModelArtifacts"].get("S3ModelArtifacts")
        processed = sm.describe_processing_job(ProcessingJobName=process)
        assert (processed["ProcessingJobStatus"], processed["FailureReason"]) == ("Failed", INTERNAL_ERROR)
        # the partial output is not a result: not in S3, and its sandbox and processes are gone
        assert keys(s3, bucket, f"out/{train}") == [] and keys(s3, bucket, "processed") == []
        for job in (train, process):
            assert not sandbox(data_dir, job).exists()
            assert job_processes(data_dir, job) == []
        # what S3 acknowledged before the kill survived it, so a retried job finds its inputs
        assert sorted(keys(s3, bucket, "")) == ["code/process.py", "code/sourcedir.tar.gz", "data/train.csv",
                                                "model.tar.gz", "serve/sourcedir.tar.gz"]
        after = wait_for(lambda: sm.describe_endpoint(EndpointName=endpoint), "EndpointStatus",
                         ("SystemUpdating", "Creating"))
        assert after["EndpointStatus"] == "InService", after.get("FailureReason")
        assert after["EndpointConfigName"] == before["EndpointConfigName"]
        answer = second.client("sagemaker-runtime").invoke_endpoint(
            EndpointName=endpoint, ContentType="application/json", Body="[[1.0, 0.0], [0.0, 1.0]]")
        assert json.loads(answer["Body"].read()) == pytest.approx([2.0, 1.0], abs=1e-3)
    finally:
        assert second.stop() == 0, second.log()


SLOW_OUTPUT_TRAIN_PY = script("""
    import time
    time.sleep(3)
    with open("/opt/ml/model/model.txt", "w") as f:
        f.write("trained")
""")

SLOW_OUTPUT_PROCESS_PY = script("""
    import time
    open("/opt/ml/processing/output/started", "w").close()
    time.sleep(3)
    with open("/opt/ml/processing/output/result.csv", "w") as f:
        f.write("a\\n1\\n")
""")


def test_output_upload_fails_when_the_bucket_is_gone(emulator, bucket):
    """The output bucket is deleted while the jobs run: their uploads fail, the jobs are Failed
    with ClientError naming the object and S3's error, and training reports no model."""
    sm, s3 = emulator.client("sagemaker"), emulator.client("s3")
    s3.put_object(Bucket=bucket, Key="code/sourcedir.tar.gz", Body=tarball({"train.py": SLOW_OUTPUT_TRAIN_PY}))
    s3.put_object(Bucket=bucket, Key="code/process.py", Body=SLOW_OUTPUT_PROCESS_PY.encode())
    s3.put_object(Bucket=bucket, Key="data/train.csv", Body=b"1\n")
    outputs = {kind: unique(f"gone-{kind}") for kind in ("train", "process")}
    for name in outputs.values():
        s3.create_bucket(Bucket=name)
    train, process = unique("train"), unique("process")
    sm.create_training_job(**training_request(train, f"s3://{bucket}/code/sourcedir.tar.gz",
                                              f"s3://{bucket}/data", f"s3://{outputs['train']}/out"))
    sm.create_processing_job(**processing_request(process, f"s3://{bucket}/code/process.py", [],
                                                  output_uri=f"s3://{outputs['process']}/processed"))
    wait_for(lambda: sm.describe_training_job(TrainingJobName=train), "SecondaryStatus",
             ("Starting", "Downloading"))
    s3.delete_bucket(Bucket=outputs["train"])
    wait_path(sandbox(emulator.data_dir, process) / "processing" / "output" / "started")
    s3.delete_bucket(Bucket=outputs["process"])

    trained = wait_for(lambda: sm.describe_training_job(TrainingJobName=train), "TrainingJobStatus", ACTIVE)
    assert trained["TrainingJobStatus"] == "Failed"
    assert trained["FailureReason"] == (
        f"ClientError: Uploading output to s3://{outputs['train']}/out/{train}/output/model.tar.gz "
        "failed. NoSuchBucket: The specified bucket does not exist")
    assert "ModelArtifacts" not in trained
    assert [t["Status"] for t in trained["SecondaryStatusTransitions"]][-2:] == ["Uploading", "Failed"]
    processed = wait_for(lambda: sm.describe_processing_job(ProcessingJobName=process),
                         "ProcessingJobStatus", ACTIVE)
    assert processed["ProcessingJobStatus"] == "Failed"
    assert processed["FailureReason"].startswith(
        f"ClientError: Uploading output to s3://{outputs['process']}/processed/")
    assert processed["FailureReason"].endswith("failed. NoSuchBucket: The specified bucket does not exist")


SPARSE_MODEL_PY = script("""
    with open("/opt/ml/model/weights.bin", "wb") as f:
        f.truncate(2 * 1024**3)  # 2 GiB (sparse here; on SageMaker's volume it would be real)
""")


def test_model_larger_than_the_volume_is_not_uploaded(emulator, bucket):
    """/opt/ml outgrows ResourceConfig.VolumeSizeInGB (1 GB): Failed with SageMaker's reason,
    before anything is packed or uploaded."""
    sm, s3 = emulator.client("sagemaker"), emulator.client("s3")
    s3.put_object(Bucket=bucket, Key="code/sourcedir.tar.gz", Body=tarball({"train.py": SPARSE_MODEL_PY}))
    s3.put_object(Bucket=bucket, Key="data/train.csv", Body=b"1\n")
    job = unique("huge")
    sm.create_training_job(**training_request(job, f"s3://{bucket}/code/sourcedir.tar.gz",
                                              f"s3://{bucket}/data", f"s3://{bucket}/out"))
    done = wait_for(lambda: sm.describe_training_job(TrainingJobName=job), "TrainingJobStatus", ACTIVE)
    assert done["TrainingJobStatus"] == "Failed"
    assert done["FailureReason"].startswith(UPLOAD_FULL + ". ")
    assert "VolumeSizeInGB: 1" in done["FailureReason"] and "algo-1" in done["FailureReason"]
    assert keys(s3, bucket, "out/") == []


def test_volume_limit_applies_to_ebs_instances_only():
    assert volume_bytes("ml.m5.large", 30) == 30 * 1024**3
    assert volume_bytes("ml.c5.xlarge", 1) == 1024**3
    for nvme in ("ml.g4dn.xlarge", "ml.p4d.24xlarge", "ml.g5.2xlarge", "ml.m5d.large"):
        assert volume_bytes(nvme, 1) is None, nvme


def _small_work_dir_wrapper(work: Path, size: str) -> tuple[str, ...] | None:
    """``unshare`` arguments that start the emulator with ``work`` on a tmpfs of ``size``, or
    None where unprivileged user and mount namespaces are not available."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    work.mkdir(parents=True, exist_ok=True)
    mount = 'mount -t tmpfs -o size="$2" tmpfs "$1" && shift 2 && exec "$@"'
    probe = subprocess.run([unshare, "-Urm", "sh", "-c", mount, "sh", str(work), size, "true"],
                           capture_output=True, timeout=30)
    if probe.returncode != 0:
        return None
    return (unshare, "-Urm", "sh", "-c", mount, "sh", str(work), size)


FILL_MODEL_PY = script("""
    with open("/opt/ml/model/weights.bin", "wb") as f:
        for _ in range(64):
            f.write(b"0" * 1024 * 1024)
""")

FILL_OUTPUT_PY = script("""
    with open("/opt/ml/processing/output/rows.csv", "wb") as f:
        for _ in range(64):
            f.write(b"1" * 1024 * 1024)
""")


def test_job_sandbox_out_of_disk(tmp_path):
    """The disk under the sandboxes is full (a 24 MB file system): the scripts get ENOSPC, the jobs
    are Failed with reasons that say the disk is full, and nothing is uploaded."""
    data_dir = tmp_path / "state"
    wrapper = _small_work_dir_wrapper(data_dir / "work", "24m")
    if wrapper is None:
        pytest.skip("needs unprivileged user and mount namespaces (unshare -Urm) for a small file system")
    running = EmulatorProcess(data_dir, wrapper=wrapper)
    try:
        sm, s3 = running.client("sagemaker"), running.client("s3")
        bucket = unique("full")
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="code/sourcedir.tar.gz", Body=tarball({"train.py": FILL_MODEL_PY}))
        s3.put_object(Bucket=bucket, Key="code/fill.py", Body=FILL_OUTPUT_PY.encode())
        s3.put_object(Bucket=bucket, Key="data/train.csv", Body=b"1\n")
        train, process = unique("train"), unique("process")
        sm.create_training_job(**training_request(train, f"s3://{bucket}/code/sourcedir.tar.gz",
                                                  f"s3://{bucket}/data", f"s3://{bucket}/out"))
        trained = wait_for(lambda: sm.describe_training_job(TrainingJobName=train), "TrainingJobStatus", ACTIVE)
        sm.create_processing_job(**processing_request(process, f"s3://{bucket}/code/fill.py", [],
                                                      output_uri=f"s3://{bucket}/processed"))
        processed = wait_for(lambda: sm.describe_processing_job(ProcessingJobName=process),
                             "ProcessingJobStatus", ACTIVE)
        uploaded = keys(s3, bucket, "out/") + keys(s3, bucket, "processed/")
    finally:
        assert running.stop() == 0, running.log()
    # the toolkit cannot write its failure file on a full disk and exits 0 (as on SageMaker,
    # aws/sagemaker-training-toolkit#204): packing the model then fails as SageMaker reports it
    assert trained["TrainingJobStatus"] == "Failed"
    assert trained["FailureReason"].startswith(UPLOAD_FULL + ". Packing model.tar.gz on algo-1 ran out of disk space")
    assert "ModelArtifacts" not in trained
    assert processed["ProcessingJobStatus"] == "Failed"
    assert processed["FailureReason"].startswith(
        "AlgorithmError: See job logs for more information. The instance ran out of disk space: ")
    assert processed["FailureReason"].endswith("OSError: [Errno 28] No space left on device")
    assert uploaded == []
