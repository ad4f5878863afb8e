"""Validating and cleaning a raw frame (text cells, or numbers the reader parsed) into typed rows.

One rule set for preprocess and train: a column that is numeric must parse as numbers (a few bad
cells drop their rows, a mostly-text column is a schema error), the target must be present and
finite, no feature may be entirely missing, and enough rows must remain. Every dropped row is
counted under a reason so the profile can say what was removed and why.

Each cell is looked at once per rule, column by column with numpy masks: the text rules (strip, NA
spellings) only run on the cells the number parser could not read, because on millions of rows
string handling per cell is what costs. A column the CSV reader already parsed as numbers
(``csv_io.read_typed``) is taken as it is.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from csv_io import is_number_column
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


@dataclass(frozen=True)
class ParsedColumn:
    """One column parsed once: floats (NaN where missing or bad) and the two masks."""

    values: np.ndarray
    missing: np.ndarray  # empty, NaN or an NA spelling
    bad: np.ndarray  # not missing, yet not a number

    @property
    def filled(self) -> int:
        return int(len(self.missing) - self.missing.sum())


def parse_numeric(values: pd.Series) -> ParsedColumn:
    """Cells as floats, with which ones are missing and which are not numbers.

    Text is parsed as it stands first (the parser skips surrounding whitespace and never reads an
    NA spelling as a number), then only the cells that gave NaN get the exact rules: strip, compare
    with :data:`NA_TOKENS`, parse the stripped text.
    """
    if is_number_column(values):
        parsed = values.to_numpy(dtype=np.float64, na_value=np.nan)
        missing = np.isnan(parsed)
        return ParsedColumn(parsed, missing, np.zeros(len(parsed), dtype=bool))
    is_text = pd.api.types.is_string_dtype(values) or pd.api.types.is_object_dtype(values)
    text = values if is_text else values.astype(str)
    parsed = _to_float(text)
    missing = np.zeros(len(parsed), dtype=bool)
    bad = np.zeros(len(parsed), dtype=bool)
    unread = np.flatnonzero(np.isnan(parsed))
    if unread.size:
        cells = text.iloc[unread]
        blank = is_missing(cells).to_numpy(dtype=bool)
        again = _to_float(cells.astype(str).str.strip().where(~blank))
        parsed[unread] = again
        missing[unread] = blank
        bad[unread] = np.isnan(again) & ~blank
    return ParsedColumn(parsed, missing, bad)


def _to_float(values: pd.Series) -> np.ndarray:
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan, copy=True)


def _stripped_text(values: pd.Series) -> np.ndarray:
    """Stripped cell text as objects, NaN where missing; worked out once per distinct cell."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    distinct = pd.Series(uniques)
    text = distinct.astype(str).str.strip().where(~is_missing(distinct), np.nan).to_numpy(dtype=object)
    out = np.empty(len(codes), dtype=object)
    out[:] = np.nan
    known = codes >= 0
    out[known] = text[codes[known]]
    return out


def normalize_labels(values: pd.Series) -> pd.Series:
    """Class labels as ints when every label is an integral number ("1", "1.0"), else stripped text."""
    text = values.astype(str).str.strip()
    numbers = pd.to_numeric(text, errors="coerce")
    if numbers.notna().all() and np.all(np.mod(numbers.to_numpy(dtype=np.float64), 1) == 0):
        return numbers.astype(np.int64)
    return text.astype(object)


def infer_categorical(frame: pd.DataFrame, target: str, probe_rows: int = 10_000,
                      columns: list[str] | None = None) -> list[str]:
    """Feature columns whose non-blank cells are mostly not numbers.

    Parsing every cell of a text column is what costs on large inputs, so a seeded random probe of
    ``probe_rows`` cells decides first when it is clear-cut (over 90% text); a column near the 50%
    line is always parsed in full. ``columns`` limits the look to those columns (default: all).
    """
    out = []
    for col in frame.columns if columns is None else columns:
        if col == target or is_number_column(frame[col]):
            continue
        values = frame[col]
        if len(values) > probe_rows:
            probe = parse_numeric(values.sample(probe_rows, random_state=0))
            if probe.filled and probe.bad.sum() > 0.9 * probe.filled:
                out.append(col)
                continue
        parsed = parse_numeric(values)
        if parsed.filled and parsed.bad.sum() > MAX_BAD_SHARE * parsed.filled:
            out.append(col)
    return out


