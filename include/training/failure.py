"""The SageMaker failure contract: exit non-zero and leave one actionable line for the console.

SageMaker shows the first 1 KB of ``/opt/ml/output/failure`` (Training) as the job's FailureReason
and of ``/opt/ml/output/message`` (Processing) as its ExitMessage; without it a person only sees a
stack-trace tail. Scripts raise :class:`InputError` for problems with their input (what a person can
fix) and :func:`run_main` turns any exception into that one line.

This module imports only the standard library, so a script imports it first and calls
:func:`report_startup_errors`: an import that fails after that (a package the image lacks, a broken
install) still leaves the file, because a Processing job installs nothing.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from sm_env import opt_ml_dir

FAILURE_FILES = {"training": "failure", "processing": "message"}
MAX_BYTES = 1024  # SageMaker keeps the first 1 KB


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
    one_line = " ".join(str(reason).split()).encode("utf-8")[: MAX_BYTES - 1]
    path.write_bytes(one_line.decode("utf-8", errors="ignore").encode("utf-8") + b"\n")
    return path


def report_startup_errors(module_name: str, job_kind: str) -> None:
    """When ``module_name`` is ``__main__``, an uncaught error (e.g. a failed import) leaves the file.

    Errors inside ``main`` are handled by :func:`run_main`; this covers everything before it.
    """
    if module_name != "__main__":
        return
    previous = sys.excepthook

    def hook(kind: type[BaseException], error: BaseException, tb: TracebackType | None) -> None:
        script = Path(sys.argv[0]).name or "the script"
        hint = (" (a package the image lacks? Processing jobs install nothing)"
                if isinstance(error, ImportError) else "")
        write_failure(job_kind, f"{script} could not start: {kind.__name__}: {error}{hint}")
        previous(kind, error, tb)

    sys.excepthook = hook


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
