"""Which failures are worth a retry: transient ones back off and retry, deterministic ones fail now.

A retry costs a new SageMaker job (minutes of provisioning and its bill), so only failures that can
succeed next time are retried. The sources for each rule:
- botocore's standard retry mode (``botocore.retries.standard``): its throttling error codes,
  transient error codes, HTTP statuses (500/502/503/504) and connection errors; the lists are read
  from botocore itself, never copied. Other AWS error codes (ValidationException, AccessDenied,
  ResourceNotFound, ...) describe the request, so they fail at once.
- SageMaker Pipelines' retry policy (docs: "Retry Policy for Pipeline Steps"): a job that failed
  with ``InternalServerError`` (SageMaker.JOB_INTERNAL_ERROR) or EC2 ``InsufficientCapacityError``
  (SageMaker.CAPACITY_ERROR; FailureReason ``CapacityError: ...``) is retried with a new job, and
  ``ResourceLimitExceeded`` (SageMaker.RESOURCE_LIMIT) is retried after a wait. A FailureReason
  ``AlgorithmError`` (the script failed) or ``ClientError`` (the request or data is wrong) fails.
- Errors our own code raises for bad input (``ValueError``: invalid params, a data check, a malformed
  evaluation; a refused gate, a failed integrity or smoke check) fail at once.
Anything else is unknown: it gets one retry, as before this policy.

Airflow 3.3 applies ``PipelineRetryPolicy`` to every task (``retry_policy``). Airflow 3.2 (MWAA)
has no retry policies: there only our operators' own failures are classified (a deterministic job
failure raises ``AirflowFailException``, which fails at once on every Airflow 3), and other errors
use the plain retry count.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    ParamValidationError,
)
from botocore.retries.standard import ThrottledRetryableChecker, TransientRetryableChecker

try:  # Airflow 3.3+
    from airflow.sdk.definitions.retry_policy import RetryDecision, RetryPolicy
except ImportError:  # Airflow 3.2 (MWAA): no retry policies
    RetryDecision = RetryPolicy = None  # type: ignore[assignment,misc]

from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException

RETRIES = 3
BACKOFF = 2.0  # with the default 30 s first delay: 30 s, 60 s, 120 s
MAX_RETRY_DELAY = timedelta(minutes=10)
UNKNOWN_TRIES = 2  # an unclassified error is tried this often in all

THROTTLING_CODES = frozenset(ThrottledRetryableChecker()._throttled_error_codes)
_TRANSIENT = TransientRetryableChecker()
TRANSIENT_CODES = frozenset(_TRANSIENT._transient_error_codes)
TRANSIENT_STATUS = frozenset(_TRANSIENT._transient_status_codes) | {429, 509}
TRANSIENT_EXCEPTIONS: tuple[type[BaseException], ...] = (
    *_TRANSIENT._transient_exception_cls, ConnectionError, TimeoutError,
)
# SageMaker Pipelines' SageMaker.RESOURCE_LIMIT: a quota that frees up when other jobs end
SAGEMAKER_TRANSIENT_CODES = frozenset({"ResourceLimitExceeded", "InternalFailure",
                                       "ServiceUnavailable", "InternalServerError"})
# FailureReason prefixes of a Failed job (SageMaker.JOB_INTERNAL_ERROR, SageMaker.CAPACITY_ERROR)
TRANSIENT_JOB_REASONS = ("InternalServerError", "CapacityError")
DETERMINISTIC_JOB_REASONS = ("AlgorithmError", "ClientError")
# our own "the input is wrong" errors, by dotted name so this module imports none of them
DETERMINISTIC_CLASSES = frozenset({
    "sagemaker_mlops.deploy.DeployError",
    "sagemaker_mlops.integrity.IntegrityError",
    "sagemaker_mlops.registry.RegistryError",
    "airflow.sdk.exceptions.ParamValidationError",
})


class Fault(enum.Enum):
    TRANSIENT = "transient"
    DETERMINISTIC = "deterministic"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Classification:
    fault: Fault
    why: str


class SageMakerJobFailed(AirflowException):
    """A SageMaker job ended Failed or Stopped; retried when its FailureReason is transient."""

    def __init__(self, kind: str, name: str, status: str, reason: str,
                 exit_message: str | None = None) -> None:
        # a Processing script's own one line is its ExitMessage; FailureReason is then generic
        told = f"{exit_message} (FailureReason: {reason})" if exit_message else reason
        super().__init__(f"SageMaker {kind.lower()} job {name} {status.lower()}: {told}")
        self.kind, self.job_name, self.status, self.failure_reason = kind, name, status, reason


class SageMakerJobFailedForGood(SageMakerJobFailed, AirflowFailException):
    """A job failure that would repeat on retry (the script or the request is wrong)."""


def job_fault(status: str, reason: str | None) -> Fault:
    """The fault of a job that ended ``status`` (Failed/Stopped) with FailureReason ``reason``."""
    text = (reason or "").strip()
    if status == "Failed" and text.startswith(TRANSIENT_JOB_REASONS):
        return Fault.TRANSIENT
    if status == "Failed" and text.startswith(DETERMINISTIC_JOB_REASONS):
        return Fault.DETERMINISTIC
    if status == "Stopped":
        # stopped by a person or by MaxRuntimeInSeconds: a new job would meet the same end
        return Fault.DETERMINISTIC
    return Fault.UNKNOWN


def job_failure(kind: str, description: Mapping[str, Any]) -> SageMakerJobFailed:
    """The exception for a job that ended unsuccessfully, from its Describe*Job response."""
    status = description.get(f"{kind}JobStatus", "Failed")
    name = description.get(f"{kind}JobName", "?")
    reason = description.get("FailureReason") or f"(no FailureReason; the job is {status})"
    exit_message = " ".join((description.get("ExitMessage") or "").split()) or None
    if exit_message and exit_message in reason:
        exit_message = None
    failed = (SageMakerJobFailedForGood if job_fault(status, reason) is Fault.DETERMINISTIC
              else SageMakerJobFailed)
    return failed(kind, name, status, reason, exit_message)


def _client_error(exc: ClientError) -> Classification:
    error = exc.response.get("Error", {})
    code = error.get("Code", "")
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if code in THROTTLING_CODES:
        return Classification(Fault.TRANSIENT, f"AWS throttled the request ({code})")
    if code in TRANSIENT_CODES or code in SAGEMAKER_TRANSIENT_CODES:
        return Classification(Fault.TRANSIENT, f"AWS transient error ({code})")
    if status in TRANSIENT_STATUS:
        return Classification(Fault.TRANSIENT, f"AWS answered HTTP {status} ({code})")
    return Classification(Fault.DETERMINISTIC, f"AWS refused the request ({code or status})")


def classify(exc: BaseException) -> Classification:
    """Transient, deterministic or unknown, looking through ``raise ... from`` causes too."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        found = _classify_one(current)
        if found is not None:
            return found
        current = current.__cause__ or current.__context__
    return Classification(Fault.UNKNOWN, f"unclassified {type(exc).__name__}")


