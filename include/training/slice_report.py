"""The slice section of ``report.html``: the primary metric per slice as a chart and a table.

Reads only the ``slices`` block of evaluation.json (built by ``slices.py``), so the report shows
exactly what the gate judges. Small slices stay in both, greyed and marked "small, not judged".
"""

from __future__ import annotations

import html

import svg_charts
from slices import slice_rows


def _fmt(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4f}"


def _interval(entry: dict | None) -> str:
    ci = (entry or {}).get("confidence_interval") or {}
    if not ci:
        return "–"
    return f"{_fmt(ci.get('lower'))} – {_fmt(ci.get('upper'))}"


def _value(entry: dict | None) -> float | None:
    return (entry or {}).get("value")


def _end(entry: dict | None, end: str) -> float | None:
    return ((entry or {}).get("confidence_interval") or {}).get(end)


def slice_table_rows(evaluation: dict) -> list[tuple[str, ...]]:
    """``(slice, rows, candidate, interval, champion, interval, delta, note)`` per slice, as text:
    the same table in the report and in the README."""
    block = evaluation.get("slices")
    rows = []
    for s in slice_rows(block):
        note = f"small (< {block['min_rows']} rows), not judged" if s["small"] else ""
        rows.append((f"{s['column']}={s['value']}", str(s["rows"]), _fmt(_value(s.get("candidate"))),
                     _interval(s.get("candidate")), _fmt(_value(s.get("champion"))),
                     _interval(s.get("champion")),
                     "–" if _value(s.get("delta")) is None else f"{_value(s['delta']):+.4f}", note))
    return rows


SLICE_HEADER = ("slice", "test rows", "candidate", "95% interval", "champion", "95% interval",
                "candidate − champion", "note")


def slice_charts(evaluation: dict) -> list[str]:
    """Per slice column, a dot-and-interval chart of the primary metric per value (candidate, and
    the champion when one was scored)."""
    block = evaluation["slices"]
    charts = []
    for column in block["columns"]:
        rows = column["slices"]
        series = []
        for name in ("candidate", "champion"):
            if any(name in s for s in rows):
                series.append((name, [_value(s.get(name)) for s in rows],
                               [_end(s.get(name), "lower") for s in rows],
                               [_end(s.get(name), "upper") for s in rows]))
        charts.append(svg_charts.intervals(
            [f"{s['value']} ({s['rows']})" for s in rows], series,
            f"{block['metric']} by {column['column']} (95% intervals)", block["metric"],
            muted=[s["small"] for s in rows]))
    return charts


def slice_section(evaluation: dict) -> str:
    """HTML for the report: heading, chart and table; empty when no slice columns were given."""
    block = evaluation.get("slices")
    if not block:
        return ""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in SLICE_HEADER)
    body = "\n".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
        for row in slice_table_rows(evaluation))
    return (f"<h2>Slices ({html.escape(block['metric'])} per slice value)</h2>\n"
            f"<p>Slices with fewer than {block['min_rows']} test rows are shown grey and not judged "
            "by the gate.</p>\n"
            + "".join(f"<figure>{svg}</figure>" for svg in slice_charts(evaluation))
            + f"\n<table><tr>{head}</tr>\n{body}</table>")
