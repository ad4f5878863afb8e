"""The gate's verdict: the document ``verdict.json`` holds, and its text in logs, alerts and notes.

One rendering (``render_table``, ``summary_line``, ``format_number``) shared by the
``quality_gate`` log, the alert e-mail, the approval page and the run note, so they never
disagree about a number.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

VERDICT_SCHEMA_VERSION = "1.0"


@dataclass
class Check:
    metric: str
    value: float | None
    op: str
    threshold: float
    passed: bool
    champion_value: float | None = None
    delta: float | None = None
    reason: str = ""


@dataclass
class Verdict:
    passed: bool
    decision_basis: str
    problem_type: str
    primary_metric: str
    checks: list[Check]
    reasons: list[str]
    champion: dict[str, Any] | None = None
    schema_version: str = VERDICT_SCHEMA_VERSION
    notes: list[str] = field(default_factory=list)

    @property
    def failed_checks(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verdict:
        values = dict(data)
        values["checks"] = [Check(**c) for c in values.get("checks", [])]
        return cls(**values)


def format_number(value: float | None, signed: bool = False) -> str:
    """Four decimals; from 1000 on one decimal with thousands separators, so tables stay readable."""
    if value is None:
        return "missing"
    if not math.isfinite(value):
        return str(value)
    sign = "+" if signed else ""
    if abs(value) >= 1000:
        return f"{value:{sign},.1f}"
    return f"{value:{sign}.4f}"


def _required(check: Check) -> str:
    if check.metric == "load_check":
        return "loads and predicts"
    return f"{check.op} {format_number(check.threshold)}"


def _shown_value(check: Check) -> str:
    if check.metric == "load_check":
        return "ok" if check.passed else "failed"
    value = format_number(check.value, signed=check.champion_value is not None)
    if check.champion_value is not None:
        value += f" (champion {format_number(check.champion_value)})"
    return value


def render_table(verdict: Verdict) -> str:
    """The verdict as the table ``Metric | Value | Required threshold | Conclusion``."""
    header = ("Metric", "Value", "Required threshold", "Conclusion")
    rows = [
        (c.metric, _shown_value(c), _required(c), "PASS" if c.passed else "FAIL")
        for c in verdict.checks
    ]
    return _table(header, rows)


def _table(header: tuple[str, ...], rows: Iterable[tuple[str, ...]]) -> str:
    rows = list(rows)
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        return " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    separator = "-|-".join("-" * w for w in widths)
    return "\n".join([line(header), separator, *(line(r) for r in rows)])


def summary_line(verdict: Verdict) -> str:
    """One line for task logs, the run note and the registry description."""
    outcome = "PASSED" if verdict.passed else "FAILED"
    basis = "point estimates" if verdict.decision_basis == "point" else "95% interval bounds"
    failed = len(verdict.failed_checks)
    return (
        f"Quality gate {outcome} on {basis}: {len(verdict.checks) - failed}/"
        f"{len(verdict.checks)} checks passed"
    )
