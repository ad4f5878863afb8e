"""Resumable SageMaker Processing and Training tasks: a retried or cleared task finds its own job.

The provider's operators rename a job that already exists with a timestamp suffix, so a task
retried after its worker died starts a second job while the first still runs (apache/airflow
#51005, #58936). Here a task of one run looks at the jobs it already started before it starts
one, and attaches to, reuses or follows the latest (the table is in ``job_attempts``).
Airflow 3.3's ``ResumableJobMixin`` keeps the job name in the task state store (one Describe on
a retry); the name probing also covers the gap between Create and that write, and Airflow 3.2
(MWAA), which has neither. A job that ends Failed/Stopped raises ``retry.SageMakerJobFailed``
(``...ForGood`` when retrying cannot help, see ``retry.py``).
"""
from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from typing import Any

from airflow.providers.amazon.aws.hooks.sagemaker import LogState
from airflow.providers.amazon.aws.operators.sagemaker import (
    SageMakerProcessingOperator,
    SageMakerTrainingOperator,
    serialize,
)
from airflow.providers.amazon.aws.triggers.sagemaker import SageMakerTrigger
from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException
from airflow.triggers.base import TriggerEvent
from botocore.exceptions import ClientError

from sagemaker_mlops.job_attempts import (
    ACTIVE,
    MAX_JOBS_PER_TASK,
    Action,
    PreviousJob,
    attempt_name,
    decide,
    same_request,
)
from sagemaker_mlops.retry import job_failure

try:  # Airflow 3.3+ (task state store); some common-compat releases carry a stand-in below it
    from airflow.sdk import ResumableJobMixin
except ImportError:
    try:
        from airflow.providers.common.compat.sdk import ResumableJobMixin
    except ImportError:

        class ResumableJobMixin:  # type: ignore[no-redef]
            """Below Airflow 3.3 there is no task state store: resume by job name only."""

            durable = True

            def execute_resumable(self, context: Any) -> Any:
                name = self.submit_job(context)  # type: ignore[attr-defined]
                return self.poll_until_complete(name, context)  # type: ignore[attr-defined]


def _not_found(error: ClientError) -> bool:
    # what the provider's own existence check relies on (SageMakerBaseOperator)
    return error.response.get("Error", {}).get("Code") == "ValidationException"


