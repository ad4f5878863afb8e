"""Plumbing shared by training and processing jobs: clients, sandboxes, logs, metrics, result."""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from .. import s3util
from .context import JobContext, JobFailure, JobResult
from .logs import LogStreamer
from .metrics import MetricCollector
from .process import ProcessSpec, RunOutcome, instance_cpus, run_processes
from .sandbox import Sandbox, create_sandboxes, remove_job_dir

_PASSTHROUGH_ENV = ("HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ", "USER", "SYSTEMROOT")


class JobRun:
    """One job's resources; ``close()`` releases them (and the sandbox unless kept)."""

    def __init__(
        self,
        job_name: str,
        instance_count: int,
        ctx: JobContext,
        log_group: str,
        metric_definitions: list[dict] | None = None,
    ) -> None:
        self.job_name, self.ctx, self.log_group = job_name, ctx, log_group
        if instance_count < 1:
            raise JobFailure(f"ClientError: InstanceCount must be at least 1, got {instance_count}")
        self.started_at = datetime.now(UTC)
        self.s3 = s3util.aws_client("s3", ctx.endpoint_url, ctx.region)
        self.logs = s3util.aws_client("logs", ctx.endpoint_url, ctx.region)
        self.metrics = MetricCollector(metric_definitions)
        self.boxes: list[Sandbox] = create_sandboxes(Path(ctx.work_dir), job_name, instance_count)
        self.cpus = instance_cpus(instance_count)  # per box, as separate instances own their CPUs
        self.outcome: RunOutcome | None = None

    def num_cpus(self, box: Sandbox) -> int:
        """The CPUs the instance ``box`` runs on (what SM_NUM_CPUS reports)."""
        cpus = self.cpus[self.boxes.index(box)]
        return len(cpus) if cpus is not None else os.cpu_count() or 1

    def base_env(self, box: Sandbox, environment: dict[str, str] | None) -> dict[str, str]:
        """A container-like environment: a few host basics, AWS pointing at the emulator,
        then the request's Environment, then OPT_ML_DIR (which must win)."""
        env = {k: os.environ[k] for k in _PASSTHROUGH_ENV if k in os.environ}
        env["PATH"] = os.pathsep.join(
            [str(Path(sys.executable).parent), os.environ.get("PATH", "/usr/bin:/bin")]
        )
        env.update(
            PYTHONUNBUFFERED="1",
            PYTHONDONTWRITEBYTECODE="1",
            AWS_ENDPOINT_URL=self.ctx.endpoint_url,
            AWS_DEFAULT_REGION=self.ctx.region,
            AWS_REGION=self.ctx.region,
            AWS_ACCESS_KEY_ID="test",
            AWS_SECRET_ACCESS_KEY="test",
        )
        env.update({k: str(v) for k, v in (environment or {}).items()})
        env["OPT_ML_DIR"] = str(box.opt_ml)
        return env

    def execute(self, commands: list[tuple[list[str], Path, dict[str, str]]]) -> RunOutcome:
        """Run one command per sandbox, each streaming to ``<job>/<host>-<epoch>``."""
        epoch = int(time.time())
        streamers = [
            LogStreamer(self.logs, self.log_group, f"{self.job_name}/{box.host}-{epoch}")
            for box in self.boxes
        ]

        def sink_for(streamer: LogStreamer):
            def sink(line: str) -> None:
                streamer.write(line)
                self.metrics.feed(line)

            return sink

        specs = [
            ProcessSpec(argv, cwd, env, sink_for(streamer), cpus)
            for (argv, cwd, env), streamer, cpus in zip(commands, streamers, self.cpus, strict=True)
        ]
        try:
            self.outcome = run_processes(specs, self.ctx.stop_event)
        finally:
            for streamer in streamers:
                streamer.close()
        return self.outcome

    def result(
        self,
        status: str,
        failure_reason: str | None = None,
        exit_message: str | None = None,
        model_artifact: str | None = None,
    ) -> JobResult:
        return JobResult(
            status=status,
            failure_reason=failure_reason,
            exit_message=exit_message,
            final_metrics=self.metrics.final(),
            model_artifact=model_artifact,
            script_seconds=self.outcome.script_seconds if self.outcome else 0.0,
            started_at=self.started_at,
            ended_at=datetime.now(UTC),
        )

    def close(self) -> None:
        if not self.ctx.keep_sandbox:
            remove_job_dir(Path(self.ctx.work_dir), self.job_name)


def first_failure(outcome: RunOutcome) -> int | None:
    """Index of the instance that failed first (its siblings were then stopped), if any."""
    failed = [i for i, proc in enumerate(outcome.processes) if proc.exit_code != 0]
    return min(failed, key=lambda i: outcome.processes[i].ended) if failed else None
