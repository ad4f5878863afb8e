"""The Amazon provider's own operators, unmodified, against the emulator: jobs, registry, SNS."""

from __future__ import annotations

import json

import pytest

from tests.emulator._core_helpers import (
    processing_request,
    script,
    tarball,
    training_request,
    unique,
)

pytestmark = pytest.mark.slow

EVALUATE_PY = script("""
    import json, os
    out = "/opt/ml/processing/output"
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "evaluation.json"), "w") as handle:
        json.dump({"regression_metrics": {"r2_score": {"value": 0.71}}}, handle)
""")

TRAIN_PY = script("""
    import argparse, os
    parser = argparse.ArgumentParser()
    parser.add_argument("--alpha", type=float, default=0.0)
    args = parser.parse_args()
    for step in range(3):
        print(f"epoch {step}: validation rmse={args.alpha + step}")
    open(os.path.join(os.environ["SM_MODEL_DIR"], "model.txt"), "w").write("fitted")
""")

FAIL_PY = script("""
    raise SystemExit("target column missing")
""")


@pytest.fixture
def code(emulator, bucket):
    s3 = emulator.client("s3")
    s3.put_object(Bucket=bucket, Key="code/evaluate.py", Body=EVALUATE_PY.encode())
    s3.put_object(Bucket=bucket, Key="code/sourcedir.tar.gz",
                  Body=tarball({"train.py": TRAIN_PY, "fail.py": FAIL_PY}))
    s3.put_object(Bucket=bucket, Key="data/train.csv", Body=b"a,b\n1,2\n")
    return bucket


def test_processing_operator_runs_the_job_and_reads_output_files(aws_conn_env, code):
    from airflow.providers.amazon.aws.operators.sagemaker import SageMakerProcessingOperator

    name = unique("evaluate")
    config = processing_request(name, f"s3://{code}/code/evaluate.py", [], f"s3://{code}/eval/{name}")
    op = SageMakerProcessingOperator(
        task_id="evaluate", config=config, aws_conn_id=aws_conn_env, check_interval=0.2,
        output_files_to_xcom=[{"result_name": "metrics", "output_name": "result",
                               "file_name": "evaluation.json"}])
    result = op.execute(context={})
    assert result["Processing"]["ProcessingJobStatus"] == "Completed"
    assert result["OutputFiles"]["metrics"] == {"regression_metrics": {"r2_score": {"value": 0.71}}}
    # Re-running with the same config gets a timestamped name, as on AWS.
    again = op.execute(context={})
    assert again["Processing"]["ProcessingJobName"].startswith(f"{name}-")


@pytest.mark.parametrize("print_log", [True, False])
def test_training_operator_completes(aws_conn_env, code, print_log, capfd):
    from airflow.providers.amazon.aws.operators.sagemaker import SageMakerTrainingOperator

    name = unique(f"train-log{int(print_log)}")
    config = training_request(name, f"s3://{code}/code/sourcedir.tar.gz", f"s3://{code}/data",
                              f"s3://{code}/models", hyperparameters={"alpha": "0.5"})
    op = SageMakerTrainingOperator(task_id="train", config=config, aws_conn_id=aws_conn_env,
                                   check_interval=0.2, print_log=print_log)
    result = op.execute(context={})
    training = result["Training"]
    assert training["TrainingJobStatus"] == "Completed"
    assert training["ModelArtifacts"]["S3ModelArtifacts"] == f"s3://{code}/models/{name}/output/model.tar.gz"
    assert training["FinalMetricDataList"][0]["Value"] == 2.5  # the last value the regex matched
    # With print_log the script's own output reaches the task log through CloudWatch Logs (the
    # provider then re-describes the job only every 30 s: that test takes ~30 s by design).
    assert ("epoch 2: validation rmse=2.5" in capfd.readouterr().out) is print_log


def test_training_operator_fails_with_the_images_reason(aws_conn_env, code):
    from airflow.providers.amazon.aws.operators.sagemaker import SageMakerTrainingOperator

    config = training_request(unique("trainfail"), f"s3://{code}/code/sourcedir.tar.gz",
                              f"s3://{code}/data", f"s3://{code}/models", program="fail.py")
    op = SageMakerTrainingOperator(task_id="train", config=config, aws_conn_id=aws_conn_env,
                                   check_interval=0.2, print_log=False)
    with pytest.raises(Exception, match="AlgorithmError: framework error"):
        op.execute(context={})


def test_register_model_version_operator_creates_group_then_versions(aws_conn_env, emulator):
    from airflow.providers.amazon.aws.operators.sagemaker import (
        SageMakerRegisterModelVersionOperator,
    )
    from airflow.providers.amazon.aws.utils.sagemaker import ApprovalStatus

    group = unique("registry")
    arns = []
    for i in range(2):
        op = SageMakerRegisterModelVersionOperator(
            task_id="register", image_uri="local/sklearn:1.4-2", model_url=f"s3://b/model{i}.tar.gz",
            package_group_name=group, model_approval=ApprovalStatus.APPROVED,
            aws_conn_id=aws_conn_env,
            extras={"CustomerMetadataProperties": {"run_id": f"run-{i}"}})
        arns.append(op.execute(context={}))
    assert [a.rsplit("/", 1)[-1] for a in arns] == ["1", "2"]
    described = emulator.client("sagemaker").describe_model_package(ModelPackageName=arns[1])
    assert described["ModelApprovalStatus"] == "Approved"
    assert described["CustomerMetadataProperties"] == {"run_id": "run-1"}


def test_sns_publish_operator(aws_conn_env, emulator):
    from airflow.providers.amazon.aws.operators.sns import SnsPublishOperator

    sns, sqs = emulator.client("sns"), emulator.client("sqs")
    topic = sns.create_topic(Name=unique("alerts"))["TopicArn"]
    queue_url = sqs.create_queue(QueueName=unique("inbox"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    op = SnsPublishOperator(task_id="alert", target_arn=topic, subject="Retrain needed",
                            message="r2_score 0.41 < 0.6", aws_conn_id=aws_conn_env)
    assert op.execute(context={})["MessageId"]
    received = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1)["Messages"]
    assert json.loads(received[0]["Body"])["Message"] == "r2_score 0.41 < 0.6"


def test_deferrable_trigger_sees_the_job_finish(aws_conn_env, code):
    """Deferrable operators wait in the triggerer through aiobotocore: same wire format."""
    import asyncio

    from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook
    from airflow.providers.amazon.aws.triggers.sagemaker import SageMakerTrigger

    name = unique("deferred")
    SageMakerHook(aws_conn_id=aws_conn_env).conn.create_processing_job(
        **processing_request(name, f"s3://{code}/code/evaluate.py", [], f"s3://{code}/eval/{name}"))
    trigger = SageMakerTrigger(job_name=name, job_type="Processing", waiter_delay=1,
                               waiter_max_attempts=60, aws_conn_id=aws_conn_env)

    async def first_event():
        async for event in trigger.run():
            return event.payload

    assert asyncio.run(first_event()) == {"status": "success", "job_name": name}