def header_rows(raw: pd.DataFrame) -> np.ndarray:
    """Rows whose every cell, stripped, is its column's name (a header line inside the data, as
    concatenated exports have). Narrowed column by column, so only the first pass sees every row;
    a column of numbers cannot hold a name (the reader keeps number-like names as text)."""
    rows = np.arange(len(raw))
    for col in raw.columns:
        if not rows.size:
            break
        values = raw[col]
        if is_number_column(values):
            rows = rows[:0]
            break
        cells = values if rows.size == len(raw) else values.iloc[rows]
        rows = rows[(cells.astype(str).str.strip() == col).to_numpy(dtype=bool, na_value=False)]
    mask = np.zeros(len(raw), dtype=bool)
    mask[rows] = True
    return mask


def _drop(mask: np.ndarray, keep: np.ndarray, reason: str, dropped: Counter) -> None:
    """Count the still-kept rows ``mask`` hits under ``reason`` and stop keeping them."""
    hits = mask & keep
    count = int(hits.sum())
    if count:
        dropped[reason] += count
        keep &= ~hits


def clean_frame(raw: pd.DataFrame, *, target: str, problem_type: str, source: str,
                categorical: list[str] | None = None, min_rows: int = 2) -> Cleaned:
    """Typed, usable rows of ``raw`` (string cells, or numbers where the reader parsed a whole
    column) or an :class:`InputError` saying what is wrong."""
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
    headers = header_rows(raw)
    if headers.any():
        dropped["repeated_header_line"] += int(headers.sum())
        body = raw[~headers]
    else:
        body = raw
    keep = np.ones(len(body), dtype=bool)

    out: dict[str, pd.Series] = {}
    for col in numeric + ([target] if problem_type == "regression" else []):
        parsed = parse_numeric(body[col])
        n_bad = int(parsed.bad.sum())
        if parsed.filled and n_bad > MAX_BAD_SHARE * parsed.filled:
            example = body[col].iloc[int(np.argmax(parsed.bad))]
            role = f"target column {target!r} (regression)" if col == target else f"column {col!r}"
            raise InputError(
                f"{source}: {role} must be numeric but {n_bad} of {parsed.filled} values are not "
                f"(e.g. {example!r})"
            )
        _drop(parsed.bad, keep, f"non_numeric:{col}", dropped)
        _drop(np.isinf(parsed.values), keep, f"non_finite:{col}", dropped)
        out[col] = pd.Series(parsed.values, dtype=np.float64)
    for col in categorical:
        out[col] = pd.Series(_stripped_text(body[col]), dtype=object)
    if problem_type == "classification":
        blank = is_missing(body[target]).to_numpy(dtype=bool)
        out[target] = body[target].reset_index(drop=True)
    else:
        blank = np.isnan(out[target].to_numpy())
    _drop(blank, keep, "missing_target", dropped)

    frame = pd.DataFrame(out)
    if not keep.all():
        frame = frame[keep].reset_index(drop=True)
    if problem_type == "classification":
        frame[target] = normalize_labels(frame[target])
    frame = frame[numeric + categorical + [target]]
    for col in numeric + categorical:
        if len(frame) and frame[col].isna().all():
            raise InputError(f"{source}: feature column {col!r} has no values (every row is missing); "
                             "fix the export or drop it with --drop-columns")
    if len(frame) < min_rows:
        why = f"; dropped: {dict(dropped)}" if dropped else ""
        raise InputError(f"{source}: only {len(frame)} usable row(s), need at least {min_rows}{why}")
    if problem_type == "classification":
        classes = frame[target].unique()
        if len(classes) < 2:
            raise InputError(f"{source}: classification target {target!r} has a single class "
                             f"({classes[0]!r}); need at least 2 classes")
    return Cleaned(frame, numeric, list(categorical), dropped)
