"""Per-column statistics for the data profile (JSON-safe: NaN becomes null)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def _num(value: float) -> float | None:
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else round(value, 6)


def column_stats(values: pd.Series, top: int = 10) -> dict:
    missing = int(values.isna().sum())
    if pd.api.types.is_numeric_dtype(values):
        data = values.dropna().to_numpy(dtype=np.float64)
        if data.size == 0:
            return {"kind": "numeric", "count": 0, "missing": missing}
        q = np.percentile(data, [25, 50, 75])
        return {
            "kind": "numeric", "count": int(data.size), "missing": missing,
            "mean": _num(data.mean()), "std": _num(data.std(ddof=1)) if data.size > 1 else None,
            "min": _num(data.min()), "p25": _num(q[0]), "p50": _num(q[1]), "p75": _num(q[2]),
            "max": _num(data.max()),
        }
    counts = values.dropna().astype(str).value_counts()
    return {
        "kind": "categorical", "count": int(counts.sum()), "missing": missing,
        "unique": int(counts.size), "top": {str(k): int(v) for k, v in counts.head(top).items()},
    }


def frame_stats(frame: pd.DataFrame) -> dict:
    return {col: column_stats(frame[col]) for col in frame.columns}
