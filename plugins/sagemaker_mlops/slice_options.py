"""Slice options of a run: the trigger form's "Slices" Params and their checks.

Which columns to slice the test rows by, and the gate's two optional slice rules
(``slice_gate.py``). Checked twice before any job starts: the Params against each other and the
target in ``validate_params``, and the columns against the raw data's header in ``stage_code``
(the first moment the data is looked at), so a typo never costs a preprocess or training job.
"""

from __future__ import annotations

import csv
import io
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

SLICE_DEFAULTS: dict[str, Any] = {
    "slice_columns": [], "slice_min_rows": 30, "slice_min_metric": None, "slice_max_regression": None,
}
HEADER_BYTES = 65536  # enough for the header line of any sane CSV, compressed or not


def slice_params(d: Mapping[str, Any], column_items: Mapping[str, Any]) -> dict[str, Any]:
    """The "Slices" section of the trigger form; both slice rules are off unless set."""
    from airflow.sdk import Param

    return {
        "slice_columns": Param(
            d["slice_columns"], type="array", items=dict(column_items), uniqueItems=True,
            title="Slice columns",
            description="Feature columns to report the primary metric per value of (numeric "
            "columns in quantile bins), for candidate and champion, in evaluation.json and the "
            "report, e.g. [\"ocean_proximity\"]. Empty: no slices.",
            section="Slices",
        ),
        "slice_min_rows": Param(
            d["slice_min_rows"], type="integer", minimum=1, title="Slice minimum rows",
            description="Slices with fewer test rows are reported and flagged small, not judged "
            "by the slice rules (default 30).",
            section="Slices",
        ),
        "slice_min_metric": Param(
            d["slice_min_metric"], type=["null", "number"], title="Slice minimum",
            description="Fail the gate when the worst slice's primary metric is below this "
            "(the verdict and the alert name the slice). Empty: off.",
            section="Slices",
        ),
        "slice_max_regression": Param(
            d["slice_max_regression"], type=["null", "number"], minimum=0, maximum=1,
            title="Slice max regression",
            description="Fail the gate when a slice's primary metric is worse than the "
            "champion's on the same slice by more than this (the verdict and the alert name the "
            "slice). Empty: off.",
            section="Slices",
        ),
    }


def slice_rules(params: Mapping[str, Any]) -> dict[str, Any]:
    """GatePolicy's slice options; ValueError for a rule without slice columns to judge."""
    rules = {"slice_min_metric": params.get("slice_min_metric"),
             "slice_max_regression": params.get("slice_max_regression")}
    set_rules = [name for name, value in rules.items() if value is not None]
    if set_rules and not params.get("slice_columns"):
        raise ValueError(f"{' and '.join(set_rules)} need slice_columns (the columns whose values "
                         "are the slices)")
    return {**rules, "slice_min_rows": params.get("slice_min_rows", SLICE_DEFAULTS["slice_min_rows"])}


def slice_columns(params: Mapping[str, Any], target: str) -> tuple[str, ...]:
    """The slice columns; ValueError naming one that cannot be a slice column.

    They must be features: the test split holds only the features and the target (the model's
    own one-hot encoding happens inside its Pipeline, so the raw values are there to group by).
    """
    columns = params.get("slice_columns") or []
    if not isinstance(columns, list | tuple) or not all(isinstance(c, str) and c for c in columns):
        raise ValueError(f"slice_columns must be a list of column names, got {columns!r}")
    if target in columns:
        raise ValueError(f"slice_columns lists the target column {target!r}; slice by a feature")
    dropped = sorted(set(columns) & set(params.get("drop_columns") or ()))
    if dropped:
        raise ValueError(f"slice column(s) {dropped} are in drop_columns; a slice column must be a "
                         "feature (it is read from the test split)")
    return tuple(columns)


def csv_header(head: bytes, key: str) -> list[str]:
    """Column names from the first bytes of a CSV or CSV.gz object (a prefix is enough)."""
    if key.endswith(".gz") or head[:2] == b"\x1f\x8b":
        head = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head)
    text = head.decode("utf-8-sig", errors="replace")
    first = text.splitlines()[0] if text else ""
    return [name.strip() for name in next(csv.reader(io.StringIO(first)), [])]


def missing_columns(columns: Sequence[str], header: Sequence[str], key: str) -> str | None:
    """One actionable line when a slice column is not in the raw data, else None."""
    missing = [c for c in columns if c not in header]
    if not missing:
        return None
    return (f"slice column(s) {missing} not found in the raw data ({key} has columns "
            f"{', '.join(header)}); fix slice_columns")
