"""Named feature recipes: derived columns a pipeline spec asks for, with numpy and pandas only.

A recipe applies only when asked for (``--feature-recipes``) and only to data that has its columns;
nothing else in include/training names a data set's columns. preprocess profiles the derived
columns and must not pay for importing scikit-learn (about 1 s of every processing instance's
start); the model Pipeline adds them through ``features.DerivedFeatures``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from failure import InputError

# recipe -> {derived column: (numerator, denominator)}
RECIPES: dict[str, dict[str, tuple[str, str]]] = {
    # California housing (include/data): per-household and per-room ratios of the census counts
    "california_ratios": {
        "rooms_per_household": ("total_rooms", "households"),
        "bedrooms_per_room": ("total_bedrooms", "total_rooms"),
        "population_per_household": ("population", "households"),
    },
}
RATIOS: dict[str, tuple[str, str]] = {name: pair for r in RECIPES.values() for name, pair in r.items()}


def recipe_features(recipes: list[str], numeric: list[str]) -> list[str]:
    """The derived column names of ``recipes``; an error naming the recipe and the column it lacks."""
    out: list[str] = []
    for recipe in recipes:
        if recipe not in RECIPES:
            raise InputError(f"unknown feature recipe {recipe!r}; known recipes: {sorted(RECIPES)}")
        needed = sorted({c for pair in RECIPES[recipe].values() for c in pair})
        missing = [c for c in needed if c not in numeric]
        if missing:
            raise InputError(f"feature recipe {recipe!r} needs numeric column(s) {missing}, which the "
                             f"data does not have as numeric features; drop the recipe or fix the data")
        out += [name for name in RECIPES[recipe] if name not in out]
    return out


def derived_features(frame: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """The named derived columns for ``frame``; a zero or missing denominator gives NaN (imputed
    later)."""
    out = {}
    for name in names:
        num, den = RATIOS[name]
        numerator = pd.to_numeric(frame[num], errors="coerce").to_numpy(dtype=np.float64)
        denominator = pd.to_numeric(frame[den], errors="coerce").to_numpy(dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = numerator / denominator
        ratio[~np.isfinite(ratio)] = np.nan
        out[name] = ratio
    return pd.DataFrame(out, index=frame.index)
