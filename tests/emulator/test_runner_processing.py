"""The processing runner end to end: inputs, sharding, outputs, failures, logs."""

from __future__ import annotations

import json

import pytest

from local_sagemaker.runner import run_processing_job
from local_sagemaker.runner.processing import PROCESSING_LOG_GROUP
from tests.emulator import _exec_helpers as helpers
from tests.emulator._core_helpers import SKLEARN_IMAGE
from tests.emulator._exec_helpers import log_messages, put_text, script

pytestmark = pytest.mark.slow  # real processes against moto's server

moto_url, s3, logs, bucket, job_context = (
    helpers.moto_url,
    helpers.s3,
    helpers.logs,
    helpers.bucket,
    helpers.job_context,
)

# Copies every input file to the output, prefixed with the host so shards never collide.
COPY_PY = script(
    """
    import argparse, json, os, pathlib, sys
    parser = argparse.ArgumentParser()
    parser.add_argument("--input")
    parser.add_argument("--output")
    args = parser.parse_args()
    host = json.load(open("/opt/ml/config/resourceconfig.json"))["current_host"]
    names = sorted(p.name for p in pathlib.Path(args.input).rglob("*.csv"))
    print(f"{host} got {names}")
    for name in names:
        text = (pathlib.Path(args.input) / name).read_text()
        (pathlib.Path(args.output) / f"{host}-{name}").write_text(text)
    with open("/opt/ml/output/message", "w") as fh:
        fh.write(f"{host} copied {len(names)} files")
    """
)


def _request(
    bucket: str,
    name: str,
    code_uri: str,
    count: int = 1,
    distribution: str = "FullyReplicated",
    data_uri: str | None = None,
) -> dict:
    return {
        "ProcessingJobName": name,
        "RoleArn": "arn:aws:iam::123456789012:role/sagemaker",
        "AppSpecification": {
            "ImageUri": SKLEARN_IMAGE,
            "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/job.py"],
            "ContainerArguments": [
                "--input",
                "/opt/ml/processing/input/data",
                "--output=/opt/ml/processing/output/copies",
            ],
        },
        "ProcessingResources": {
            "ClusterConfig": {
                "InstanceCount": count,
                "InstanceType": "ml.m5.large",
                "VolumeSizeInGB": 1,
            }
        },
        "ProcessingInputs": [
            {
                "InputName": "code",
                "S3Input": {
                    "S3Uri": code_uri,
                    "LocalPath": "/opt/ml/processing/input/code",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                    "S3DataDistributionType": "FullyReplicated",
                },
            },
            {
                "InputName": "data",
                "S3Input": {
                    "S3Uri": data_uri or f"s3://{bucket}/raw",
                    "LocalPath": "/opt/ml/processing/input/data",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                    "S3DataDistributionType": distribution,
                },
            },
        ],
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "copies",
                    "S3Output": {
                        "S3Uri": f"s3://{bucket}/out/{name}",
                        "LocalPath": "/opt/ml/processing/output/copies",
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ]
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }


def _setup(s3, bucket: str, code: str = COPY_PY, files: int = 4) -> str:
    for i in range(files):
        put_text(s3, bucket, f"raw/part-{i}.csv", f"row{i}\n")
    return put_text(s3, bucket, "code/job.py", code)


def _outputs(s3, bucket: str, name: str) -> dict[str, str]:
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=f"out/{name}/").get("Contents", [])
    return {
        o["Key"].rsplit("/", 1)[-1]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"]
        .read()
        .decode()
        for o in listing
    }


def test_single_instance_copies_inputs_to_outputs(s3, logs, bucket, job_context):
    code = _setup(s3, bucket, files=2)
    result = run_processing_job(_request(bucket, "proc-one", code), job_context())
    assert result.status == "Completed", result.failure_reason
    assert result.exit_message == "algo-1 copied 2 files"
    assert _outputs(s3, bucket, "proc-one") == {
        "algo-1-part-0.csv": "row0\n",
        "algo-1-part-1.csv": "row1\n",
    }
    assert result.final_metrics == [] and result.model_artifact is None
    streams = log_messages(logs, PROCESSING_LOG_GROUP, "proc-one")
    assert [m for ms in streams.values() for m in ms] == ["algo-1 got ['part-0.csv', 'part-1.csv']"]


