"""The fault classifier: what is retried (transient) and what fails at once (deterministic)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from sagemaker_mlops import retry
from sagemaker_mlops.retry import Fault, classify, job_failure
from sagemaker_mlops.run_options import ParamsError

try:  # Airflow 3.3+; the MWAA test runs these tests on 3.2.1 too, which has no retry policies
    from airflow.sdk.definitions.retry_policy import RetryAction
except ImportError:
    RetryAction = None
needs_policies = pytest.mark.skipif(RetryAction is None, reason="Airflow < 3.3: no retry_policy")


def client_error(code: str, status: int = 400, operation: str = "CreateTrainingJob") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": f"{code} happened"},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, operation)


@pytest.mark.parametrize("error", [
    client_error("ThrottlingException"),
    client_error("Throttling"),
    client_error("ResourceLimitExceeded"),
    client_error("InternalFailure", 500),
    client_error("ServiceUnavailable", 503),
    client_error("SomethingNew", 502),
    client_error("RequestTimeout", 408),
    EndpointConnectionError(endpoint_url="https://api.sagemaker.us-east-1.amazonaws.com"),
    ReadTimeoutError(endpoint_url="https://api.sagemaker.us-east-1.amazonaws.com"),
    ConnectionResetError("peer reset"),
])
def test_transient_errors_are_retried(error):
    assert classify(error).fault is Fault.TRANSIENT


@pytest.mark.parametrize("error", [
    client_error("ValidationException"),
    client_error("AccessDeniedException", 403),
    client_error("ResourceNotFound"),
    ParamsError("hyperparameters.alpha must be a number, got 'abc'"),
    ValueError("evaluation.json must hold a JSON object"),
    AirflowFailException("refusing to register a model whose quality gate failed"),
])
def test_deterministic_errors_fail_at_once(error):
    assert classify(error).fault is Fault.DETERMINISTIC


def test_the_cause_of_a_wrapped_error_decides():
    try:
        try:
            raise client_error("ThrottlingException")
        except ClientError as inner:
            raise AirflowException("could not describe the job") from inner
    except AirflowException as outer:
        assert classify(outer).fault is Fault.TRANSIENT


def test_a_plain_runtime_error_is_unknown():
    assert classify(RuntimeError("surprise")).fault is Fault.UNKNOWN


@pytest.mark.parametrize(("status", "reason", "fault", "fails_for_good"), [
    ("Failed", "AlgorithmError: ValueError: could not convert string to float: 'abc'",
     Fault.DETERMINISTIC, True),
    ("Failed", "ClientError: Please ensure the S3 prefix exists", Fault.DETERMINISTIC, True),
    ("Failed", "InternalServerError: We encountered an internal error. Please try again.",
     Fault.TRANSIENT, False),
    ("Failed", "CapacityError: Unable to provision requested ML compute capacity.",
     Fault.TRANSIENT, False),
    ("Stopped", "Training job reached its MaxRuntimeInSeconds", Fault.DETERMINISTIC, True),
    ("Failed", "", Fault.UNKNOWN, False),
])
def test_a_failed_job_is_classified_by_its_failure_reason(status, reason, fault, fails_for_good):
    error = job_failure("Training", {"TrainingJobName": "mlops-train-x", "TrainingJobStatus": status,
                                     "FailureReason": reason})
    assert retry.job_fault(status, reason) is fault
    assert isinstance(error, AirflowFailException) is fails_for_good
    assert "mlops-train-x" in str(error)
    if reason:
        assert reason in str(error)


@needs_policies
def test_the_policy_retries_transient_fails_deterministic_and_retries_unknown_once():
    policy = retry.PipelineRetryPolicy()
    assert policy.evaluate(client_error("ThrottlingException"), 1, 3).action is RetryAction.RETRY
    decision = policy.evaluate(client_error("ValidationException"), 1, 3)
    assert decision.action is RetryAction.FAIL
    assert "ValidationException" in decision.reason
    assert policy.evaluate(RuntimeError("?"), 1, 3).action is RetryAction.DEFAULT
    assert policy.evaluate(RuntimeError("?"), 2, 3).action is RetryAction.FAIL


def test_retry_args_back_off_exponentially_with_the_policy_where_airflow_has_one():
    args = retry.retry_args(30.0)
    assert args["retries"] == 3 and args["retry_exponential_backoff"] == 2.0
    assert args["retry_delay"] == timedelta(seconds=30)
    if RetryAction is None:  # a policy object in default_args would not serialize on 3.2
        assert "retry_policy" not in args
    else:
        assert isinstance(args["retry_policy"], retry.PipelineRetryPolicy)


def test_throttling_codes_come_from_botocore():
    assert {"ThrottlingException", "TooManyRequestsException", "SlowDown"} <= retry.THROTTLING_CODES


def test_a_processing_jobs_exit_message_leads_its_reason():
    error = job_failure("Processing", {
        "ProcessingJobName": "mlops-preprocess-x", "ProcessingJobStatus": "Failed",
        "FailureReason": "AlgorithmError: See job logs for more information",
        "ExitMessage": "target column 'median_house_valu' is not in the data"})
    assert str(error).startswith("SageMaker processing job mlops-preprocess-x failed: target column "
                                 "'median_house_valu' is not in the data (FailureReason: AlgorithmError")
    assert isinstance(error, AirflowFailException)
