"""Derived ratio columns, with numpy and pandas only.

preprocess.py profiles them and must not pay for importing scikit-learn (about 1 s of every
processing instance's start); the model Pipeline adds them through ``features.DerivedFeatures``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# name -> (numerator, denominator); a ratio is derived only when both raw columns exist.
RATIOS: dict[str, tuple[str, str]] = {
    "rooms_per_household": ("total_rooms", "households"),
    "bedrooms_per_room": ("total_bedrooms", "total_rooms"),
    "population_per_household": ("population", "households"),
}


def derived_feature_names(columns: list[str]) -> list[str]:
    present = set(columns)
    return [name for name, (num, den) in RATIOS.items() if num in present and den in present]


def derived_features(frame: pd.DataFrame) -> pd.DataFrame:
    """The derived columns for ``frame``; a zero or missing denominator gives NaN (imputed later)."""
    out = {}
    for name in derived_feature_names(list(frame.columns)):
        num, den = RATIOS[name]
        numerator = pd.to_numeric(frame[num], errors="coerce").to_numpy(dtype=np.float64)
        denominator = pd.to_numeric(frame[den], errors="coerce").to_numpy(dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = numerator / denominator
        ratio[~np.isfinite(ratio)] = np.nan
        out[name] = ratio
    return pd.DataFrame(out, index=frame.index)
