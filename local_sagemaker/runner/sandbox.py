"""Per-instance sandboxes standing in for a container's /opt/ml."""

from __future__ import annotations

import json
import os
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path

from ..isolation import CONTAINER_OPT_ML, remap_opt_ml
from .context import JobFailure


@dataclass(frozen=True)
class Sandbox:
    """One instance (host ``algo-<i>``) of a job: ``<root>/opt/ml`` is its /opt/ml."""

    root: Path
    host: str

    @property
    def opt_ml(self) -> Path:
        return self.root / "opt" / "ml"

    def remap(self, value: str) -> str:
        """Rewrite ``/opt/ml`` at the start of a value (or after ``=``, ``:``, ``,``) into the sandbox."""
        return remap_opt_ml(value, self.opt_ml)

    def container_path(self, path: str, must_start_with: str, what: str) -> Path:
        """Sandbox location of a container path such as a ProcessingInput's LocalPath."""
        clean = "/" + path.strip("/")
        if not (clean == must_start_with or clean.startswith(must_start_with + "/")):
            raise JobFailure(
                f"ClientError: {what} {path!r} must be an absolute path under {must_start_with}/"
            )
        return self.opt_ml / clean[len(CONTAINER_OPT_ML) + 1 :]


def create_sandboxes(work_dir: Path, job_name: str, count: int) -> list[Sandbox]:
    """Fresh sandboxes ``work_dir/<job>/instance-<i>`` for ``count`` hosts."""
    job_dir = Path(work_dir) / job_name
    if job_dir.exists():
        shutil.rmtree(job_dir)
    boxes = [Sandbox(job_dir / f"instance-{i}", f"algo-{i}") for i in range(1, count + 1)]
    for box in boxes:
        box.opt_ml.mkdir(parents=True)
    return boxes


def remove_job_dir(work_dir: Path, job_name: str) -> None:
    shutil.rmtree(Path(work_dir) / job_name, ignore_errors=True)


def kill_leftovers(work_dir: Path, job_name: str) -> int:
    """SIGKILL the processes a killed emulator left running for a job; returns how many.

    A job's user script outlives a ``SIGKILL``ed emulator (it is the toolkit's child, so
    bubblewrap's --die-with-parent does not reach it). Every process of an instance carries its
    sandbox in its environment (``PIP_TARGET=<sandbox>/site-packages``, inherited by children),
    which tells them apart from anything else on the machine without relying on reused PIDs.
    """
    marker = b"=" + str(Path(work_dir) / job_name).encode() + b"/"
    killed = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        if int(pid) == os.getpid():
            continue
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:  # gone, or another user's process
            continue
        if any(marker in entry for entry in environ.split(b"\0")):
            try:
                os.kill(int(pid), signal.SIGKILL)
                killed += 1
            except (ProcessLookupError, PermissionError):
                pass
    return killed


def resource_config(box: Sandbox, boxes: list[Sandbox]) -> dict:
    """The content of resourceconfig.json for one host."""
    return {
        "current_host": box.host,
        "current_instance_type": "local",
        "hosts": [b.host for b in boxes],
        "network_interface_name": "eth0",
    }


def write_json(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, default=str))
