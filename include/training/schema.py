"""Validating and cleaning a raw frame (all strings) into typed, usable rows.

One rule set for preprocess and train: a column that is numeric must parse as numbers (a few bad
cells drop their rows, a mostly-text column is a schema error), the target must be present and
finite, no feature may be entirely missing, and enough rows must remain. Every dropped row is
counted under a reason so the profile can say what was removed and why.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from failure import InputError

PROBLEM_TYPES = ("regression", "classification")
MAX_BAD_SHARE = 0.5  # above this share of unparsable cells a column is a schema error, not dirt


@dataclass
class Cleaned:
    frame: pd.DataFrame
    numeric: list[str]
    categorical: list[str]
    dropped: Counter = field(default_factory=Counter)

    @property
    def features(self) -> list[str]:
        return self.numeric + self.categorical


# Cells that mean "missing" (pandas' usual spellings), so "NaN" in a numeric column is imputed,
# not mistaken for junk; the CSV itself is read with keep_default_na=False to decide this here.
NA_TOKENS = frozenset({"", "nan", "NaN", "NAN", "-nan", "NA", "N/A", "n/a", "#N/A", "<NA>",
                       "null", "NULL", "None"})


def is_missing(values: pd.Series) -> pd.Series:
    """True where a cell is empty, NaN or one of :data:`NA_TOKENS`."""
    return values.isna() | values.astype(str).str.strip().isin(NA_TOKENS)


def _parse_numeric(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(parsed floats, mask of non-blank cells that did not parse)."""
    parsed = pd.to_numeric(values.astype(str).str.strip().where(~is_missing(values)), errors="coerce")
    return parsed.astype(np.float64), parsed.isna() & ~is_missing(values)


def normalize_labels(values: pd.Series) -> pd.Series:
    """Class labels as ints when every label is an integral number ("1", "1.0"), else stripped text."""
    text = values.astype(str).str.strip()
    numbers = pd.to_numeric(text, errors="coerce")
    if numbers.notna().all() and np.all(np.mod(numbers.to_numpy(dtype=np.float64), 1) == 0):
        return numbers.astype(np.int64)
    return text.astype(object)


def infer_categorical(frame: pd.DataFrame, target: str) -> list[str]:
    """Feature columns whose non-blank cells are mostly not numbers."""
    out = []
    for col in frame.columns:
        if col == target:
            continue
        _, bad = _parse_numeric(frame[col])
        filled = int((~is_missing(frame[col])).sum())
        if filled and bad.sum() > MAX_BAD_SHARE * filled:
            out.append(col)
    return out


def clean_frame(raw: pd.DataFrame, *, target: str, problem_type: str, source: str,
                categorical: list[str] | None = None, min_rows: int = 2) -> Cleaned:
    """Typed, usable rows of ``raw`` (string cells) or an :class:`InputError` saying what is wrong."""
    if problem_type not in PROBLEM_TYPES:
        raise InputError(f"problem type must be one of {PROBLEM_TYPES}, got {problem_type!r}")
    if target not in raw.columns:
        raise InputError(f"{source}: target column {target!r} not found; columns are {list(raw.columns)}")
    if categorical is None:
        categorical = infer_categorical(raw, target)
    missing = [c for c in categorical if c not in raw.columns]
    if missing:
        raise InputError(f"{source}: categorical column(s) {missing} not found")
    numeric = [c for c in raw.columns if c != target and c not in categorical]
    if not numeric and not categorical:
        raise InputError(f"{source}: no feature columns besides the target {target!r}")

    dropped: Counter = Counter()
    keep = pd.Series(True, index=raw.index)
    header_rows = (raw.astype(str).apply(lambda col: col.str.strip() == col.name)).all(axis=1)
    if header_rows.any():
        dropped["repeated_header_line"] += int(header_rows.sum())
        keep &= ~header_rows
    body = raw[keep]

    out = pd.DataFrame(index=body.index)
    for col in numeric + ([target] if problem_type == "regression" else []):
        parsed, bad = _parse_numeric(body[col])
        filled = int((~is_missing(body[col])).sum())
        if filled and bad.sum() > MAX_BAD_SHARE * filled:
            example = body.loc[bad, col].iloc[0]
            role = f"target column {target!r} (regression)" if col == target else f"column {col!r}"
            raise InputError(
                f"{source}: {role} must be numeric but {int(bad.sum())} of {filled} values are not "
                f"(e.g. {example!r})"
            )
        nonfinite = parsed.notna() & ~np.isfinite(parsed)
        for mask, reason in ((bad, f"non_numeric:{col}"), (nonfinite, f"non_finite:{col}")):
            hits = mask & keep.loc[body.index]
            if hits.any():
                dropped[reason] += int(hits.sum())
                keep.loc[hits[hits].index] = False
        out[col] = parsed
    for col in categorical:
        values = body[col].astype(str).str.strip()
        out[col] = values.where(~is_missing(body[col]), np.nan).astype(object)
    if problem_type == "classification":
        blank = is_missing(body[target])
        out[target] = body[target]
    else:
        blank = out[target].isna()
    hits = blank & keep.loc[body.index]
    if hits.any():
        dropped["missing_target"] += int(hits.sum())
        keep.loc[hits[hits].index] = False

    frame = out.loc[keep.loc[body.index]].reset_index(drop=True)
    if problem_type == "classification":
        frame[target] = normalize_labels(frame[target])
    frame = frame[numeric + categorical + [target]]
    for col in numeric + categorical:
        if len(frame) and frame[col].isna().all():
            raise InputError(f"{source}: feature column {col!r} has no values (every row is missing); "
                             "fix the export or drop the column")
    if len(frame) < min_rows:
        why = f"; dropped: {dict(dropped)}" if dropped else ""
        raise InputError(f"{source}: only {len(frame)} usable row(s), need at least {min_rows}{why}")
    if problem_type == "classification":
        classes = frame[target].unique()
        if len(classes) < 2:
            raise InputError(f"{source}: classification target {target!r} has a single class "
                             f"({classes[0]!r}); need at least 2 classes")
    return Cleaned(frame, numeric, list(categorical), dropped)
