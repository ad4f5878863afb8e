"""Processing and training jobs driven over real HTTP with boto3: they really run."""

from __future__ import annotations

import json
import urllib.request

import pytest

from tests.emulator._core_helpers import (
    aws_error,
    processing_request,
    script,
    tarball,
    training_request,
    unique,
    wait_for,
)

pytestmark = pytest.mark.slow

PROCESS_PY = script("""
    import csv, glob, json, os, sys
    opt_ml = "/opt/ml"
    rows = []
    for path in sorted(glob.glob(f"{opt_ml}/processing/input/data/*.csv")):
        with open(path) as handle:
            rows += [float(r["value"]) for r in csv.DictReader(handle)]
    host = json.load(open(f"{opt_ml}/config/resourceconfig.json"))["current_host"]
    os.makedirs(f"{opt_ml}/processing/output", exist_ok=True)
    with open(f"{opt_ml}/processing/output/summary-{host}.json", "w") as handle:
        json.dump({"rows": len(rows), "total": sum(rows), "args": sys.argv[1:]}, handle)
    print(f"processed {len(rows)} rows")
""")

FAIL_PY = script("""
    import sys
    with open("/opt/ml/output/message", "w") as handle:
        handle.write("column 'value' is missing from data.csv")
    sys.exit(3)
""")

TRAIN_PY = script("""
    import argparse, glob, os, time
    parser = argparse.ArgumentParser()
    parser.add_argument("--alpha", type=float, default=0.0)
    parser.add_argument("--sleep", type=float, default=0.0)
    args = parser.parse_args()
    time.sleep(args.sleep)
    rows = sum(1 for path in glob.glob(os.environ["SM_CHANNEL_TRAIN"] + "/*.csv") for _ in open(path))
    print(f"read {rows} rows; validation rmse={args.alpha + 0.5}")
    with open(os.path.join(os.environ["SM_MODEL_DIR"], "model.txt"), "w") as handle:
        handle.write(f"alpha={args.alpha}")
""")

TRAIN_FAIL_PY = script("""
    raise ValueError("alpha must be positive, got -1")
""")


@pytest.fixture
def data(emulator, bucket):
    s3 = emulator.client("s3")
    s3.put_object(Bucket=bucket, Key="code/process.py", Body=PROCESS_PY.encode())
    s3.put_object(Bucket=bucket, Key="code/fail.py", Body=FAIL_PY.encode())
    for i, values in enumerate(([1, 2], [3, 4, 5])):
        body = "value\n" + "".join(f"{v}\n" for v in values)
        s3.put_object(Bucket=bucket, Key=f"data/part-{i}.csv", Body=body.encode())
    s3.put_object(Bucket=bucket, Key="code/sourcedir.tar.gz",
                  Body=tarball({"train.py": TRAIN_PY, "fail.py": TRAIN_FAIL_PY}))
    return bucket


def _processing(sm, name):
    return wait_for(lambda: sm.describe_processing_job(ProcessingJobName=name),
                    "ProcessingJobStatus", ("InProgress", "Stopping"))


def _training(sm, name):
    return wait_for(lambda: sm.describe_training_job(TrainingJobName=name),
                    "TrainingJobStatus", ("InProgress", "Stopping"))


def _summaries(s3, bucket, prefix):
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
    return {k.rsplit("/", 1)[-1]: json.loads(s3.get_object(Bucket=bucket, Key=k)["Body"].read())
            for k in keys}