class _ResumableJob(ResumableJobMixin):
    """The resumable behaviour shared by the Processing and Training operators below."""

    kind: str = ""
    external_id_key = "sagemaker_job_name"

    config: dict
    check_interval: float
    deferrable: bool
    max_attempts: int
    max_ingestion_time: int | None
    action_if_job_exists: str

    @property
    def _name_key(self) -> str:
        return f"{self.kind}JobName"

    def _describe(self, name: str) -> dict[str, Any]:
        return getattr(self.hook, f"describe_{self.kind.lower()}_job")(name)

    def _request(self) -> dict[str, Any]:
        return {k: v for k, v in self.config.items() if k not in (self._name_key, "Tags")}

    def execute(self, context: Any) -> Any:
        if not getattr(self, "check_if_job_exists", True):
            raise AirflowFailException(
                f"task {self.task_id}: a resumable {self.kind} task always looks for its run's "
                "job; check_if_job_exists=False is not supported")
        self.preprocess_config()
        self._finished: dict[str, dict[str, Any]] = {}
        return self.execute_resumable(context)

    # -- ResumableJobMixin ------------------------------------------------------------------
    def get_job_status(self, external_id: Any, context: Any) -> str:
        try:
            described = self._describe(str(external_id))
        except ClientError as error:
            if _not_found(error):
                return "NotFound"
            raise
        status = described[f"{self.kind}JobStatus"]
        return status if same_request(self._request(), described) else f"RequestChanged:{status}"

    def is_job_active(self, status: str) -> bool:
        return status in ACTIVE

    def is_job_succeeded(self, status: str) -> bool:
        return status == "Completed"

    def submit_job(self, context: Any) -> str:
        base = self.config[self._name_key]
        previous = self.previous_jobs(base)
        decision = decide(base, previous)
        self.log.info("%s job of task %s: %s", self.kind, self.task_id, decision.describe())
        if decision.action is not Action.START:
            return decision.name
        if previous and self.action_if_job_exists == "fail":
            raise AirflowFailException(
                f"{self.kind} job {previous[-1].name} exists and action_if_job_exists='fail': "
                f"not starting {decision.name}")
        if decision.wait_for:
            self._wait(decision.wait_for)
        self._create({**self.config, self._name_key: decision.name})
        return decision.name

    def poll_until_complete(self, external_id: Any, context: Any) -> Any:
        name = str(external_id)
        described = self._describe(name)
        if described[f"{self.kind}JobStatus"] in ACTIVE:
            if self.deferrable:
                self.defer(trigger=_trigger(self, name), method_name="execute_complete",
                           timeout=self.execution_timeout)
            described = self._wait(name)
        return self._finish(described)

    def get_job_result(self, external_id: Any, context: Any) -> Any:
        name = str(external_id)
        if name in getattr(self, "_finished", {}):  # poll_until_complete just finished it
            return self._finished[name]
        return self._finish(self._describe(name))

    # -- helpers ----------------------------------------------------------------------------
    def previous_jobs(self, base: str) -> list[PreviousJob]:
        """This task's jobs of this run, found by name (``base``, ``base-r2``, ...)."""
        found = []
        request = self._request()
        for number in range(1, MAX_JOBS_PER_TASK + 1):
            name = attempt_name(base, number)
            try:
                described = self._describe(name)
            except ClientError as error:
                if _not_found(error):
                    break
                raise
            found.append(PreviousJob(name, described[f"{self.kind}JobStatus"],
                                     same_request(request, described)))
        else:
            raise AirflowFailException(
                f"task {self.task_id} already started {MAX_JOBS_PER_TASK} {self.kind} jobs in "
                f"this run ({base} ...); not starting another")
        return found

    def _wait(self, name: str) -> dict[str, Any]:
        """The job's description once it is no longer running. Not the hook's ``check_status``:
        that raises a bare AirflowException on Failed (and on a Describe ClientError), losing the
        FailureReason ``retry.job_failure`` classifies."""
        started = time.monotonic()
        while True:
            described = self._describe(name)
            if described[f"{self.kind}JobStatus"] not in ACTIVE:
                return described
            if self.max_ingestion_time and time.monotonic() - started > self.max_ingestion_time:
                raise AirflowException(f"{self.kind} job {name} still running after "
                                       f"{self.max_ingestion_time} s")
            time.sleep(self.check_interval)

    def _finish(self, described: dict[str, Any]) -> dict[str, Any]:
        status = described[f"{self.kind}JobStatus"]
        name = described[self._name_key]
        if status in ACTIVE:
            raise AirflowException(f"{self.kind} job {name} is still {status} after the wait; "
                                   "a retry attaches to it again")
        if status != "Completed":
            raise job_failure(self.kind, described)
        self.log.info("%s job %s completed.", self.kind, name)
        result = self._result(described)
        self._finished = {name: result}
        return result

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> Any:
        name = (event or {}).get("job_name") or (event or {}).get("value")
        if not name:
            raise AirflowException(f"the {self.kind} job trigger sent no job name: {event}")
        return self._finish(self._describe(name))

    def _create(self, request: dict[str, Any]) -> None:
        raise NotImplementedError

    def _result(self, described: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError


class FailureEventTrigger(SageMakerTrigger):
    """The provider's trigger, but a job that fails still sends an event to the task.

    Provider 9.25 (MWAA) raises in the triggerer when the job fails, so the task fails with the
    trigger's error and never sees the job's FailureReason: a deterministic failure would be
    retried. Newer providers send a ``failed`` event themselves and use SageMakerTrigger as is.
    """

    def serialize(self) -> tuple[str, dict[str, Any]]:
        _, kwargs = super().serialize()
        return f"{__name__}.{type(self).__qualname__}", kwargs

    async def run(self) -> Any:
        try:
            async for event in super().run():
                yield event
        except AirflowException as error:  # the job failed, or the wait ran out of attempts
            yield TriggerEvent({"status": "failed", "job_name": self.job_name, "message": str(error)})


def _trigger(operator: Any, name: str) -> SageMakerTrigger:
    """The provider's trigger for ``name``, with the keyword names of the installed provider."""
    params = inspect.signature(SageMakerTrigger.__init__).parameters
    if "waiter_delay" in params:
        return SageMakerTrigger(
            job_name=name, job_type=operator.kind, waiter_delay=operator.check_interval,
            waiter_max_attempts=operator.max_attempts, aws_conn_id=operator.aws_conn_id,
            region_name=operator.region_name, verify=operator.verify,
            botocore_config=operator.botocore_config)
    return FailureEventTrigger(job_name=name, job_type=operator.kind,
                               poke_interval=operator.check_interval,
                               max_attempts=operator.max_attempts, aws_conn_id=operator.aws_conn_id)


class ResumableProcessingOperator(_ResumableJob, SageMakerProcessingOperator):
    """``SageMakerProcessingOperator`` that attaches to / reuses its run's job (see module doc)."""

    kind = "Processing"

    def _create(self, request: dict[str, Any]) -> None:
        self.hook.create_processing_job(request, wait_for_completion=False)

    def _result(self, described: dict[str, Any]) -> dict[str, Any]:
        self.serialized_job = serialize(described)
        result: dict[str, Any] = {"Processing": self.serialized_job}
        read_outputs: Callable[[], dict] | None = getattr(self, "_read_output_files", None)
        if read_outputs is not None:  # provider 9.3x: output_files_to_xcom
            result.update(read_outputs())
        return result


class ResumableTrainingOperator(_ResumableJob, SageMakerTrainingOperator):
    """``SageMakerTrainingOperator`` that attaches to / reuses its run's job (see module doc).

    ``check_if_job_exists`` must stay True: looking for the run's job is what makes it resumable.
    With ``print_log`` the job's CloudWatch log is copied into the task log when it ends.
    """

    kind = "Training"

    def _create(self, request: dict[str, Any]) -> None:
        self.hook.create_training_job(request, wait_for_completion=False, print_log=False)

    def _result(self, described: dict[str, Any]) -> dict[str, Any]:
        self.serialized_training_data = serialize(described)
        return {"Training": self.serialized_training_data}

    def _finish(self, described: dict[str, Any]) -> dict[str, Any]:
        if self.print_log and described["TrainingJobStatus"] not in ACTIVE:
            try:
                self.hook.describe_training_job_with_log(
                    described["TrainingJobName"], {}, [],
                    described["ResourceConfig"]["InstanceCount"], LogState.COMPLETE,
                    described, time.monotonic())
            except ClientError as error:  # the log is a convenience; the result stands
                self.log.warning("could not read the training job's log: %s", error)
        return super()._finish(described)
