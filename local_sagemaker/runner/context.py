"""What the control plane hands the runner for one job, and what it gets back."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path


@dataclass
class JobContext:
    """Where and how one job runs; ``stop_event`` is how StopXxxJob / MaxRuntime reach it."""

    endpoint_url: str
    region: str
    work_dir: Path
    stop_event: threading.Event = field(default_factory=threading.Event)
    on_secondary_status: Callable[[str, str], None] = lambda status, message: None
    keep_sandbox: bool = False


@dataclass
class JobResult:
    """The terminal outcome of a job, in the terms DescribeXxxJob reports."""

    status: str  # "Completed" | "Failed" | "Stopped"
    failure_reason: str | None
    exit_message: str | None
    final_metrics: list[dict]
    model_artifact: str | None
    script_seconds: float
    started_at: datetime
    ended_at: datetime


class JobFailure(Exception):
    """A user-caused failure before or after the script (bad input, upload error): job Failed.

    The message is the FailureReason, worded as SageMaker words it.
    """
