"""Derived features, shared by preprocessing (profile), training and serving (inside the Pipeline).

The model Pipeline starts with :class:`DerivedFeatures`, so an endpoint takes the raw columns and a
pickled model needs this module importable (it ships in the same source directory).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

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


def model_frame(frame: pd.DataFrame, numeric: list[str], categorical: list[str]) -> pd.DataFrame:
    """The feature columns in training order with the dtypes the Pipeline was fitted on.

    Numeric columns become float64 and categorical ones object with NaN for missing, whatever the
    reader produced (float32 chunks, pandas categories, pandas 3 strings, JSON values).
    """
    out = {}
    for col in numeric:
        out[col] = pd.to_numeric(frame[col], errors="coerce").astype(np.float64)
    for col in categorical:
        values = frame[col].astype(object)
        out[col] = values.where(pd.notna(values), np.nan)
    return pd.DataFrame(out, index=frame.index, columns=numeric + categorical)


class DerivedFeatures(TransformerMixin, BaseEstimator):
    """Appends the :data:`RATIOS` columns that the input supports."""

    def fit(self, X: pd.DataFrame, y: object = None) -> DerivedFeatures:
        self.feature_names_in_ = np.asarray(list(X.columns), dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        self.derived_ = derived_feature_names(list(X.columns))
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        extra = derived_features(X)
        return pd.concat([X, extra[self.derived_]], axis=1)

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        return np.asarray(list(self.feature_names_in_) + list(self.derived_), dtype=object)