def test_processing_job_runs_and_uploads_outputs(emulator, data):
    sm, s3 = emulator.client("sagemaker"), emulator.client("s3")
    name = unique("proc")
    request = processing_request(name, f"s3://{data}/code/process.py",
                                 [{"name": "data", "uri": f"s3://{data}/data"}],
                                 f"s3://{data}/out/{name}", arguments=["--flag", "/opt/ml/x"])
    arn = sm.create_processing_job(**request)["ProcessingJobArn"]
    assert arn == f"arn:aws:sagemaker:us-east-1:123456789012:processing-job/{name}"
    done = _processing(sm, name)
    assert done["ProcessingJobStatus"] == "Completed", done.get("FailureReason")
    assert done["ProcessingStartTime"] <= done["ProcessingEndTime"] <= done["LastModifiedTime"]
    assert done["CreationTime"] <= done["ProcessingStartTime"]
    assert done["ProcessingInputs"][1]["S3Input"]["S3Uri"] == f"s3://{data}/data"
    summaries = _summaries(s3, data, f"out/{name}/")
    assert summaries == {"summary-algo-1.json": {"rows": 5, "total": 15.0,
                                                  "args": ["--flag", "/opt/ml/x"]}}  # literal /opt/ml
    listed = sm.list_processing_jobs(NameContains=name)["ProcessingJobSummaries"]
    assert [(j["ProcessingJobName"], j["ProcessingJobStatus"]) for j in listed] == [(name, "Completed")]
    with urllib.request.urlopen(f"{emulator.url}/_emulator/processing-jobs/{name}") as response:
        assert json.load(response)["_emulator"]["script_seconds"] > 0


def test_sharded_processing_runs_one_process_per_instance(emulator, data):
    sm, s3 = emulator.client("sagemaker"), emulator.client("s3")
    name = unique("shard")
    request = processing_request(name, f"s3://{data}/code/process.py",
                                 [{"name": "data", "uri": f"s3://{data}/data", "distribution": "ShardedByS3Key"}],
                                 f"s3://{data}/out/{name}", instance_count=2)
    sm.create_processing_job(**request)
    assert _processing(sm, name)["ProcessingJobStatus"] == "Completed"
    summaries = _summaries(s3, data, f"out/{name}/")
    assert {k: v["rows"] for k, v in summaries.items()} == {"summary-algo-1.json": 2, "summary-algo-2.json": 3}


def test_failing_script_gives_its_own_reason(emulator, data):
    sm = emulator.client("sagemaker")
    name = unique("fail")
    sm.create_processing_job(**processing_request(name, f"s3://{data}/code/fail.py", []))
    done = _processing(sm, name)
    assert done["ProcessingJobStatus"] == "Failed"
    assert done["FailureReason"] == "AlgorithmError: See job logs for more information"
    assert done["ExitMessage"] == "column 'value' is missing from data.csv"


def test_missing_processing_input_fails_the_job_naming_the_uri(emulator, data):
    sm = emulator.client("sagemaker")
    name = unique("noinput")
    missing = f"s3://{data}/nothing/here"
    sm.create_processing_job(**processing_request(name, f"s3://{data}/code/process.py",
                                                  [{"name": "data", "uri": missing}]))
    done = _processing(sm, name)
    assert done["ProcessingJobStatus"] == "Failed"
    assert missing in done["FailureReason"]


def test_training_job_completes_with_artifacts_metrics_and_logs(emulator, data):
    sm, logs = emulator.client("sagemaker"), emulator.client("logs")
    name = unique("train")
    request = training_request(name, f"s3://{data}/code/sourcedir.tar.gz", f"s3://{data}/data",
                               f"s3://{data}/models", hyperparameters={"alpha": "0.25"})
    sm.create_training_job(**request)
    done = _training(sm, name)
    assert done["TrainingJobStatus"] == "Completed", done.get("FailureReason")
    assert done["SecondaryStatus"] == "Completed"
    assert done["ModelArtifacts"]["S3ModelArtifacts"] == f"s3://{data}/models/{name}/output/model.tar.gz"
    assert [(m["MetricName"], m["Value"]) for m in done["FinalMetricDataList"]] == [("validation:rmse", 0.75)]
    statuses = [t["Status"] for t in done["SecondaryStatusTransitions"]]
    assert statuses[0] == "Starting" and statuses[-1] == "Completed" and "Training" in statuses
    assert all(t["StartTime"] <= t["EndTime"] for t in done["SecondaryStatusTransitions"])
    assert done["TrainingStartTime"] <= done["TrainingEndTime"]
    assert done["BillableTimeInSeconds"] >= 1
    streams = logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs",
                                        logStreamNamePrefix=f"{name}/")["logStreams"]
    assert [s["logStreamName"].rsplit("-", 1)[0] for s in streams] == [f"{name}/algo-1"]
    events = logs.get_log_events(logGroupName="/aws/sagemaker/TrainingJobs",
                                 logStreamName=streams[0]["logStreamName"], startFromHead=True)["events"]
    assert any("validation rmse=0.75" in e["message"] for e in events)


