"""svg_charts: well-formed SVG, escaped labels, round tick values, counts written in the cells."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import svg_charts

SVG = "{http://www.w3.org/2000/svg}"


def _parse(svg: str) -> ET.Element:
    return ET.fromstring(svg.replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1))


def test_nice_ticks_are_round_and_cover_the_range() -> None:
    assert svg_charts.nice_ticks(0, 1) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert svg_charts.nice_ticks(-183_000, 512_000) == [0, 200_000, 400_000]
    assert svg_charts.nice_ticks(0.013, 0.0461) == [0.02, 0.03, 0.04]
    assert svg_charts.nice_ticks(3, 3) == [3]


def test_charts_are_well_formed_and_escape_labels() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=50), rng.normal(size=50)
    x[3] = np.nan  # skipped, not drawn at a bogus position
    scatter = _parse(svg_charts.scatter([("a<b & c", x, y)], "t<1>", "x", "y", diagonal=True))
    assert len(scatter.findall(f".//{SVG}circle")) == 49
    assert scatter.find(f"{SVG}title").text == "t<1>"
    lines = _parse(svg_charts.lines([("roc", np.array([0, 0.5, 1]), np.array([0, 0.8, 1]))],
                                    "ROC", "fpr", "tpr", diagonal=True))
    assert lines.find(f".//{SVG}polyline") is not None
    hist = _parse(svg_charts.histogram([("r", np.arange(100.0))], "h", "x", bins=10))
    assert len(hist.findall(f".//{SVG}g/{SVG}rect")) == 10


def test_heatmap_writes_every_count() -> None:
    counts = np.array([[1200, 3], [0, 45]])
    svg = _parse(svg_charts.heatmap(counts, ["no", "yes"], "cm", "predicted", "actual"))
    texts = [t.text for t in svg.iter(f"{SVG}text")]
    assert {"1,200", "3", "0", "45", "no", "yes"} <= set(texts)
