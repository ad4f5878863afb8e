"""FailureReason / ExitMessage text, worded like SageMaker's (AWS caps both at 1024 chars)."""

from __future__ import annotations

from pathlib import Path

MAX_REASON = 1024
# SageMaker's FailureReason when the platform, not the job, failed (instances lost, an internal
# fault). AWS's API reference documents no wording; this is the text real jobs report, e.g.
# aws/sagemaker-python-sdk#2496 (processing), #70 (training), aws/sagemaker-spark#76. Clients
# treat it as transient: SageMaker's own advice in it is to try again.
INTERNAL_ERROR = "InternalServerError: We encountered an internal error. Please try again."


def read_reason_file(path: Path) -> str | None:
    """The stripped content of a failure / message file, or None when absent or empty."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip()
    except (FileNotFoundError, IsADirectoryError):
        return None
    return text or None


def clip_head(text: str, limit: int = MAX_REASON) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _clip_tail(lines: list[str], budget: int) -> str:
    """The last lines (where a traceback's exception is) that fit in ``budget`` chars."""
    kept: list[str] = []
    size = 0
    for line in reversed(lines):
        if size + len(line) + 1 > budget:
            if not kept:
                kept.append("..." + line[-(budget - 3) :])
            break
        kept.append(line)
        size += len(line) + 1
    return "\n".join(reversed(kept))


def algorithm_error(reason_file: str | None, tail: list[str], exit_code: int) -> str:
    """``AlgorithmError: <failure file or output tail>, exit code: N``."""
    suffix = f", exit code: {exit_code}"
    budget = MAX_REASON - len("AlgorithmError: ") - len(suffix)
    body = clip_head(reason_file, budget) if reason_file else _clip_tail(tail, budget)
    return f"AlgorithmError: {body or 'the process exited without output'}{suffix}"
