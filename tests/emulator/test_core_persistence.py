"""--data-dir: state survives a restart; SIGTERM stops jobs and model servers with exit code 0."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from local_sagemaker.launcher import EmulatorProcess
from tests.emulator._core_helpers import (
    ROLE_ARN,
    model_tarball,
    script,
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
            InferenceSpecification={"Containers": [{"Image": "i", "ModelDataUrl": f"s3://{bucket}/model.tar.gz"}],
                                    "SupportedContentTypes": ["text/csv"],
                                    "SupportedResponseMIMETypes": ["text/csv"]})["ModelPackageArn"]
        model, config, endpoint = unique("model"), unique("config"), unique("endpoint")
        sm.create_model(ModelName=model, ExecutionRoleArn=ROLE_ARN, Containers=[{"ModelPackageName": package}])
        sm.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": model,
            "ServerlessConfig": {"MemorySizeInMB": 1024, "MaxConcurrency": 2}}])
        sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=config)
        assert wait_for(lambda: sm.describe_endpoint(EndpointName=endpoint), "EndpointStatus",
                        ("Creating",))["EndpointStatus"] == "InService"
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
        assert sm.describe_endpoint_config(EndpointConfigName=config)["EndpointConfigName"] == config
        # moto's S3 lived in memory: the endpoint cannot come back and says why.
        restored = wait_for(lambda: sm.describe_endpoint(EndpointName=endpoint), "EndpointStatus",
                            ("SystemUpdating",))
        assert restored["EndpointStatus"] == "Failed"
        assert "emulator restarted" in restored["FailureReason"]
        assert sm.list_model_packages(ModelPackageGroupName=group)["ModelPackageSummaryList"][0][
            "ModelPackageArn"] == package
        # version numbering continues after the restart
        next_arn = sm.create_model_package(
            ModelPackageGroupName=group,
            InferenceSpecification={"Containers": [{"Image": "i"}], "SupportedContentTypes": ["text/csv"],
                                    "SupportedResponseMIMETypes": ["text/csv"]})["ModelPackageArn"]
        assert next_arn.endswith(f"{group}/2")
    finally:
        assert second.stop() == 0, second.log()
