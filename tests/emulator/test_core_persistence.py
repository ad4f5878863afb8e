"""--data-dir: state and S3 survive a clean restart; SIGTERM stops jobs and model servers, exit 0."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from local_sagemaker.launcher import EmulatorProcess
from tests.emulator._core_helpers import (
    ROLE_ARN,
    SKLEARN_IMAGE,
    model_tarball,
    script,
    serve,
    serving_container,
    tarball,
    training_request,
    unique,
    wait_for,
)

pytestmark = pytest.mark.slow

SLOW_TRAIN_PY = script("""
    import time
    print("training forever", flush=True)
    time.sleep(600)
""")


def processes_under(path: Path) -> list[str]:
    """Command lines of live processes that mention ``path`` (job scripts, model servers)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(path) in cmdline:
            found.append(cmdline)
    return found


def test_state_survives_restart_and_shutdown_is_clean(tmp_path):
    data_dir = tmp_path / "emulator-state"
    first = EmulatorProcess(data_dir)
    try:
        sm, s3 = first.client("sagemaker"), first.client("s3")
        bucket = unique("persist")
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="model.tar.gz", Body=model_tarball())
        s3.put_object(Bucket=bucket, Key="code/sourcedir.tar.gz", Body=tarball({"train.py": SLOW_TRAIN_PY}))
        s3.put_object(Bucket=bucket, Key="data/train.csv", Body=b"1\n")
        group = unique("group")
        sm.create_model_package_group(ModelPackageGroupName=group)
        package = sm.create_model_package(
            ModelPackageGroupName=group, ModelApprovalStatus="Approved",
            InferenceSpecification={"Containers": [serving_container(s3, bucket, "model.tar.gz")],
                                    "SupportedContentTypes": ["text/csv"],
                                    "SupportedResponseMIMETypes": ["text/csv"]})["ModelPackageArn"]
        model = unique("model")
        sm.create_model(ModelName=model, ExecutionRoleArn=ROLE_ARN, Containers=[{"ModelPackageName": package}])
        # "kept" serves a model whose artifact stays in S3; "orphan" one whose artifact is deleted
        s3.put_object(Bucket=bucket, Key="orphan/model.tar.gz", Body=model_tarball(3.0))
        orphan_model = unique("orphan")
        sm.create_model(ModelName=orphan_model, ExecutionRoleArn=ROLE_ARN,
                        PrimaryContainer=serving_container(s3, bucket, "orphan/model.tar.gz"))
        endpoints = {label: serve(sm, model_name, label)
                     for label, model_name in (("kept", model), ("orphan", orphan_model))}
        for name in endpoints.values():
            assert wait_for(lambda name=name: sm.describe_endpoint(EndpointName=name), "EndpointStatus",
                            ("Creating",))["EndpointStatus"] == "InService"
        s3.delete_object(Bucket=bucket, Key="orphan/model.tar.gz")
        job = unique("forever")
        sm.create_training_job(**training_request(job, f"s3://{bucket}/code/sourcedir.tar.gz",
                                                  f"s3://{bucket}/data", f"s3://{bucket}/out"))
        wait_for(lambda: sm.describe_training_job(TrainingJobName=job), "SecondaryStatus",
                 ("Starting", "Downloading"))
        assert processes_under(data_dir), "the job script and the model server should be running"
    finally:
        code = first.stop()
    assert code == 0, first.log()
    assert processes_under(data_dir) == []  # SIGTERM took job scripts and model servers down too

    second = EmulatorProcess(data_dir)
    try:
        sm = second.client("sagemaker")
        stopped = sm.describe_training_job(TrainingJobName=job)
        assert stopped["TrainingJobStatus"] == "Stopped"
        assert sm.describe_model_package(ModelPackageName=package)["ModelApprovalStatus"] == "Approved"
        assert sm.describe_model(ModelName=model)["Containers"] == [{"ModelPackageName": package}]
        # S3 was saved on the clean stop, so the first endpoint serves again ...
        kept = wait_for(lambda: sm.describe_endpoint(EndpointName=endpoints["kept"]), "EndpointStatus",
                        ("SystemUpdating",))
        assert kept["EndpointStatus"] == "InService", kept.get("FailureReason")
        response = second.client("sagemaker-runtime").invoke_endpoint(
            EndpointName=endpoints["kept"], ContentType="application/json", Body="[[1.0, 0.0]]")
        assert json.loads(response["Body"].read())[0] == pytest.approx(2.0, abs=1e-3)
        # ... and the one whose artifact is gone says why it cannot come back.
        orphan = wait_for(lambda: sm.describe_endpoint(EndpointName=endpoints["orphan"]), "EndpointStatus",
                          ("SystemUpdating",))
        assert orphan["EndpointStatus"] == "Failed"
        assert "orphan/model.tar.gz" in orphan["FailureReason"]
        assert "after the emulator restarted" in orphan["FailureReason"]
        assert sm.list_model_packages(ModelPackageGroupName=group)["ModelPackageSummaryList"][0][
            "ModelPackageArn"] == package
        # version numbering continues after the restart
        next_arn = sm.create_model_package(
            ModelPackageGroupName=group,
            InferenceSpecification={"Containers": [{"Image": SKLEARN_IMAGE}], "SupportedContentTypes": ["text/csv"],
                                    "SupportedResponseMIMETypes": ["text/csv"]})["ModelPackageArn"]
        assert next_arn.endswith(f"{group}/2")
    finally:
        assert second.stop() == 0, second.log()


