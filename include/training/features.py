"""Model features, shared by training, evaluation and serving (inside the Pipeline).

The model Pipeline starts with :class:`DerivedFeatures`, so an endpoint takes the raw columns and a
pickled model needs this module importable (it ships in the same source directory).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from derived import derived_features, recipe_features
from sklearn.base import BaseEstimator, TransformerMixin


def model_frame(frame: pd.DataFrame, numeric: list[str], categorical: list[str]) -> pd.DataFrame:
    """The feature columns in training order with the dtypes the Pipeline was fitted on.

    Numeric columns become float64 and categorical ones object with NaN for missing, whatever the
    reader produced (float32 chunks, pandas categories, pandas 3 strings, JSON values); categories
    are compared as text, as training saw them, so a code sent as the number 7 matches "7".
    """
    out = {}
    for col in numeric:
        out[col] = pd.to_numeric(frame[col], errors="coerce").astype(np.float64)
    for col in categorical:
        values = frame[col]
        if isinstance(values.dtype, pd.CategoricalDtype):
            values = values.cat.rename_categories([str(c) for c in values.cat.categories])
        elif pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            values = values.astype(str).where(pd.notna(values))  # codes sent as numbers (JSON)
        values = values.astype(object)
        out[col] = values.where(pd.notna(values), np.nan)
    return pd.DataFrame(out, index=frame.index, columns=numeric + categorical)


class DerivedFeatures(TransformerMixin, BaseEstimator):
    """Appends the columns of the named feature recipes (``derived.RECIPES``); none by default."""

    def __init__(self, recipes: tuple[str, ...] = ()) -> None:
        self.recipes = recipes

    def fit(self, X: pd.DataFrame, y: object = None) -> DerivedFeatures:
        self.feature_names_in_ = np.asarray(list(X.columns), dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        self.derived_ = recipe_features(list(self.recipes), list(X.columns))
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        if not self.derived_:
            return X
        return pd.concat([X, derived_features(X, self.derived_)], axis=1)

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        return np.asarray(list(self.feature_names_in_) + list(self.derived_), dtype=object)
