"""Job lifecycle: a worker pool runs processing and training jobs through the runner.

The control plane owns what AWS shows about a job (status, timestamps,
SecondaryStatusTransitions, MaxRuntime enforcement); the runner (local_sagemaker.runner) owns
how the job executes and reports back through JobContext / JobResult.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from local_sagemaker.runner import JobContext, JobResult, run_processing_job, run_training_job
from local_sagemaker.runner.reasons import INTERNAL_ERROR
from local_sagemaker.runner.sandbox import kill_leftovers, remove_job_dir
from local_sagemaker.settings import Settings
from local_sagemaker.state import Store, now

log = logging.getLogger(__name__)

ACTIVE = ("InProgress", "Stopping")


@dataclass(frozen=True)
class JobKind:
    """What differs between processing and training jobs in AWS's API."""

    label: str          # "Processing" / "Training"
    table: str
    arn_type: str
    runner: Callable[[dict[str, Any], JobContext], JobResult]
    has_secondary: bool

    @property
    def name_key(self) -> str:
        return f"{self.label}JobName"

    @property
    def arn_key(self) -> str:
        return f"{self.label}JobArn"

    @property
    def status_key(self) -> str:
        return f"{self.label}JobStatus"

    @property
    def start_key(self) -> str:
        return f"{self.label}StartTime"

    @property
    def end_key(self) -> str:
        return f"{self.label}EndTime"


PROCESSING = JobKind("Processing", "processing_jobs", "processing-job", run_processing_job, False)
TRAINING = JobKind("Training", "training_jobs", "training-job", run_training_job, True)


def _epoch(value: datetime | float | None) -> float:
    if value is None:
        return now()
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    return float(value)