def test_sharded_by_s3_key_splits_objects_round_robin_across_instances(
    s3, logs, bucket, job_context
):
    code = _setup(s3, bucket, files=4)
    result = run_processing_job(
        _request(bucket, "proc-shard", code, count=2, distribution="ShardedByS3Key"), job_context()
    )
    assert result.status == "Completed", result.failure_reason
    assert sorted(_outputs(s3, bucket, "proc-shard")) == [
        "algo-1-part-0.csv",
        "algo-1-part-2.csv",
        "algo-2-part-1.csv",
        "algo-2-part-3.csv",
    ]
    streams = log_messages(logs, PROCESSING_LOG_GROUP, "proc-shard")
    assert sorted(name.split("/")[1].rsplit("-", 1)[0] for name in streams) == ["algo-1", "algo-2"]


def test_fully_replicated_gives_every_instance_every_object(s3, bucket, job_context):
    code = _setup(s3, bucket, files=2)
    result = run_processing_job(_request(bucket, "proc-repl", code, count=2), job_context())
    assert result.status == "Completed", result.failure_reason
    assert sorted(_outputs(s3, bucket, "proc-repl")) == [
        "algo-1-part-0.csv",
        "algo-1-part-1.csv",
        "algo-2-part-0.csv",
        "algo-2-part-1.csv",
    ]


def test_failure_with_message_file(s3, bucket, job_context):
    """The message file is ExitMessage; FailureReason is SageMaker's fixed algorithm-error text."""
    failing = script(
        """
        import sys
        open("/opt/ml/output/message", "w").write("raw data has no column median_house_value")
        sys.exit(2)
        """
    )
    code = _setup(s3, bucket, code=failing, files=1)
    result = run_processing_job(_request(bucket, "proc-msg", code), job_context())
    assert result.status == "Failed"
    assert result.failure_reason == "AlgorithmError: See job logs for more information"
    assert result.exit_message == "raw data has no column median_house_value"
    assert _outputs(s3, bucket, "proc-msg") == {}  # outputs are uploaded only after success


def test_failure_without_message_file_leaves_the_traceback_to_the_logs(
    s3, logs, bucket, job_context
):
    code = _setup(s3, bucket, code="import json\njson.loads('{oops')\n", files=1)
    result = run_processing_job(_request(bucket, "proc-tb", code), job_context())
    assert result.status == "Failed"
    assert result.failure_reason == "AlgorithmError: See job logs for more information"
    assert result.exit_message is None
    lines = [m for ms in log_messages(logs, PROCESSING_LOG_GROUP, "proc-tb").values() for m in ms]
    assert any(
        "json.decoder.JSONDecodeError: Expecting property name enclosed in double quotes" in m
        for m in lines
    )


def test_one_failing_instance_stops_its_siblings(s3, bucket, job_context, tmp_path):
    ready = tmp_path / "algo-1-wrote"  # outside /opt/ml: both instances see the host's /tmp
    code = script(
        f"""
        import json, os, sys, time
        host = json.load(open("/opt/ml/config/resourceconfig.json"))["current_host"]
        if host == "algo-2":
            while not os.path.exists({str(ready)!r}):
                time.sleep(0.02)
            open("/opt/ml/output/message", "w").write("algo-2 cannot read its shard")
            sys.exit(1)
        open("/opt/ml/output/message", "w").write("algo-1 was fine;")
        open({str(ready)!r}, "w").write("ok")
        time.sleep(120)
        """
    )
    code = _setup(s3, bucket, code=code, files=2)
    result = run_processing_job(_request(bucket, "proc-sibling", code, count=2), job_context())
    assert result.status == "Failed"
    assert result.failure_reason == "AlgorithmError: See job logs for more information"
    # every instance's message, concatenated (AWS byoc-metadata)
    assert result.exit_message == "algo-1 was fine;algo-2 cannot read its shard"
    assert result.script_seconds < 60


