"""Data checks before training: new data against the champion's training data, or against itself.

Runs inside the preprocess job (``preprocess.py`` calls :func:`run_checks` on the cleaned rows), so
no data reaches Airflow and the new rows are binned on the champion's own bin edges. The champion's
side is its ``profile.json`` (recorded with its registry version), whose ``distributions`` block
this module writes for every run: decile edges and counts per numeric feature, category counts per
categorical one, the same for the target. Checks:

- schema: feature columns removed, added, or changed kind (numeric / categorical);
- missing values: the share of missing cells per feature, absolute and as an increase;
- drift: population stability index (PSI) per feature on the champion's bins;
- target shift: PSI of the target (regression: its deciles; classification: label shares).

Without a champion only the data's own checks run (schema recorded, missing values). PSI rather
than a two-sample test: with thousands of rows a KS or chi-square test calls negligible shifts
significant, while PSI measures how large a shift is, on the same scale for every feature.
The result is ``data_checks.json`` (``passed``, ``checks``, ``summary``, ``table``); the table's
columns are ``Check | Value | Threshold | Conclusion``.
"""

from __future__ import annotations

import argparse
import html
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from data_check_policy import (
    DATA_CHECKS_FILE,
    DATA_CHECKS_SCHEMA_VERSION,
    DEFAULTS,
    PSI_BINS,
    PSI_MODERATE,
    THRESHOLDS,
)

OTHER = "(other)"  # categories beyond the recorded ones share one bin
MAX_CATEGORIES = 200
EPSILON = 1e-4  # share given to an empty bin, so PSI stays finite
PASS, MODERATE, FAIL, INFO, SKIPPED = "pass", "pass (moderate shift)", "FAIL", "recorded", "not checked"


def distribution(values: pd.Series, kind: str, bins: int = PSI_BINS) -> dict[str, Any]:
    """What the next run bins its data on: decile edges and counts, or category counts."""
    present = values.dropna()
    if kind == "numeric":
        data = present.to_numpy(dtype=np.float64)
        if data.size == 0:
            return {"kind": "numeric", "edges": [], "counts": [0]}
        edges = np.unique(np.quantile(data, np.arange(1, bins) / bins)).tolist()
        return {"kind": "numeric", "edges": edges, "counts": _histogram(data, edges).tolist()}
    counts = present.astype(str).value_counts()
    kept = counts.head(MAX_CATEGORIES)
    return {"kind": "categorical", "counts": {str(k): int(v) for k, v in kept.items()},
            "other": int(counts.sum() - kept.sum())}


def _histogram(data: np.ndarray, edges: list[float]) -> np.ndarray:
    """Counts per bin (-inf, e1], (e1, e2], ..., (ek, inf)."""
    index = np.searchsorted(np.asarray(edges, dtype=np.float64), data, side="left")
    return np.bincount(index, minlength=len(edges) + 1)


def binned(values: pd.Series, baseline: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(champion counts, new counts) on the champion's bins."""
    present = values.dropna()
    if baseline["kind"] == "numeric":
        new = _histogram(present.to_numpy(dtype=np.float64), list(baseline["edges"]))
        return np.asarray(baseline["counts"], dtype=np.float64), new.astype(np.float64)
    known = dict(baseline["counts"])
    new_counts = present.astype(str).value_counts()
    other_new = float(new_counts[~new_counts.index.isin(list(known))].sum())
    names = list(known)
    old = np.array([known[n] for n in names] + [baseline.get("other", 0)], dtype=np.float64)
    new = np.array([float(new_counts.get(n, 0)) for n in names] + [other_new], dtype=np.float64)
    return old, new


def psi(expected: np.ndarray, actual: np.ndarray, epsilon: float = EPSILON) -> float:
    """Population stability index: sum over bins of (a - e) * ln(a / e), shares of each total."""
    if expected.sum() == 0 or actual.sum() == 0:
        return math.nan
    e = np.maximum(expected / expected.sum(), epsilon)
    a = np.maximum(actual / actual.sum(), epsilon)
    return float(np.sum((a - e) * np.log(a / e)))


def profile_distributions(frame: pd.DataFrame, schema: Mapping[str, Any]) -> dict[str, Any]:
    """``profile.json``'s ``distributions`` block: per feature and for the target."""
    target = schema["target"]
    target_kind = "numeric" if schema["problem_type"] == "regression" else "categorical"
    return {"bins": PSI_BINS,
            "features": {f["name"]: distribution(frame[f["name"]], f["kind"]) for f in schema["features"]},
            "target": {"name": target, **distribution(frame[target], target_kind)}}


def _fmt(value: float | None) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}"


