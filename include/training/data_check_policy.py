"""The data checks' thresholds, stated once for the trigger form and the preprocess job.

The Airflow plugins import this module as ``include.training.data_check_policy`` to build the
DAG Params (their defaults, bounds and help text); ``data_checks.py`` and ``preprocess.py`` import
it inside the container to name their command-line options after the same thresholds. Standard
library only, so parsing a DAG never pays for numpy.

Defaults: PSI below 0.1 is read as no meaningful shift, 0.1-0.25 as a moderate shift and 0.25 or
more as a major shift (Lewis, "An Introduction to Credit Scoring", 1994; Siddiqi, "Intelligent
Credit Scoring", 2017; discussed in Yurdakul, "Statistical Properties of Population Stability
Index", Western Michigan University dissertation 3208, 2018). A run stops at a major shift and
reports a moderate one. The missing-value limits have no published convention; they are this
project's choice and documented with the Params.
"""

from __future__ import annotations

from dataclasses import dataclass

DATA_CHECKS_FILE = "data_checks.json"
DATA_CHECKS_SCHEMA_VERSION = "1.0"
PSI_MODERATE = 0.1  # below: no meaningful shift; from here to the limit: reported, not stopped
PSI_BINS = 10  # deciles of the champion's training data
MODES = {
    "enforce": "a failed check stops the run before training and sends the data-check alert",
    "warn": "failed checks are reported (log, report.html) but training goes ahead; use it once to "
            "accept an intended change of the data, whose profile then becomes the new baseline",
}


@dataclass(frozen=True)
class Threshold:
    """One data-check limit: a DAG Param and a preprocess.py option of the same name."""

    name: str
    default: float
    maximum: float
    title: str
    description: str

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


THRESHOLDS: tuple[Threshold, ...] = (
    Threshold("drift_psi_max", 0.25, 10.0, "Feature drift limit (PSI)",
              "A feature whose population stability index against the champion's training data "
              "(deciles of the champion's data for numbers, categories for text) reaches this "
              "fails. 0.25 is the usual 'major shift' line; 0.1-0.25 is reported as moderate."),
    Threshold("target_psi_max", 0.25, 10.0, "Target shift limit (PSI)",
              "The same index for the target: its deciles (regression) or label shares "
              "(classification) against the champion's training data."),
    Threshold("missing_rate_increase_max", 0.05, 1.0, "Missing-rate increase limit",
              "A feature whose share of missing values grew by more than this (absolute, 0.05 = "
              "5 percentage points) over the champion's training data fails."),
    Threshold("missing_rate_max", 0.5, 1.0, "Missing-rate limit",
              "A feature missing in more than this share of rows fails, first run included."),
)
DEFAULTS: dict[str, float] = {t.name: t.default for t in THRESHOLDS}