def test_missing_input_fails_with_the_aws_reason(s3, bucket, job_context):
    code = _setup(s3, bucket, files=0)
    result = run_processing_job(
        _request(bucket, "proc-missing", code, data_uri=f"s3://{bucket}/nothing/here"),
        job_context(),
    )
    assert result.status == "Failed"
    assert result.failure_reason.startswith(
        f'ClientError: No S3 objects found under S3 URL "s3://{bucket}/nothing/here" given in input data source.'
    )
    assert result.script_seconds == 0.0


def test_missing_bucket_fails_with_the_aws_reason(s3, bucket, job_context):
    code = _setup(s3, bucket, files=0)
    result = run_processing_job(
        _request(bucket, "proc-nobucket", code, data_uri="s3://no-such-bucket-xyz/raw"),
        job_context(),
    )
    assert result.status == "Failed"
    assert 'No S3 objects found under S3 URL "s3://no-such-bucket-xyz/raw"' in result.failure_reason


def test_local_path_outside_opt_ml_processing_is_rejected(s3, bucket, job_context):
    code = _setup(s3, bucket, files=1)
    request = _request(bucket, "proc-badpath", code)
    request["ProcessingInputs"][1]["S3Input"]["LocalPath"] = "/data/input"
    result = run_processing_job(request, job_context())
    assert result.status == "Failed"
    assert result.failure_reason == (
        "ClientError: ProcessingInput 'data' LocalPath '/data/input' must be an absolute path under /opt/ml/processing/"
    )


def test_missing_entrypoint_is_explained(s3, bucket, job_context):
    code = _setup(s3, bucket, files=1)
    request = _request(bucket, "proc-noentry", code)
    del request["AppSpecification"]["ContainerEntrypoint"]
    result = run_processing_job(request, job_context())
    assert result.status == "Failed"
    assert "ContainerEntrypoint is required" in result.failure_reason


def test_environment_and_sandbox_kept_on_request(s3, bucket, job_context):
    code = script(
        """
        import json, os
        keys = ["MODE", "OPT_ML_DIR", "AWS_ENDPOINT_URL", "SAGEMAKER_TRAINING_MODULE"]
        out = "/opt/ml/processing/output/copies/env.json"
        json.dump({k: os.environ.get(k) for k in keys}, open(out, "w"))
        """
    )
    code = _setup(s3, bucket, code=code, files=1)
    request = _request(bucket, "proc-env", code)
    request["Environment"] = {"MODE": "fast"}
    ctx = job_context(keep_sandbox=True)
    result = run_processing_job(request, ctx)
    assert result.status == "Completed", result.failure_reason
    env = json.loads(_outputs(s3, bucket, "proc-env")["env.json"])
    sandbox = ctx.work_dir / "proc-env" / "instance-1" / "opt" / "ml"
    assert env == {  # the request's, the platform's and the image's ENV; no OPT_ML_DIR
        "MODE": "fast",
        "OPT_ML_DIR": None,
        "AWS_ENDPOINT_URL": ctx.endpoint_url,
        "SAGEMAKER_TRAINING_MODULE": "sagemaker_sklearn_container.training:main",
    }
    assert (sandbox / "processing" / "input" / "data" / "part-0.csv").read_text() == "row0\n"


def test_zero_instances_is_a_clear_failure(s3, bucket, job_context):
    code = _setup(s3, bucket, files=1)
    result = run_processing_job(_request(bucket, "proc-zero", code, count=0), job_context())
    assert (result.status, result.failure_reason) == (
        "Failed",
        "ClientError: InstanceCount must be at least 1, got 0",
    )