def _row(check: str, value: Any, shown: str, threshold: str, conclusion: str,
         column: str | None = None) -> dict[str, Any]:
    return {"check": check, "column": column, "value": value, "shown": shown,
            "threshold": threshold, "conclusion": conclusion,
            "passed": None if conclusion in (INFO, SKIPPED) else conclusion != FAIL}


def _missing_share(values: pd.Series) -> float:
    return float(values.isna().mean()) if len(values) else 0.0


def _baseline_missing(baseline: Mapping[str, Any], column: str) -> float | None:
    stats = (baseline.get("columns") or {}).get(column)
    if not stats:
        return None
    total = stats.get("count", 0) + stats.get("missing", 0)
    return stats.get("missing", 0) / total if total else None


def schema_rows(schema: Mapping[str, Any], baseline: Mapping[str, Any] | None) -> list[dict]:
    """Removed, added or retyped features: each one changes what the endpoint accepts."""
    kinds = {f["name"]: f["kind"] for f in schema["features"]}
    if baseline is None:
        numeric = sum(k == "numeric" for k in kinds.values())
        shown = f"{len(kinds)} features ({numeric} numeric, {len(kinds) - numeric} categorical)"
        return [_row("schema", len(kinds), shown, "first model: none", INFO)]
    old = {f["name"]: f["kind"] for f in baseline["schema"]["features"]}
    removed = [c for c in old if c not in kinds]
    added = [c for c in kinds if c not in old]
    changed = [f"{c} {old[c]}->{kinds[c]}" for c in kinds if c in old and old[c] != kinds[c]]
    return [_row(f"schema: {what}", names, ", ".join(names) or "none", "none",
                 FAIL if names else PASS)
            for what, names in (("columns removed", removed), ("columns added", added),
                               ("kinds changed", changed))]


def missing_rows(frame: pd.DataFrame, schema: Mapping[str, Any], baseline: Mapping[str, Any] | None,
                 limits: Mapping[str, float]) -> list[dict]:
    """Missing share per feature: capped always, and its growth capped against the champion."""
    rows = []
    cap, growth = limits["missing_rate_max"], limits["missing_rate_increase_max"]
    for name in (f["name"] for f in schema["features"]):
        rate = _missing_share(frame[name])
        old = _baseline_missing(baseline, name) if baseline else None
        failed = rate > cap or (old is not None and rate - old > growth)
        shown = _fmt(rate) if old is None else f"{_fmt(rate)} (champion {_fmt(old)})"
        threshold = f"<= {cap:g}" + ("" if old is None else f", increase <= {growth:g}")
        rows.append(_row("missing rate", rate, shown, threshold, FAIL if failed else PASS, name))
    return rows


def _psi_row(check: str, column: str, values: pd.Series, dist: Mapping[str, Any] | None,
             limit: float, kind: str) -> dict:
    if dist is None or dist.get("kind") != kind:
        return _row(check, None, "n/a", f"< {limit:g}", SKIPPED, column)
    value = psi(*binned(values, dist))
    if math.isnan(value):
        return _row(check, None, "n/a (no values)", f"< {limit:g}", SKIPPED, column)
    conclusion = FAIL if value >= limit else MODERATE if value >= PSI_MODERATE else PASS
    return _row(check, round(value, 6), _fmt(value), f"< {limit:g}", conclusion, column)