def _classify_one(exc: BaseException) -> Classification | None:
    names = {f"{c.__module__}.{c.__qualname__}" for c in type(exc).__mro__}
    if isinstance(exc, SageMakerJobFailed):
        fault = job_fault(exc.status, exc.failure_reason)
        return None if fault is Fault.UNKNOWN else Classification(fault, f"job {exc.status}: "
                                                                         f"{exc.failure_reason}")
    if isinstance(exc, AirflowFailException):
        return Classification(Fault.DETERMINISTIC, "the task asked not to be retried")
    if isinstance(exc, ClientError):
        return _client_error(exc)
    if isinstance(exc, (NoCredentialsError, ParamValidationError)):
        return Classification(Fault.DETERMINISTIC, f"invalid AWS request ({type(exc).__name__})")
    if isinstance(exc, TRANSIENT_EXCEPTIONS):
        return Classification(Fault.TRANSIENT, f"connection error ({type(exc).__name__})")
    if isinstance(exc, BotoCoreError):
        return None
    if names & DETERMINISTIC_CLASSES or isinstance(exc, (ValueError, KeyError, TypeError)):
        return Classification(Fault.DETERMINISTIC, f"invalid input ({type(exc).__name__})")
    return None


if RetryPolicy is not None:

    class PipelineRetryPolicy(RetryPolicy):
        """``classify`` as an Airflow retry policy (Airflow 3.3+).

        Retry policies are never serialized (Airflow stores only ``has_retry_policy``); the worker
        uses the one from the parsed DAG file, so this class only has to be importable there.
        """

        def evaluate(self, exception: BaseException, try_number: int, max_tries: int,
                     context: Any = None) -> Any:
            found = classify(exception)
            if found.fault is Fault.TRANSIENT:
                return RetryDecision.retry(reason=f"transient: {found.why}")
            if found.fault is Fault.DETERMINISTIC:
                return RetryDecision.fail(reason=f"deterministic, not retried: {found.why}")
            if try_number >= UNKNOWN_TRIES:
                return RetryDecision.fail(reason=f"{found.why} failed {try_number} times")
            return RetryDecision.default()

        def serialize(self) -> dict[str, Any]:
            return {"__type": type(self).__qualname__}

        @classmethod
        def deserialize(cls, data: dict[str, Any]) -> PipelineRetryPolicy:
            return cls()


def retry_args(first_delay_seconds: float) -> dict[str, Any]:
    """``default_args`` of every task: backoff retries, and the policy where Airflow has one."""
    args: dict[str, Any] = {
        "retries": RETRIES,
        "retry_delay": timedelta(seconds=first_delay_seconds),
        "retry_exponential_backoff": BACKOFF,
        "max_retry_delay": MAX_RETRY_DELAY,
    }
    if RetryPolicy is not None:
        args["retry_policy"] = PipelineRetryPolicy()
    return args
