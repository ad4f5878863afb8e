"""Data-check options of a run: the trigger form's "Data checks" Params and their checks.

Whether a failed check stops the run, and each check's limit. The limits, their bounds and
documented defaults are stated once in ``include/training/data_check_policy.py``, which the
preprocess job names its options after too, so the form and the job cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from include.training.data_check_policy import DEFAULTS as LIMIT_DEFAULTS
from include.training.data_check_policy import MODES, THRESHOLDS

DATA_CHECK_DEFAULTS: dict[str, Any] = {"data_checks": "enforce", **LIMIT_DEFAULTS}


def data_check_params(d: Mapping[str, Any]) -> dict[str, Any]:
    """The "Data checks" section: whether a failed check stops the run, and each check's limit."""
    from airflow.sdk import Param

    params = {"data_checks": Param(
        d["data_checks"], type="string", enum=list(MODES), title="Data checks",
        description="; ".join(f"{mode}: {what}" for mode, what in MODES.items()) + ".",
        section="Data checks",
    )}
    for t in THRESHOLDS:
        params[t.name] = Param(
            d[t.name], type="number", minimum=0, maximum=t.maximum, title=t.title,
            description=f"{t.description} Default {t.default:g}.", section="Data checks",
        )
    return params


@dataclass(frozen=True)
class DataCheckOptions:
    """Whether a failed data check stops the run, and the limits preprocess checks against."""

    mode: str = DATA_CHECK_DEFAULTS["data_checks"]
    limits: dict[str, float] = field(default_factory=lambda: dict(LIMIT_DEFAULTS))

    def arguments(self) -> list[str]:
        """preprocess.py's options for the limits (its own defaults are the same numbers)."""
        return [arg for t in THRESHOLDS for arg in (t.flag, repr(self.limits[t.name]))]


def data_check_options(params: Mapping[str, Any]) -> DataCheckOptions:
    """The mode and limits; ValueError naming the first value the preprocess job cannot use."""
    mode = params.get("data_checks", DATA_CHECK_DEFAULTS["data_checks"])
    if mode not in MODES:
        raise ValueError(f"data_checks {mode!r} is not one of {', '.join(MODES)}")
    limits = {}
    for t in THRESHOLDS:
        value = params.get(t.name, t.default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= t.maximum:
            raise ValueError(f"{t.name} must be a number from 0 to {t.maximum:g}, got {value!r}")
        limits[t.name] = float(value)
    return DataCheckOptions(mode, limits)
