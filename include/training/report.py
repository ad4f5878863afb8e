"""Plots a person looks at (PNG) and one self-contained ``report.html`` for an evaluation.

Plots draw at most a few thousand points (a fixed random sample) so a 2-million-row test set costs
the same as a small one.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402


def _save(fig: plt.Figure, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path.name


def regression_plots(y: np.ndarray, preds: dict[str, np.ndarray], sample: np.ndarray,
                     out_dir: Path) -> list[str]:
    """Predicted vs actual and residuals vs predicted (+ residual histogram) per model."""
    fig, axes = plt.subplots(1, len(preds), figsize=(6 * len(preds), 5), squeeze=False,
                             sharex=True, sharey=True)
    lo, hi = float(np.min(y[sample])), float(np.max(y[sample]))
    for ax, (name, pred) in zip(axes[0], preds.items(), strict=True):
        ax.scatter(y[sample], pred[sample], s=4, alpha=0.3)
        ax.plot([lo, hi], [lo, hi], color="black", lw=1, label="perfect")
        ax.set(xlabel="actual", ylabel="predicted", title=f"{name}: predicted vs actual")
        ax.legend(loc="upper left")
    files = [_save(fig, out_dir / "predicted_vs_actual.png")]
    fig, axes = plt.subplots(1, 2, figsize=(12, 5))
    for name, pred in preds.items():
        residual = y[sample] - pred[sample]
        axes[0].scatter(pred[sample], residual, s=4, alpha=0.3, label=name)
        axes[1].hist(y - pred, bins=60, alpha=0.5, label=name)
    axes[0].axhline(0, color="black", lw=1)
    axes[0].set(xlabel="predicted", ylabel="actual - predicted", title="residuals vs predicted")
    axes[1].set(xlabel="actual - predicted", ylabel="rows", title="residual distribution")
    axes[1].tick_params(axis="x", labelrotation=30)
    for ax in axes:
        ax.legend()
    files.append(_save(fig, out_dir / "residuals.png"))
    return files


def classification_plots(y_code: np.ndarray, probas: dict[str, np.ndarray], classes: list,
                         matrix: dict, sample: np.ndarray, out_dir: Path) -> list[str]:
    """ROC curves (positive class, or one-vs-rest per class) and the candidate's confusion matrix."""
    fig, ax = plt.subplots(figsize=(6, 5))
    targets = [1] if len(classes) == 2 else range(len(classes))
    for style, (name, proba) in zip(("-", "--"), probas.items(), strict=False):
        for color, k in enumerate(targets):
            positive = y_code[sample] == k
            if positive.all() or not positive.any():
                continue
            fpr, tpr, _ = roc_curve(positive, proba[sample, k])
            label = name if len(classes) == 2 else f"{name}: {classes[k]} vs rest"
            ax.plot(fpr, tpr, ls=style, color=f"C{color}", label=label)
    ax.plot([0, 1], [0, 1], color="grey", lw=1, ls="--")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    ax.legend(loc="lower right", fontsize=8)
    files = [_save(fig, out_dir / "roc.png")]
    counts = np.array([[matrix[str(a)][str(p)] for p in classes] for a in classes])
    fig, ax = plt.subplots(figsize=(1.2 * len(classes) + 3, 1.2 * len(classes) + 2.5))
    ax.imshow(counts, cmap="Blues")
    ax.set_xticks(range(len(classes)), [str(c) for c in classes], rotation=45)
    ax.set_yticks(range(len(classes)), [str(c) for c in classes])
    for (i, j), v in np.ndenumerate(counts):
        ax.text(j, i, str(v), ha="center", va="center",
                color="white" if v > counts.max() / 2 else "black")
    ax.set(xlabel="predicted", ylabel="actual", title="confusion matrix (candidate)")
    files.append(_save(fig, out_dir / "confusion_matrix.png"))
    return files


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


def write_report(evaluation: dict, images: list[str], out_dir: Path) -> Path:
    """``report.html`` with metrics, intervals, the champion comparison and embedded PNGs."""
    key = next(k for k in evaluation if k.endswith("_metrics"))
    delta = (evaluation.get("champion") or {}).get("delta")
    delta_html = ""
    if delta:
        ci = delta.get("confidence_interval") or {}
        delta_html = (f"<p>Candidate − champion on <b>{delta['metric']}</b>: {_fmt(delta['value'])} "
                      f"(95% paired bootstrap interval {_fmt(ci.get('lower'))} – {_fmt(ci.get('upper'))})</p>")
    figures = "\n".join(
        f'<figure><img alt="{html.escape(name)}" src="data:image/png;base64,'
        f'{base64.b64encode((out_dir / name).read_bytes()).decode()}"><figcaption>{html.escape(name)}'
        "</figcaption></figure>" for name in images)
    check = evaluation["load_check"]
    ds = evaluation["dataset"]
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Model evaluation: {html.escape(evaluation['target'])}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1200px}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 10px;text-align:right}}img{{max-width:100%}}
.ok{{color:#176d2b}}.bad{{color:#a00}}</style></head><body>
<h1>Model evaluation — {html.escape(evaluation['problem_type'])}, target <code>{html.escape(evaluation['target'])}</code></h1>
<p>Test rows: {ds['test_rows']} (dropped {sum(ds.get('dropped_rows', {}).values())}); test data sha256 <code>{ds['test_sha256'][:16]}…</code></p>
<p>Load-and-predict check: <span class="{'ok' if check['passed'] else 'bad'}">{'passed' if check['passed'] else 'FAILED'}</span> — {html.escape(check['message'])}</p>
<h2>Metrics (primary: {html.escape(evaluation['primary_metric'])})</h2>
<table><tr><th>metric</th><th>candidate</th><th>95% bootstrap interval</th><th>champion</th></tr>
{_metric_rows(evaluation, key)}</table>
{delta_html}
<p>Bootstrap: {evaluation['bootstrap']['samples']} replicates, seed {evaluation['bootstrap']['seed']}, {evaluation['bootstrap']['rows_per_replicate']} rows per replicate.</p>
<h2>Plots</h2>
{figures}
<h2>evaluation.json</h2>
<pre>{html.escape(json.dumps(evaluation, indent=2)[:20000])}</pre>
</body></html>"""
    path = out_dir / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