def drift_rows(frame: pd.DataFrame, schema: Mapping[str, Any], baseline: Mapping[str, Any],
               limits: Mapping[str, float]) -> list[dict]:
    """PSI per feature both sides have with the same kind (the others are schema changes)."""
    old = {f["name"]: f["kind"] for f in baseline["schema"]["features"]}
    dists = (baseline.get("distributions") or {}).get("features", {})
    return [_psi_row("drift PSI", f["name"], frame[f["name"]], dists.get(f["name"]),
                     limits["drift_psi_max"], f["kind"])
            for f in schema["features"] if old.get(f["name"]) == f["kind"]]


def target_row(frame: pd.DataFrame, schema: Mapping[str, Any], baseline: Mapping[str, Any],
               limits: Mapping[str, float]) -> dict:
    """PSI of the target; a label the champion never saw fails whatever the PSI."""
    target = schema["target"]
    kind = "numeric" if schema["problem_type"] == "regression" else "categorical"
    row = _psi_row("target shift PSI", target, frame[target],
                   (baseline.get("distributions") or {}).get("target"), limits["target_psi_max"], kind)
    old_labels = baseline["schema"].get("labels")
    if kind == "categorical" and old_labels is not None:
        new = sorted(set(frame[target].dropna().astype(str)) - {str(v) for v in old_labels})
        if new:
            row.update(shown=f"{row['shown']}; new labels {', '.join(new)}", conclusion=FAIL,
                       passed=False)
    return row


def render_table(checks: list[dict]) -> str:
    """``Check | Value | Threshold | Conclusion``, one line per check, padded to line up."""
    header = ("Check", "Value", "Threshold", "Conclusion")
    rows = [(f"{c['check']}: {c['column']}" if c["column"] else c["check"], c["shown"],
             c["threshold"], c["conclusion"]) for c in checks]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    lines = [" | ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()
             for r in [header, *rows]]
    lines.insert(1, "-|-".join("-" * w for w in widths))
    return "\n".join(lines)


def run_checks(frame: pd.DataFrame, schema: Mapping[str, Any], baseline: Mapping[str, Any] | None,
               limits: Mapping[str, float] | None = None, baseline_source: str | None = None
               ) -> dict[str, Any]:
    """The ``data_checks.json`` document for the cleaned rows ``frame`` and their ``schema``."""
    limits = {**DEFAULTS, **(limits or {})}
    checks = schema_rows(schema, baseline) + missing_rows(frame, schema, baseline, limits)
    notes = []
    if baseline is None:
        notes.append("no champion profile: checked the data itself only (schema, missing values)")
    else:
        if not baseline.get("distributions"):
            notes.append("the champion's profile has no distributions (recorded before data "
                         "checks existed): drift and target shift not checked")
        checks += drift_rows(frame, schema, baseline, limits)
        checks.append(target_row(frame, schema, baseline, limits))
    failed = [c for c in checks if c["passed"] is False]
    judged = [c for c in checks if c["passed"] is not None]
    passed = not failed
    summary = (f"Data checks {'PASSED' if passed else 'FAILED'}: "
               f"{len(judged) - len(failed)}/{len(judged)} checks passed")
    if failed:
        summary += " (failed: " + ", ".join(
            f"{c['check']}" + (f" {c['column']}" if c["column"] else "") for c in failed) + ")"
    return {
        "schema_version": DATA_CHECKS_SCHEMA_VERSION, "passed": passed, "summary": summary,
        "baseline": None if baseline is None else {
            "profile": baseline_source, "input_sha256": baseline.get("input_sha256"),
            "rows": (baseline.get("rows") or {}).get("usable")},
        "rows": int(len(frame)), "thresholds": {**limits, "psi_moderate": PSI_MODERATE},
        "checks": checks, "notes": notes, "table": render_table(checks),
    }