def test_failing_training_script_gives_the_images_failure_file(emulator, data):
    sm = emulator.client("sagemaker")
    name = unique("trainfail")
    sm.create_training_job(**training_request(name, f"s3://{data}/code/sourcedir.tar.gz",
                                              f"s3://{data}/data", f"s3://{data}/models", program="fail.py"))
    done = _training(sm, name)
    assert done["TrainingJobStatus"] == "Failed"
    assert done["SecondaryStatus"] == "Failed"
    # the image's trainer (sagemaker-containers) writes its traceback as the failure file
    assert done["FailureReason"].startswith("AlgorithmError: framework error: \nTraceback")
    assert done["FailureReason"].endswith(", exit code: 1")
    assert "ModelArtifacts" not in done or not done["ModelArtifacts"].get("S3ModelArtifacts")


def test_max_runtime_stops_the_job_as_aws_does(emulator, data):
    sm = emulator.client("sagemaker")
    name = unique("slow")
    sm.create_training_job(**training_request(name, f"s3://{data}/code/sourcedir.tar.gz",
                                              f"s3://{data}/data", f"s3://{data}/models",
                                              hyperparameters={"sleep": "60"}, max_runtime=1))
    done = _training(sm, name)
    assert done["TrainingJobStatus"] == "Stopped"
    assert done["SecondaryStatus"] == "MaxRuntimeExceeded"
    assert "MaxRuntimeInSeconds of 1 s" in done["FailureReason"]
    assert "TrainingEndTime" in done


def test_stop_training_job(emulator, data):
    sm = emulator.client("sagemaker")
    name = unique("stopme")
    sm.create_training_job(**training_request(name, f"s3://{data}/code/sourcedir.tar.gz",
                                              f"s3://{data}/data", f"s3://{data}/models",
                                              hyperparameters={"sleep": "60"}))
    sm.stop_training_job(TrainingJobName=name)
    done = _training(sm, name)
    assert done["TrainingJobStatus"] == "Stopped"
    assert "Stopping" in [t["Status"] for t in done["SecondaryStatusTransitions"]]
    error, _ = aws_error(sm.stop_training_job, TrainingJobName=name)
    assert error["Code"] == "ValidationException"
    assert "in status Stopped" in error["Message"]


def test_unknown_names_give_validation_exception(emulator):
    sm = emulator.client("sagemaker")
    error, response = aws_error(sm.describe_training_job, TrainingJobName="no-such-job")
    assert (error["Code"], error["Message"]) == ("ValidationException", "Requested resource not found.")
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    error, _ = aws_error(sm.describe_processing_job, ProcessingJobName="no-such-job")
    assert error["Code"] == "ValidationException"
    assert "no-such-job" in error["Message"]


def test_invalid_requests_give_the_aws_error(emulator, data):
    sm = emulator.client("sagemaker")
    raw = emulator.client("sagemaker", validate=False)  # what the server itself answers
    request = processing_request("bad_name", f"s3://{data}/code/process.py", [])
    error, _ = aws_error(sm.create_processing_job, **request)
    assert error["Code"] == "ValidationException"
    assert "Value 'bad_name' at 'processingJobName' failed to satisfy constraint" in error["Message"]
    request = processing_request(unique("zero"), f"s3://{data}/code/process.py", [], instance_count=0)
    error, _ = aws_error(raw.create_processing_job, **request)
    assert error["Code"] == "ValidationException"
    assert ("Value '0' at 'processingResources.clusterConfig.instanceCount' failed to satisfy "
            "constraint: Member must have value greater than or equal to 1") in error["Message"]
    request = processing_request(unique("norole"), f"s3://{data}/code/process.py", [])
    del request["RoleArn"]
    error, _ = aws_error(raw.create_processing_job, **request)
    assert error["Code"] == "ValidationException" and "RoleArn" in error["Message"]


def test_duplicate_job_name_is_resource_in_use(emulator, data):
    sm = emulator.client("sagemaker")
    request = processing_request(unique("dup"), f"s3://{data}/code/process.py",
                                 [{"name": "data", "uri": f"s3://{data}/data"}])
    sm.create_processing_job(**request)
    error, _ = aws_error(sm.create_processing_job, **request)
    assert error["Code"] == "ResourceInUse"
    _processing(sm, request["ProcessingJobName"])


