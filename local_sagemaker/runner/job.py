"""Plumbing shared by training and processing jobs: clients, sandboxes, logs, metrics, result."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from .. import s3util
from ..iam import EXECUTION_ACCESS_KEY
from ..images import ImageEnvironment
from .container import Container, aws_environ
from .context import JobContext, JobFailure, JobResult
from .logs import LogStreamer
from .metrics import MetricCollector
from .process import ProcessSpec, RunOutcome, instance_cpus, run_processes
from .sandbox import Sandbox, create_sandboxes, remove_job_dir


class JobRun:
    """One job's resources; ``close()`` releases them (and the sandbox unless kept)."""

    def __init__(
        self,
        job_name: str,
        instance_count: int,
        ctx: JobContext,
        log_group: str,
        image: ImageEnvironment,
        metric_definitions: list[dict] | None = None,
    ) -> None:
        self.job_name, self.ctx, self.log_group = job_name, ctx, log_group
        if instance_count < 1:
            raise JobFailure(f"ClientError: InstanceCount must be at least 1, got {instance_count}")
        self.started_at = datetime.now(UTC)
        # staging and logs are the execution role's doing on SageMaker
        self.s3 = s3util.aws_client("s3", ctx.endpoint_url, ctx.region, EXECUTION_ACCESS_KEY)
        self.logs = s3util.aws_client("logs", ctx.endpoint_url, ctx.region, EXECUTION_ACCESS_KEY)
        self.metrics = MetricCollector(metric_definitions)
        self.boxes: list[Sandbox] = create_sandboxes(Path(ctx.work_dir), job_name, instance_count)
        hosts = tuple(box.host for box in self.boxes)
        self.containers = [Container(image, box, hosts) for box in self.boxes]
        self.cpus = instance_cpus(instance_count)  # per box, as separate instances own their CPUs
        self.outcome: RunOutcome | None = None

    def environ(
        self, container: Container, request_env: dict | None, **platform: str
    ) -> dict[str, str]:
        """The container's environment: AWS pointing at the emulator plus ``platform``
        variables, under the image's ENV and the request's ``Environment``."""
        base = aws_environ(self.ctx.endpoint_url, self.ctx.region)
        base.update(platform)
        return container.environ(base, request_env)

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
