"""The evaluation's charts (inline SVG) and one self-contained ``report.html`` a person opens.

Charts draw at most a few thousand points (a fixed random sample) so a 2-million-row test set costs
the same as a small one. They are SVG text from ``svg_charts`` because SageMaker's scikit-learn
image has no plotting library and a Processing job installs nothing.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
import svg_charts
from data_checks import html_section
from sklearn.metrics import roc_curve
from slice_report import slice_section


def regression_charts(y: np.ndarray, preds: dict[str, np.ndarray], sample: np.ndarray) -> list[str]:
    """Predicted vs actual per model, residuals vs predicted, and the residual distribution."""
    charts = [svg_charts.scatter([(name, y[sample], pred[sample])], f"{name}: predicted vs actual",
                                 "actual", "predicted", diagonal=True)
              for name, pred in preds.items()]
    charts.append(svg_charts.scatter([(name, pred[sample], y[sample] - pred[sample])
                                      for name, pred in preds.items()],
                                     "residuals vs predicted", "predicted", "actual - predicted", hline=0.0))
    charts.append(svg_charts.histogram([(name, y - pred) for name, pred in preds.items()],
                                       "residual distribution", "actual - predicted"))
    return charts


def classification_charts(y_code: np.ndarray, probas: dict[str, np.ndarray], classes: list,
                          matrix: dict, sample: np.ndarray) -> list[str]:
    """ROC curves (positive class, or one-vs-rest per class) and the candidate's confusion matrix."""
    targets = [1] if len(classes) == 2 else range(len(classes))
    curves, dashed, colors = [], [], []
    for style, (name, proba) in enumerate(probas.items()):
        for k in targets:
            positive = y_code[sample] == k
            if positive.all() or not positive.any():
                continue
            fpr, tpr, _ = roc_curve(positive, proba[sample, k])
            curves.append((name if len(classes) == 2 else f"{name}: {classes[k]} vs rest", fpr, tpr))
            dashed.append(style > 0)
            colors.append(k)
    charts = [svg_charts.lines(curves, "ROC", "false positive rate", "true positive rate",
                               dashed=dashed, colors=colors, diagonal=True)] if curves else []
    counts = np.array([[matrix[str(a)][str(p)] for p in classes] for a in classes])
    charts.append(svg_charts.heatmap(counts, [str(c) for c in classes], "confusion matrix (candidate)",
                                     "predicted", "actual"))
    return charts


def _fmt(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    return html.escape(str(value))


def _metric_rows(evaluation: dict, key: str) -> str:
    cand = evaluation[key]
    champ = (evaluation.get("champion") or {}).get(key, {})
    rows = []
    for name, m in cand.items():
        if name == "confusion_matrix":
            continue
        ci = m.get("confidence_interval") or {}
        other = champ.get(name, {}).get("value") if champ else None
        rows.append(f"<tr><td>{name}</td><td>{_fmt(m['value'])}</td><td>{_fmt(ci.get('lower'))} – "
                    f"{_fmt(ci.get('upper'))}</td><td>{_fmt(other)}</td></tr>")
    return "\n".join(rows)


def write_report(evaluation: dict, charts: list[str], out_dir: Path) -> Path:
    """``report.html`` with metrics, intervals, the champion comparison and the inline SVG charts."""
    key = next(k for k in evaluation if k.endswith("_metrics"))
    delta = (evaluation.get("champion") or {}).get("delta")
    delta_html = ""
    if delta:
        ci = delta.get("confidence_interval") or {}
        delta_html = (f"<p>Candidate − champion on <b>{delta['metric']}</b>: {_fmt(delta['value'])} "
                      f"(95% paired bootstrap interval {_fmt(ci.get('lower'))} – {_fmt(ci.get('upper'))})</p>")
    figures = "\n".join(f"<figure>{svg}</figure>" for svg in charts)
    check = evaluation["load_check"]
    ds = evaluation["dataset"]
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Model evaluation: {html.escape(evaluation['target'])}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1200px}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 10px;text-align:right}}figure{{display:inline-block;margin:0 1em 1em 0}}svg{{max-width:100%;height:auto}}
.ok{{color:#176d2b}}.bad{{color:#a00}}</style></head><body>
<h1>Model evaluation — {html.escape(evaluation['problem_type'])}, target <code>{html.escape(evaluation['target'])}</code></h1>
<p>Test rows: {ds['test_rows']} (dropped {sum(ds.get('dropped_rows', {}).values())}); test data sha256 <code>{ds['test_sha256'][:16]}…</code></p>
<p>Load-and-predict check: <span class="{'ok' if check['passed'] else 'bad'}">{'passed' if check['passed'] else 'FAILED'}</span> — {html.escape(check['message'])}</p>
<h2>Metrics (primary: {html.escape(evaluation['primary_metric'])})</h2>
<table><tr><th>metric</th><th>candidate</th><th>95% bootstrap interval</th><th>champion</th></tr>
{_metric_rows(evaluation, key)}</table>
{delta_html}
{slice_section(evaluation)}
{html_section(evaluation.get("data_checks"))}
<p>Bootstrap: {evaluation['bootstrap']['samples']} replicates, seed {evaluation['bootstrap']['seed']}, {evaluation['bootstrap']['rows_per_replicate']} rows per replicate.</p>
<h2>Charts</h2>
{figures}
<h2>evaluation.json</h2>
<pre>{html.escape(json.dumps(evaluation, indent=2)[:20000])}</pre>
</body></html>"""
    path = out_dir / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