def test_training_with_missing_input_is_rejected_at_create(emulator, data):
    sm = emulator.client("sagemaker")
    name = unique("nodata")
    missing = f"s3://{data}/no/such/prefix"
    error, _ = aws_error(sm.create_training_job, **training_request(
        name, f"s3://{data}/code/sourcedir.tar.gz", missing, f"s3://{data}/models"))
    assert error["Code"] == "ValidationException"
    assert error["Message"].startswith(f'No S3 objects found under S3 URL "{missing}"')
    assert aws_error(sm.describe_training_job, TrainingJobName=name)[0]["Code"] == "ValidationException"


def test_list_training_jobs_filters_sorts_and_pages(emulator, data):
    sm = emulator.client("sagemaker")
    tag = unique("lst")
    names = [f"{tag}-{i}" for i in range(3)]
    for name in names:
        sm.create_training_job(**training_request(name, f"s3://{data}/code/sourcedir.tar.gz",
                                                  f"s3://{data}/data", f"s3://{data}/models"))
    for name in names:
        _training(sm, name)
    first = sm.list_training_jobs(NameContains=tag, SortBy="Name", SortOrder="Ascending", MaxResults=2)
    assert [j["TrainingJobName"] for j in first["TrainingJobSummaries"]] == names[:2]
    rest = sm.list_training_jobs(NameContains=tag, SortBy="Name", SortOrder="Ascending",
                                 MaxResults=2, NextToken=first["NextToken"])
    assert [j["TrainingJobName"] for j in rest["TrainingJobSummaries"]] == names[2:]
    assert "NextToken" not in rest
    newest_first = sm.list_training_jobs(NameContains=tag)["TrainingJobSummaries"]
    assert [j["TrainingJobName"] for j in newest_first] == names[::-1]
    assert sm.list_training_jobs(NameContains=tag, StatusEquals="Failed")["TrainingJobSummaries"] == []


def test_an_unknown_image_is_refused_at_create_naming_the_supported_ones(emulator, data):
    sm = emulator.client("sagemaker")
    for create, request, key in (
        (sm.create_processing_job,
         processing_request(unique("img"), f"s3://{data}/code/process.py", []), "AppSpecification"),
        (sm.create_training_job,
         training_request(unique("img"), f"s3://{data}/code/sourcedir.tar.gz", f"s3://{data}/data",
                          f"s3://{data}/models"), "AlgorithmSpecification"),
    ):
        image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/my-own-image:latest"
        request[key]["ImageUri" if key == "AppSpecification" else "TrainingImage"] = image
        error, response = aws_error(create, **request)
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert error["Code"] == "ValidationException"
        assert error["Message"].startswith(f"Image {image} is not supported by the local emulator.")
        assert "sklearn-1.4-2: SageMaker scikit-learn 1.4-2" in error["Message"]
    name = request["TrainingJobName"]
    assert aws_error(sm.describe_training_job, TrainingJobName=name)[0]["Message"] == (
        "Requested resource not found.")  # no job record was made
    del request["AlgorithmSpecification"]["TrainingImage"]  # optional in the API, needed here
    error, _ = aws_error(sm.create_training_job, **request)
    assert error["Message"].startswith(
        "AlgorithmSpecification.TrainingImage is required by the local emulator")


def test_an_unbuilt_image_environment_is_refused_at_create(tmp_path, monkeypatch):
    from local_sagemaker.images import ENV_ROOT_VARIABLE
    from local_sagemaker.launcher import EmulatorProcess

    monkeypatch.setenv(ENV_ROOT_VARIABLE, str(tmp_path / "no-environments"))
    bare = EmulatorProcess(tmp_path / "emulator")
    try:
        request = processing_request(unique("unbuilt"), "s3://any/code/process.py", [])
        error, _ = aws_error(bare.client("sagemaker").create_processing_job, **request)
        assert error["Code"] == "ValidationException"
        assert "(sklearn-1.4-2) is not built in" in error["Message"]
        assert "run ./dev install" in error["Message"]
    finally:
        bare.stop()
