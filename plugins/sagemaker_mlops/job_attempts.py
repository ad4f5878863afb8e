"""Which job a resumable SageMaker task uses: attach to it, reuse it, or start the next one.

Job names are deterministic per run (``naming.job_name``), and the n-th job of a task is
``<name>-r<n>``. The latest of them decides (``decide``):

====================================  ===============================================
latest job of this task               what the task does
====================================  ===============================================
none                                  start ``<name>``
InProgress/Stopping, same request     attach to it (wait for it, sync or deferred)
Completed, same request               reuse it: no new job
Failed or Stopped                     start ``<name>-r<n+1>``
any state, request changed            wait for it to end if live, then start the next
====================================  ===============================================

"Same request" means every field of the Create request (name aside) is echoed unchanged by
Describe, so one run never has two live jobs for one task. Pure functions, apart from the
operators (``sagemaker_jobs``), so the table is tested, and a task's job names are derived,
without Airflow.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sagemaker_mlops.naming import MAX_NAME_LENGTH

ACTIVE = frozenset({"InProgress", "Stopping"})
MAX_JOBS_PER_TASK = 20


class Action(enum.Enum):
    START = "start"
    ATTACH = "attach"
    REUSE = "reuse"


@dataclass(frozen=True)
class PreviousJob:
    name: str
    status: str
    same_request: bool


@dataclass(frozen=True)
class Decision:
    action: Action
    name: str
    wait_for: str | None = None  # a live job of a changed request, to outwait before starting

    def describe(self) -> str:
        text = {Action.START: "starting job", Action.ATTACH: "attaching to running job",
                Action.REUSE: "reusing completed job"}[self.action]
        return text + f" {self.name}" + (f" after {self.wait_for} ends" if self.wait_for else "")


def attempt_name(base: str, number: int) -> str:
    """Name of this task's ``number``-th job of the run: ``base``, then ``base-r2``, ..."""
    if number <= 1:
        return base
    suffix = f"-r{number}"
    return base[: MAX_NAME_LENGTH - len(suffix)].rstrip("-") + suffix


def decide(base: str, previous: Sequence[PreviousJob]) -> Decision:
    """What a task does given the jobs it already started in this run (oldest first)."""
    if not previous:
        return Decision(Action.START, attempt_name(base, 1))
    latest = previous[-1]
    following = attempt_name(base, len(previous) + 1)
    if not latest.same_request:
        return Decision(Action.START, following,
                        wait_for=latest.name if latest.status in ACTIVE else None)
    if latest.status in ACTIVE:
        return Decision(Action.ATTACH, latest.name)
    if latest.status == "Completed":
        return Decision(Action.REUSE, latest.name)
    return Decision(Action.START, following)


def same_request(request: Any, described: Any) -> bool:
    """True when every field of ``request`` is echoed unchanged in the Describe response."""
    if isinstance(request, Mapping):
        return isinstance(described, Mapping) and all(
            key in described and same_request(value, described[key])
            for key, value in request.items())
    if isinstance(request, list):
        return (isinstance(described, list) and len(request) == len(described)
                and all(same_request(a, b) for a, b in zip(request, described, strict=True)))
    return request == described
