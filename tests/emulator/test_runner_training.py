"""The training runner end to end: real processes, S3 and CloudWatch Logs on moto's server."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from local_sagemaker import images
from local_sagemaker.runner import run_training_job
from local_sagemaker.runner.process import instance_cpus
from local_sagemaker.runner.training import TRAINING_LOG_GROUP
from tests.emulator import _exec_helpers as helpers
from tests.emulator._core_helpers import SKLEARN_IMAGE
from tests.emulator._exec_helpers import log_messages, put_tarball, put_text, read_tarball, script

# fixtures shared with the other runner / serving tests
pytestmark = pytest.mark.slow  # real processes against moto's server

moto_url, s3, logs, bucket, job_context = (
    helpers.moto_url,
    helpers.s3,
    helpers.logs,
    helpers.bucket,
    helpers.job_context,
)

TRAIN_PY = script(
    """
    import argparse, glob, json, os, sys
    from helper import mean_of

    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--rate", type=float)
    parser.add_argument("--model-dir", default=os.environ["SM_MODEL_DIR"])
    args = parser.parse_args()
    rows = []
    for path in sorted(glob.glob(os.path.join(os.environ["SM_CHANNEL_TRAIN"], "*.csv"))):
        rows += [float(line) for line in open(path).read().split()]
    for epoch in range(args.epochs):
        print(f"epoch={epoch} loss={1.0 / (epoch + 1):.3f}")
    print(f"[INFO] Training r2_score: {mean_of(rows)}", file=sys.stderr)
    with open(os.path.join(args.model_dir, "model.json"), "w") as fh:
        json.dump({"mean": mean_of(rows), "rate": args.rate, "cwd": os.getcwd()}, fh)
    with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "notes.txt"), "w") as fh:
        fh.write("done")
    env = {k: v for k, v in os.environ.items() if k.startswith(("SM_", "OPT_ML"))}
    with open(os.path.join(args.model_dir, "env.json"), "w") as fh:
        json.dump(env, fh)
    """
)


def _request(bucket: str, name: str, source: str, program: str = "train.py", **extra) -> dict:
    request = {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": SKLEARN_IMAGE, "TrainingInputMode": "File"},
        "RoleArn": "arn:aws:iam::123456789012:role/sagemaker",
        "HyperParameters": {
            "sagemaker_program": json.dumps(program),
            "sagemaker_submit_directory": json.dumps(source),
        },
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": f"s3://{bucket}/data/train",
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
            }
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/output"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }
    request.update(extra)
    return request


def _source(s3, bucket: str, files: dict[str, str]) -> str:
    return put_tarball(s3, bucket, "code/sourcedir.tar.gz", files)


def test_training_success_uploads_model_logs_and_metrics(s3, logs, bucket, job_context):
    put_text(s3, bucket, "data/train/a.csv", "1\n2\n")
    put_text(s3, bucket, "data/train/b.csv", "3\n6\n")
    source = _source(
        s3, bucket, {"train.py": TRAIN_PY, "helper.py": "def mean_of(x): return sum(x) / len(x)\n"}
    )
    request = _request(bucket, "train-ok", source)
    request["HyperParameters"].update({"epochs": "3", "rate": "0.5"})
    request["AlgorithmSpecification"]["MetricDefinitions"] = [
        {"Name": "train:loss", "Regex": r"loss=([0-9.]+)"},
        {"Name": "train:r2", "Regex": r"Training r2_score: ([0-9.]+)"},
        {"Name": "never", "Regex": r"never=([0-9.]+)"},
    ]
    ctx = job_context()

    result = run_training_job(request, ctx)

    assert result.status == "Completed", result.failure_reason
    assert result.failure_reason is None
    assert result.model_artifact == f"s3://{bucket}/output/train-ok/output/model.tar.gz"
    model = read_tarball(s3, result.model_artifact)
    assert json.loads(model["model.json"])["mean"] == 3.0
    assert json.loads(model["model.json"])["rate"] == 0.5
    env = json.loads(model["env.json"])  # what the sagemaker-training toolkit set
    assert json.loads(env["SM_HPS"]) == {"epochs": 3, "rate": 0.5}
    assert json.loads(env["SM_CHANNELS"]) == ["train"]
    assert env["SM_CURRENT_HOST"] == "algo-1" and json.loads(env["SM_HOSTS"]) == ["algo-1"]
    assert env["SM_CHANNEL_TRAIN"] == "/opt/ml/input/data/train"
    assert "OPT_ML_DIR" not in env  # only the remap fallback sets it
    assert json.loads(model["model.json"])["cwd"] == "/opt/ml/code"
    assert read_tarball(s3, f"s3://{bucket}/output/train-ok/output/output.tar.gz") == {
        "notes.txt": b"done"
    }

    metrics = {m["MetricName"]: m["Value"] for m in result.final_metrics}
    assert metrics == {"train:loss": 0.333, "train:r2": 3.0}  # the last value of each metric
    assert [s for s, _ in ctx.statuses] == [
        "Starting",
        "Downloading",
        "Training",
        "Uploading",
        "Completed",
    ]
    assert result.script_seconds > 0
    assert result.started_at <= result.ended_at

    streams = log_messages(logs, TRAINING_LOG_GROUP, "train-ok")
    assert len(streams) == 1
    ((name, messages),) = streams.items()
    assert name.startswith("train-ok/algo-1-")
    assert "epoch=2 loss=0.333" in messages
    assert "[INFO] Training r2_score: 3.0" in messages
    assert any("Invoking script with the following command:" in m for m in messages)
    assert not (Path(ctx.work_dir) / "train-ok").exists()  # sandbox removed


def test_the_images_trainer_replaces_a_scripts_failure_file(s3, bucket, job_context):
    """The sklearn image's ``train`` is sagemaker-containers' trainer: when the script fails it
    writes its own "framework error" traceback over /opt/ml/output/failure and exits 1 (as real
    jobs show, e.g. aws/amazon-sagemaker-examples#1740)."""
    put_text(s3, bucket, "data/train/a.csv", "1\n")
    fail_py = script(
        """
        import sys
        with open("/opt/ml/output/failure", "w") as fh:
            fh.write("Training data has no rows with a target value\\nmore detail")
        sys.exit(3)
        """
    )
    result = run_training_job(
        _request(bucket, "train-failfile", _source(s3, bucket, {"train.py": fail_py})),
        job_context(),
    )
    assert result.status == "Failed"
    reason = result.failure_reason
    assert reason.startswith("AlgorithmError: framework error: \nTraceback (most recent call last):")
    assert "sagemaker_containers/_trainer.py" in reason
    assert "Training data has no rows" not in reason
    assert reason.endswith(", exit code: 1") and len(reason) <= 1024
    assert result.model_artifact is None


def test_script_error_gets_the_toolkits_failure_file(s3, logs, bucket, job_context):
    put_text(s3, bucket, "data/train/a.csv", "1\n")
    bad_py = "print('starting')\nraise ValueError('column median_income is missing')\n"
    ctx = job_context()
    request = _request(bucket, "train-raise", _source(s3, bucket, {"train.py": bad_py}))
    request["HyperParameters"]["alpha"] = "0.5"
    result = run_training_job(request, ctx)
    assert result.status == "Failed"
    assert result.failure_reason.startswith("AlgorithmError: framework error: \nTraceback")
    assert ctx.statuses[-1] == ("Failed", "Training job failed")
    # sagemaker-training's ExecuteUserScriptError (the image does not capture stderr, so its
    # ErrorMessage is empty) is in the logs with the script's own traceback, as on SageMaker.
    python = images.resolve(SKLEARN_IMAGE).python
    logged = "\n".join(m for ms in log_messages(logs, TRAINING_LOG_GROUP, "train-raise").values() for m in ms)
    assert "ValueError: column median_income is missing" in logged
    assert f'ExitCode 1\nErrorMessage ""\nCommand "{python} train.py --alpha 0.5"' in logged


def test_missing_input_fails_with_the_aws_reason(s3, bucket, job_context):
    source = _source(s3, bucket, {"train.py": TRAIN_PY})
    result = run_training_job(_request(bucket, "train-noinput", source), job_context())
    assert result.status == "Failed"
    assert result.failure_reason.startswith(
        f'ClientError: No S3 objects found under S3 URL "s3://{bucket}/data/train" given in input data source.'
    )


def test_missing_program_in_source_dir(s3, bucket, job_context):
    put_text(s3, bucket, "data/train/a.csv", "1\n")
    source = _source(s3, bucket, {"other.py": "print(1)\n"})
    result = run_training_job(_request(bucket, "train-noprog", source), job_context())
    assert result.status == "Failed"
    assert result.failure_reason.startswith("AlgorithmError: framework error: \nTraceback")


def test_stop_terminates_the_script_and_keeps_what_it_saved(s3, bucket, job_context, tmp_path):
    put_text(s3, bucket, "data/train/a.csv", "1\n")
    marker = tmp_path / "running"
    slow_py = script(
        f"""
        import os, signal, sys, time
        def on_term(signum, frame):
            open(os.path.join(os.environ["SM_MODEL_DIR"], "checkpoint.txt"), "w").write("saved")
            sys.exit(0)
        signal.signal(signal.SIGTERM, on_term)
        open({str(marker)!r}, "w").write("up")
        time.sleep(120)
        """
    )
    ctx = job_context()
    stopper = threading.Thread(target=lambda: (_wait_for(marker), ctx.stop_event.set()))
    stopper.start()
    result = run_training_job(
        _request(bucket, "train-stop", _source(s3, bucket, {"train.py": slow_py})), ctx
    )
    stopper.join()
    assert result.status == "Stopped"
    assert read_tarball(s3, result.model_artifact) == {"checkpoint.txt": b"saved"}
    assert ctx.statuses[-1][0] == "Stopped"


def test_stop_kills_a_script_that_ignores_sigterm(s3, bucket, job_context, tmp_path, monkeypatch):
    from local_sagemaker.runner import process

    monkeypatch.setattr(process, "STOP_GRACE_SECONDS", 0.5)
    put_text(s3, bucket, "data/train/a.csv", "1\n")
    marker = tmp_path / "running"
    stubborn = script(
        f"""
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        open({str(marker)!r}, "w").write("up")
        time.sleep(120)
        """
    )
    ctx = job_context()
    stopper = threading.Thread(target=lambda: (_wait_for(marker), ctx.stop_event.set()))
    stopper.start()
    result = run_training_job(
        _request(bucket, "train-kill", _source(s3, bucket, {"train.py": stubborn})), ctx
    )
    stopper.join()
    assert result.status == "Stopped"
    assert result.script_seconds < 60


def _wait_for(path: Path) -> None:
    event = threading.Event()
    while not path.exists():
        event.wait(0.02)


def test_logs_are_visible_while_the_job_runs(s3, logs, bucket, job_context, tmp_path):
    put_text(s3, bucket, "data/train/a.csv", "1\n")
    release = tmp_path / "release"
    waiting_py = script(
        f"""
        import os, sys, time
        print("waiting for the test to read this line")
        deadline = time.time() + 60
        while not os.path.exists({str(release)!r}):
            if time.time() > deadline:
                sys.exit("the log line was never seen")
            time.sleep(0.02)
        """
    )
    ctx = job_context()
    seen: list[str] = []

    def watch() -> None:
        event = threading.Event()
        while "waiting for the test to read this line" not in seen and not event.wait(0.05):
            seen.clear()
            for messages in _streams_or_empty(logs, "train-live").values():
                seen.extend(messages)
        release.write_text("go")

    watcher = threading.Thread(target=watch)
    watcher.start()
    result = run_training_job(
        _request(bucket, "train-live", _source(s3, bucket, {"train.py": waiting_py})), ctx
    )
    watcher.join()
    assert result.status == "Completed", result.failure_reason
    assert "waiting for the test to read this line" in seen


def _streams_or_empty(logs, job_name: str) -> dict[str, list[str]]:
    try:
        return log_messages(logs, TRAINING_LOG_GROUP, job_name)
    except logs.exceptions.ResourceNotFoundException:
        return {}


def test_two_instances_shard_a_channel_and_algo_1_uploads_the_model(s3, logs, bucket, job_context):
    for i in range(4):
        put_text(s3, bucket, f"data/train/part-{i}.csv", f"{i}\n")
    shard_py = script(
        """
        import json, os
        files = sorted(os.listdir("/opt/ml/input/data/train"))
        print(os.environ["SM_CURRENT_HOST"], files)
        with open(os.path.join(os.environ["SM_MODEL_DIR"], "files.json"), "w") as fh:
            json.dump({"host": os.environ["SM_CURRENT_HOST"], "hosts": json.loads(os.environ["SM_HOSTS"]),
                       "files": files, "cpus": sorted(os.sched_getaffinity(0))}, fh)
        """
    )
    request = _request(bucket, "train-two", _source(s3, bucket, {"train.py": shard_py}))
    request["ResourceConfig"]["InstanceCount"] = 2
    request["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3DataDistributionType"] = (
        "ShardedByS3Key"
    )
    result = run_training_job(request, job_context())
    assert result.status == "Completed", result.failure_reason
    assert json.loads(read_tarball(s3, result.model_artifact)["files.json"]) == {
        "host": "algo-1",
        "hosts": ["algo-1", "algo-2"],
        "files": ["part-0.csv", "part-2.csv"],
        "cpus": sorted(instance_cpus(2)[0]),  # the instance's CPU slice, through bwrap and the toolkit
    }
    streams = log_messages(logs, TRAINING_LOG_GROUP, "train-two")
    assert sorted(m for ms in streams.values() for m in ms if m.startswith("algo-")) == [
        "algo-1 ['part-0.csv', 'part-2.csv']",
        "algo-2 ['part-1.csv', 'part-3.csv']",
    ]


def test_container_entrypoint_mode_and_manifest_input(s3, bucket, job_context):
    put_text(s3, bucket, "data/all/keep-1.csv", "10\n")
    put_text(s3, bucket, "data/all/keep-2.csv", "20\n")
    put_text(s3, bucket, "data/all/skip.csv", "99\n")
    manifest = put_text(
        s3,
        bucket,
        "data/train.manifest",
        json.dumps([{"prefix": f"s3://{bucket}/data/all/"}, "keep-1.csv", "keep-2.csv"]),
    )
    code = put_text(
        s3,
        bucket,
        "entry/run.py",
        script(
            """
        import os, sys
        total = sum(float(open(os.path.join(sys.argv[1], f)).read()) for f in os.listdir(sys.argv[1]))
        open("/opt/ml/model/total.txt", "w").write(str(total))
        """
        ),
    )
    request = _request(bucket, "train-entry", "unused")
    request["HyperParameters"] = {}
    request["AlgorithmSpecification"].update(
        ContainerEntrypoint=["python3", "/opt/ml/input/data/code/run.py"],
        ContainerArguments=["/opt/ml/input/data/train"],
    )
    request["InputDataConfig"] = [
        {
            "ChannelName": "train",
            "DataSource": {"S3DataSource": {"S3DataType": "ManifestFile", "S3Uri": manifest}},
        },
        {
            "ChannelName": "code",
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": code}},
        },
    ]
    result = run_training_job(request, job_context())
    assert result.status == "Completed", result.failure_reason
    assert read_tarball(s3, result.model_artifact) == {"total.txt": b"30.0"}


def test_invalid_metric_regex_fails_the_job_with_the_metric_name(s3, bucket, job_context):
    request = _request(bucket, "train-regex", "s3://unused/x.tar.gz")
    request["AlgorithmSpecification"]["MetricDefinitions"] = [
        {"Name": "rmse", "Regex": "rmse=([0-9.]+"}
    ]
    result = run_training_job(request, job_context())
    assert result.status == "Failed"
    assert result.failure_reason.startswith(
        "ClientError: MetricDefinitions regex for 'rmse' is invalid"
    )