def add_threshold_options(parser: argparse.ArgumentParser) -> None:
    """``--drift-psi-max`` etc., with the documented defaults (data_check_policy.py)."""
    for t in THRESHOLDS:
        parser.add_argument(t.flag, type=float, default=t.default,
                            help=f"{t.description} Default {t.default:g}.")


def read_baseline(path: Path | None) -> dict[str, Any] | None:
    """The champion's profile.json, or None when there is none (first model)."""
    if path is None or not path.is_file():
        return None
    return json.loads(path.read_text())


def read_result(path: Path) -> dict[str, Any] | None:
    """A data_checks.json (evaluate shows it in the report), or None when there is none."""
    return json.loads(path.read_text()) if path.is_file() else None


def html_section(result: Mapping[str, Any] | None) -> str:
    """report.html's "Data checks" section: the summary line and the table as HTML."""
    if not result:
        return ""
    cells = "".join(
        f"<tr><td>{html.escape(c['check'] + (': ' + c['column'] if c['column'] else ''))}</td>"
        f"<td>{html.escape(c['shown'])}</td><td>{html.escape(c['threshold'])}</td>"
        f"<td class=\"{'bad' if c['passed'] is False else 'ok'}\">{html.escape(c['conclusion'])}</td></tr>"
        for c in result["checks"])
    notes = "".join(f"<p>{html.escape(n)}</p>" for n in result.get("notes", []))
    return (f"<h2>Data checks (before training)</h2><p>{html.escape(result['summary'])}</p>{notes}"
            "<table><tr><th>Check</th><th>Value</th><th>Threshold</th><th>Conclusion</th></tr>"
            f"{cells}</table>")


def write_result(result: Mapping[str, Any], out_dir: Path, name: str = DATA_CHECKS_FILE) -> Path:
    path = out_dir / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, allow_nan=False))
    return path


def main(argv: list[str] | None = None) -> None:
    """Compare CSV data with a profile.json by hand, as the preprocess job does."""
    import csv_io
    from dataset_schema import infer_schema
    from failure import InputError
    from schema import NA_TOKENS

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="directory searched for *.csv / *.csv.gz")
    p.add_argument("--baseline", required=True, type=Path,
                   help="the champion's profile.json (from its run's data/profile/ prefix)")
    p.add_argument("--output-dir", type=Path, default=Path("."), help=f"gets {DATA_CHECKS_FILE}")
    add_threshold_options(p)
    args = p.parse_args(argv)
    baseline = read_baseline(args.baseline)
    if baseline is None or "schema" not in baseline:
        raise InputError(f"{args.baseline}: not a profile.json with a schema")
    old = baseline["schema"]
    files = csv_io.data_files(csv_io.inspect_all(csv_io.find_csv_files(Path(args.data))), Path(args.data))
    categorical = [f["name"] for f in old["features"] if f["kind"] == "categorical"]
    text = [c for c in categorical + [old["target"]] * (old["problem_type"] == "classification")
            if c in files[0].columns]
    raw = csv_io.read_typed(files, text_columns=text, na_values=NA_TOKENS)
    cleaned, schema = infer_schema(raw, target=old["target"], problem_type=old["problem_type"],
                                   source=args.data, categorical=[c for c in categorical if c in raw])
    limits = {t.name: getattr(args, t.name) for t in THRESHOLDS}
    result = run_checks(cleaned.frame, schema.to_dict(), baseline, limits, str(args.baseline))
    print(result["summary"])
    print(result["table"])
    print(f"wrote {write_result(result, args.output_dir)}")


if __name__ == "__main__":
    from failure import InputError

    try:
        main()
    except InputError as exc:
        raise SystemExit(f"[ERROR] {exc}") from None