SLOW_LOAD_PY = script("""
    import time

    def model_fn(model_dir):
        time.sleep(600)
""")


def test_sigterm_while_an_endpoint_is_starting(tmp_path):
    data_dir = tmp_path / "emulator-state"
    emulator = EmulatorProcess(data_dir)
    try:
        sm, s3 = emulator.client("sagemaker"), emulator.client("s3")
        bucket = unique("slowload")
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="model.tar.gz", Body=model_tarball())
        s3.put_object(Bucket=bucket, Key="code.tar.gz", Body=tarball({"inference.py": SLOW_LOAD_PY}))
        model, endpoint = unique("model"), unique("endpoint")
        sm.create_model(ModelName=model, ExecutionRoleArn=ROLE_ARN, PrimaryContainer={
            "Image": SKLEARN_IMAGE, "ModelDataUrl": f"s3://{bucket}/model.tar.gz",
            "Environment": {"SAGEMAKER_PROGRAM": "inference.py",
                            "SAGEMAKER_SUBMIT_DIRECTORY": f"s3://{bucket}/code.tar.gz"}})
        sm.create_endpoint_config(EndpointConfigName=model, ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": model, "InstanceType": "ml.m5.large",
            "InitialInstanceCount": 1}])
        sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=model)
        deadline = time.monotonic() + 60
        while not processes_under(data_dir / "work" / "endpoints") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert sm.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] == "Creating"
    finally:
        code = emulator.stop()
    assert code == 0, emulator.log()
    assert processes_under(data_dir) == []
    state = json.loads((data_dir / "state.json").read_text())
    assert state["tables"]["endpoints"][endpoint]["EndpointStatus"] == "Creating"  # restored on restart


def test_model_servers_exit_when_the_emulator_is_killed(tmp_path):
    data_dir = tmp_path / "emulator-state"
    emulator = EmulatorProcess(data_dir)
    try:
        sm, s3 = emulator.client("sagemaker"), emulator.client("s3")
        bucket = unique("killed")
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="model.tar.gz", Body=model_tarball())
        model = unique("model")
        sm.create_model(ModelName=model, ExecutionRoleArn=ROLE_ARN,
                        PrimaryContainer=serving_container(s3, bucket, "model.tar.gz"))
        endpoint = serve(sm, model, "endpoint")
        assert wait_for(lambda: sm.describe_endpoint(EndpointName=endpoint), "EndpointStatus",
                        ("Creating",))["EndpointStatus"] == "InService"
        assert processes_under(data_dir), "the model server should be running"
    finally:
        emulator.process.kill()  # no clean shutdown: the model servers must notice on their own
        emulator.process.wait()
    deadline = time.monotonic() + 15
    while processes_under(data_dir):
        assert time.monotonic() < deadline, f"orphaned model servers: {processes_under(data_dir)}"
        time.sleep(0.2)