class JobManager:
    """Runs jobs in a thread pool and keeps their records as AWS would show them."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self._settings = settings
        self._store = store
        self._pool = ThreadPoolExecutor(settings.workers, thread_name_prefix="sagemaker-job")
        self._stop_events: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._closed = False

    # -- records -------------------------------------------------------------------------------
    def new_record(self, kind: JobKind, request: dict[str, Any]) -> dict[str, Any]:
        name = request[kind.name_key]
        created = now()
        record = {**request, kind.arn_key: self._settings.arn(kind.arn_type, name),
                  kind.status_key: "InProgress", "CreationTime": created, "LastModifiedTime": created}
        if kind.has_secondary:
            record["SecondaryStatus"] = "Starting"
            record["SecondaryStatusTransitions"] = [
                {"Status": "Starting", "StartTime": created,
                 "StatusMessage": "Launching requested ML instances"}]
        return record

    def recover(self) -> None:
        """Jobs a previous emulator process was running cannot be resumed: fail them as SageMaker
        fails a job whose instances were lost, with its internal-error reason (a retry can
        succeed). What they left behind goes: processes still running, and the sandbox with
        any partial output (nothing of it was uploaded, so nothing is taken as a result)."""
        jobs_dir = self._settings.work_dir / "jobs"
        for kind in (PROCESSING, TRAINING):
            for record in self._store.values(kind.table):
                if record[kind.status_key] not in ACTIVE:
                    continue
                name = record[kind.name_key]
                killed = kill_leftovers(jobs_dir, name)
                log.warning("%s job %s was running when the emulator stopped: Failed (%s); "
                            "%d leftover process(es) killed", kind.label, name, INTERNAL_ERROR, killed)
                if not self._settings.keep_sandboxes:
                    remove_job_dir(jobs_dir, name)
                self._finish(kind, name, "Failed", INTERNAL_ERROR, secondary="Failed")
                with self._store.edit(kind.table, name) as failed:
                    if failed is not None:
                        failed["_emulator"] = {**failed.get("_emulator", {}),
                                               "failed_by": "emulator restart"}

    # -- running -------------------------------------------------------------------------------
    def submit(self, kind: JobKind, request: dict[str, Any]) -> None:
        name = request[kind.name_key]
        event = threading.Event()
        with self._lock:
            if self._closed:
                raise RuntimeError("the emulator is shutting down")
            self._stop_events[f"{kind.table}/{name}"] = event
        self._pool.submit(self._run, kind, request, event)

    def stop(self, kind: JobKind, name: str) -> bool:
        """Ask a running job to stop; False when it is not running."""
        with self._store.edit(kind.table, name) as record:
            if record is None or record[kind.status_key] != "InProgress":
                return False
            record[kind.status_key] = "Stopping"
            record["LastModifiedTime"] = now()
        if kind.has_secondary:
            self._secondary(kind, name, "Stopping", "Stopping the training job")
        with self._lock:
            event = self._stop_events.get(f"{kind.table}/{name}")
        if event is not None:
            event.set()
        return True

    def _run(self, kind: JobKind, request: dict[str, Any], stop_event: threading.Event) -> None:
        name = request[kind.name_key]
        max_runtime = (request.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds")
        timed_out = threading.Event()
        timer = None
        if max_runtime:
            def expire() -> None:
                timed_out.set()
                stop_event.set()

            timer = threading.Timer(max_runtime, expire)
            timer.daemon = True
            timer.start()
        with self._store.edit(kind.table, name) as record:
            if record is not None:
                record[kind.start_key] = now()
        try:
            result = self._execute(kind, request, stop_event)
        finally:
            if timer is not None:
                timer.cancel()
            with self._lock:
                self._stop_events.pop(f"{kind.table}/{name}", None)
        if result is None:
            return
        status = result.status
        reason = result.failure_reason
        secondary = status
        if status == "Stopped" and timed_out.is_set():
            secondary = "MaxRuntimeExceeded"
            reason = (f"{kind.label} job reached its MaxRuntimeInSeconds of {max_runtime} s "
                      "and was stopped.")
        elif status == "Failed" and not reason:
            reason = "AlgorithmError: the job failed without a reason"
        self._finish(kind, name, status, reason, secondary=secondary, result=result)

    def _execute(self, kind: JobKind, request: dict[str, Any],
                 stop_event: threading.Event) -> JobResult | None:
        name = request[kind.name_key]
        ctx = JobContext(
            endpoint_url=self._settings.endpoint_url, region=self._settings.region,
            work_dir=self._settings.work_dir / "jobs", stop_event=stop_event,
            on_secondary_status=lambda status, message: self._secondary(kind, name, status, message),
            keep_sandbox=self._settings.keep_sandboxes)
        try:
            return kind.runner(request, ctx)
        except Exception as exc:  # a runner bug must not leave the job InProgress forever
            log.exception("%s job %s crashed in the emulator", kind.label, name)
            self._finish(kind, name, "Failed", f"{INTERNAL_ERROR} (emulator error: {exc})",
                         secondary="Failed")
            return None

    # -- status bookkeeping --------------------------------------------------------------------
    def _secondary(self, kind: JobKind, name: str, status: str, message: str) -> None:
        with self._store.edit(kind.table, name) as record:
            if record is None:
                return
            stamp = now()
            record["LastModifiedTime"] = stamp
            if not kind.has_secondary:
                return
            transitions = record.setdefault("SecondaryStatusTransitions", [])
            if transitions and transitions[-1]["Status"] == status:
                transitions[-1]["StatusMessage"] = message
            else:
                if transitions:
                    transitions[-1]["EndTime"] = stamp
                transitions.append({"Status": status, "StartTime": stamp, "StatusMessage": message})
            record["SecondaryStatus"] = status

    def _finish(self, kind: JobKind, name: str, status: str, reason: str | None, *,
                secondary: str, result: JobResult | None = None) -> None:
        messages = {"Completed": f"{kind.label} job completed",
                    "Failed": reason or f"{kind.label} job failed",
                    "Stopped": f"{kind.label} job stopped",
                    "MaxRuntimeExceeded": reason or "MaxRuntimeInSeconds reached"}
        if kind.has_secondary:
            self._secondary(kind, name, secondary, messages.get(secondary, secondary))
        with self._store.edit(kind.table, name) as record:
            if record is None:
                return
            stamp = now()
            record[kind.status_key] = status
            record["LastModifiedTime"] = stamp
            if reason and status in ("Failed", "Stopped"):
                record["FailureReason"] = reason[:1024]
            for transition in record.get("SecondaryStatusTransitions", []):
                transition.setdefault("EndTime", stamp)
            if result is None:
                record.setdefault(kind.start_key, record["CreationTime"])
                record[kind.end_key] = stamp
                return
            record[kind.start_key] = _epoch(result.started_at)
            record[kind.end_key] = _epoch(result.ended_at)
            record["_emulator"] = {"script_seconds": result.script_seconds,
                                   "runner_seconds": record[kind.end_key] - record[kind.start_key]}
            if kind is PROCESSING and result.exit_message:
                record["ExitMessage"] = result.exit_message[:1024]
            if kind is TRAINING:
                seconds = max(1, int(round(record[kind.end_key] - record[kind.start_key])))
                record["TrainingTimeInSeconds"] = seconds
                record["BillableTimeInSeconds"] = seconds * record["ResourceConfig"].get("InstanceCount", 1)
                record["FinalMetricDataList"] = [
                    {**m, "Timestamp": _epoch(m.get("Timestamp"))} for m in result.final_metrics or []]
                if result.model_artifact:
                    record["ModelArtifacts"] = {"S3ModelArtifacts": result.model_artifact}

    def shutdown(self) -> None:
        """Stop every running job (their processes die with them) and wait for the pool."""
        with self._lock:
            self._closed = True
            events = list(self._stop_events.values())
        for event in events:
            event.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
