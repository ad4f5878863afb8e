"""The SageMaker failure contract: exit non-zero and leave one actionable line for the console.

SageMaker shows the first line(s) of ``/opt/ml/output/failure`` (Training) or
``/opt/ml/output/message`` (Processing) as the job's FailureReason / ExitMessage; without it a
person only sees a stack-trace tail. Scripts raise :class:`InputError` for problems with their input
(what a person can fix) and :func:`run_main` turns any exception into that one line.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

from sm_env import opt_ml_dir

FAILURE_FILES = {"training": "failure", "processing": "message"}


class InputError(Exception):
    """A problem with the script's input (data, model artifact, argument) that a person can fix."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a bad argument as an :class:`InputError` (so it reaches the failure file)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise InputError(f"bad arguments: {message} (see --help)")


def failure_path(job_kind: str) -> Path:
    return opt_ml_dir() / "output" / FAILURE_FILES[job_kind]


def write_failure(job_kind: str, reason: str) -> Path:
    path = failure_path(job_kind)
    path.parent.mkdir(parents=True, exist_ok=True)
    one_line = " ".join(str(reason).split())[:1000]
    path.write_text(one_line + "\n")
    return path


def run_main(main: Callable[[list[str] | None], None], job_kind: str,
             argv: list[str] | None = None) -> int:
    """Run ``main``; on error write the failure file, print the reason and return exit code 1."""
    try:
        main(argv)
    except InputError as exc:
        reason = str(exc)
    except SystemExit:
        raise  # argparse errors and --help keep their own exit codes
    except Exception as exc:  # noqa: BLE001 - the contract is "never die without a reason"
        traceback.print_exc()
        reason = f"internal error: {type(exc).__name__}: {exc}"
    else:
        return 0
    write_failure(job_kind, reason)
    print(f"[ERROR] {reason}", file=sys.stderr)
    return 1
