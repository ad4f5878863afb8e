"""Small charts as inline SVG text: scatter, lines, histogram, a labelled heatmap and intervals.

SageMaker's scikit-learn image has no plotting library and a Processing job installs nothing, so
the evaluation report draws its charts itself. Each function returns one ``<svg>`` element (plain
text, no scripts, no external references) that a browser renders inside ``report.html``.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

import numpy as np

WIDTH, HEIGHT = 480, 360
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 32, 48
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
Series = tuple[str, np.ndarray, np.ndarray]


def _num(value: float) -> str:
    """A coordinate with two decimals: enough for screen pixels, short text for many points."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _label(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1e6:
        return f"{value / 1e6:.4g}M"
    if abs(value) >= 1e4:
        return f"{value / 1e3:.4g}k"
    return f"{value:.3g}" if abs(value) < 0.01 else f"{value:.4g}"


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values (steps of 1, 2 or 5 times a power of ten) covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0]
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step) * step
    return [round(first + i * step, 12) for i in range(int((hi - first) / step + 1e-9) + 1)]


class _Axes:
    """Maps data coordinates to the plot area and draws the frame, ticks and labels."""

    def __init__(self, x_range: tuple[float, float], y_range: tuple[float, float]) -> None:
        self.x0, self.x1 = _padded(*x_range)
        self.y0, self.y1 = _padded(*y_range)

    def x(self, value: float) -> float:
        return LEFT + (value - self.x0) / (self.x1 - self.x0) * (WIDTH - LEFT - RIGHT)

    def y(self, value: float) -> float:
        return HEIGHT - BOTTOM - (value - self.y0) / (self.y1 - self.y0) * (HEIGHT - TOP - BOTTOM)

    def frame(self, title: str, xlabel: str, ylabel: str) -> list[str]:
        parts = [f'<rect x="{LEFT}" y="{TOP}" width="{WIDTH - LEFT - RIGHT}" '
                 f'height="{HEIGHT - TOP - BOTTOM}" fill="none" stroke="#444"/>']
        for t in nice_ticks(self.x0, self.x1):
            px = _num(self.x(t))
            parts.append(f'<line x1="{px}" y1="{HEIGHT - BOTTOM}" x2="{px}" y2="{HEIGHT - BOTTOM + 4}" '
                         f'stroke="#444"/><text x="{px}" y="{HEIGHT - BOTTOM + 16}" '
                         f'text-anchor="middle">{_label(t)}</text>')
        for t in nice_ticks(self.y0, self.y1):
            py = _num(self.y(t))
            parts.append(f'<line x1="{LEFT - 4}" y1="{py}" x2="{LEFT}" y2="{py}" stroke="#444"/>'
                         f'<text x="{LEFT - 6}" y="{py}" text-anchor="end" '
                         f'dominant-baseline="middle">{_label(t)}</text>')
        parts.append(_text(WIDTH / 2, 18, title, 'text-anchor="middle" font-weight="bold"'))
        parts.append(_text((LEFT + WIDTH - RIGHT) / 2, HEIGHT - 10, xlabel, 'text-anchor="middle"'))
        parts.append(_text(14, (TOP + HEIGHT - BOTTOM) / 2, ylabel,
                           f'text-anchor="middle" transform="rotate(-90 14 {_num((TOP + HEIGHT - BOTTOM) / 2)})"'))
        return parts


def _padded(lo: float, hi: float) -> tuple[float, float]:
    lo, hi = float(lo), float(hi)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return 0.0, 1.0
    if hi <= lo:
        return lo - 0.5, hi + 0.5
    pad = (hi - lo) * 0.03
    return lo - pad, hi + pad


def _text(x: float, y: float, text: str, attrs: str = "") -> str:
    return f'<text x="{_num(x)}" y="{_num(y)}" {attrs}>{html.escape(text)}</text>'


def _svg(parts: list[str], title: str) -> str:
    return (f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
            f'height="{HEIGHT}" font-family="sans-serif" font-size="11" role="img">'
            f"<title>{html.escape(title)}</title>" + "".join(parts) + "</svg>")


def _color(i: int, colors: Sequence[int] | None) -> str:
    return COLORS[(colors[i] if colors else i) % len(COLORS)]


def _legend(names: Sequence[str], dashed: Sequence[bool] | None = None,
            colors: Sequence[int] | None = None, *, bottom_right: bool = False) -> list[str]:
    parts = []
    x = WIDTH - RIGHT - 190 if bottom_right else LEFT + 8
    for i, name in enumerate(names):
        y = HEIGHT - BOTTOM - 10 - 14 * (len(names) - 1 - i) if bottom_right else TOP + 12 + 14 * i
        dash = ' stroke-dasharray="5 3"' if dashed and dashed[i] else ""
        parts.append(f'<line x1="{x}" y1="{y}" x2="{x + 18}" y2="{y}" '
                     f'stroke="{_color(i, colors)}" stroke-width="2"{dash}/>')
        parts.append(_text(x + 22, y, name, 'dominant-baseline="middle"'))
    return parts


def _finite_range(arrays: Sequence[np.ndarray]) -> tuple[float, float]:
    values = np.concatenate([np.asarray(a, dtype=np.float64).ravel() for a in arrays]) if arrays else np.array([])
    values = values[np.isfinite(values)]
    return (float(values.min()), float(values.max())) if len(values) else (0.0, 1.0)


def scatter(series: Sequence[Series], title: str, xlabel: str, ylabel: str, *,
            diagonal: bool = False, hline: float | None = None) -> str:
    """Points per series (x, y); optional ``y = x`` line (predicted vs actual) or a horizontal line."""
    x_range = _finite_range([s[1] for s in series])
    y_range = _finite_range([s[2] for s in series])
    if diagonal:
        x_range = y_range = (min(x_range[0], y_range[0]), max(x_range[1], y_range[1]))
    if hline is not None:
        y_range = (min(y_range[0], hline), max(y_range[1], hline))
    ax = _Axes(x_range, y_range)
    parts = ax.frame(title, xlabel, ylabel)
    for i, (_, xs, ys) in enumerate(series):
        keep = np.isfinite(xs) & np.isfinite(ys)
        dots = "".join(f'<circle cx="{_num(ax.x(a))}" cy="{_num(ax.y(b))}" r="1.6"/>'
                       for a, b in zip(np.asarray(xs)[keep], np.asarray(ys)[keep], strict=True))
        parts.append(f'<g fill="{COLORS[i % len(COLORS)]}" fill-opacity="0.35">{dots}</g>')
    if diagonal:
        lo, hi = x_range
        parts.append(f'<line x1="{_num(ax.x(lo))}" y1="{_num(ax.y(lo))}" x2="{_num(ax.x(hi))}" '
                     f'y2="{_num(ax.y(hi))}" stroke="black"/>')
    if hline is not None:
        parts.append(f'<line x1="{LEFT}" y1="{_num(ax.y(hline))}" x2="{WIDTH - RIGHT}" '
                     f'y2="{_num(ax.y(hline))}" stroke="black"/>')
    parts += _legend([s[0] for s in series])
    return _svg(parts, title)


def lines(series: Sequence[Series], title: str, xlabel: str, ylabel: str, *,
          dashed: Sequence[bool] | None = None, colors: Sequence[int] | None = None,
          diagonal: bool = False) -> str:
    """Polylines per series (e.g. ROC curves, legend bottom right); ``diagonal`` adds the chance line.

    ``colors`` picks a palette index per series (e.g. one colour per class, dashed for the champion).
    """
    ax = _Axes(_finite_range([s[1] for s in series]), _finite_range([s[2] for s in series]))
    parts = ax.frame(title, xlabel, ylabel)
    if diagonal:
        parts.append(f'<line x1="{_num(ax.x(0))}" y1="{_num(ax.y(0))}" x2="{_num(ax.x(1))}" '
                     f'y2="{_num(ax.y(1))}" stroke="grey" stroke-dasharray="4 3"/>')
    for i, (_, xs, ys) in enumerate(series):
        points = " ".join(f"{_num(ax.x(a))},{_num(ax.y(b))}" for a, b in zip(xs, ys, strict=True))
        dash = ' stroke-dasharray="5 3"' if dashed and dashed[i] else ""
        parts.append(f'<polyline points="{points}" fill="none" stroke="{_color(i, colors)}" '
                     f'stroke-width="1.5"{dash}/>')
    parts += _legend([s[0] for s in series], dashed, colors, bottom_right=True)
    return _svg(parts, title)


def histogram(series: Sequence[tuple[str, np.ndarray]], title: str, xlabel: str, *,
              bins: int = 60) -> str:
    """Overlaid histograms on shared bin edges (rows per bin)."""
    lo, hi = _finite_range([s[1] for s in series])
    edges = np.linspace(lo, hi if hi > lo else lo + 1, bins + 1)
    counts = [np.histogram(np.asarray(v)[np.isfinite(v)], bins=edges)[0] for _, v in series]
    ax = _Axes((float(edges[0]), float(edges[-1])), (0.0, float(max(int(c.max()) for c in counts) or 1)))
    parts = ax.frame(title, xlabel, "rows")
    for i, c in enumerate(counts):
        color = COLORS[i % len(COLORS)]
        bars = "".join(
            f'<rect x="{_num(ax.x(a))}" y="{_num(ax.y(n))}" width="{_num(ax.x(b) - ax.x(a))}" '
            f'height="{_num(ax.y(0) - ax.y(n))}"/>'
            for a, b, n in zip(edges[:-1], edges[1:], c, strict=True) if n)
        parts.append(f'<g fill="{color}" fill-opacity="0.45">{bars}</g>')
    parts += _legend([s[0] for s in series])
    return _svg(parts, title)


def heatmap(counts: np.ndarray, labels: Sequence[str], title: str, xlabel: str, ylabel: str) -> str:
    """A square matrix as shaded cells with each count written in its cell (confusion matrix)."""
    k = len(labels)
    size = min(WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM) / max(k, 1)
    peak = max(int(counts.max()), 1) if counts.size else 1
    parts = []
    for (i, j), value in np.ndenumerate(counts):
        share = value / peak
        x, y = LEFT + j * size, TOP + i * size
        fill = f"rgb({int(247 - 239 * share)},{int(251 - 203 * share)},{int(255 - 148 * share)})"
        parts.append(f'<rect x="{_num(x)}" y="{_num(y)}" width="{_num(size)}" height="{_num(size)}" '
                     f'fill="{fill}" stroke="#fff"/>')
        parts.append(_text(x + size / 2, y + size / 2, f"{int(value):,}",
                           f'text-anchor="middle" dominant-baseline="middle" '
                           f'fill="{"white" if share > 0.5 else "black"}"'))
    for idx, name in enumerate(labels):
        parts.append(_text(LEFT + (idx + 0.5) * size, TOP + k * size + 14, str(name), 'text-anchor="middle"'))
        parts.append(_text(LEFT - 6, TOP + (idx + 0.5) * size, str(name),
                           'text-anchor="end" dominant-baseline="middle"'))
    parts.append(_text(WIDTH / 2, 18, title, 'text-anchor="middle" font-weight="bold"'))
    parts.append(_text(LEFT + k * size / 2, TOP + k * size + 32, xlabel, 'text-anchor="middle"'))
    parts.append(_text(14, TOP + k * size / 2, ylabel,
                       f'text-anchor="middle" transform="rotate(-90 14 {_num(TOP + k * size / 2)})"'))
    return _svg(parts, title)



def intervals(labels: Sequence[str], series: Sequence[tuple[str, Sequence[float | None],
              Sequence[float | None], Sequence[float | None]]], title: str, xlabel: str, *,
              muted: Sequence[bool] | None = None, vline: float | None = None) -> str:
    """One row per label: per series ``(name, values, lowers, uppers)`` a dot at the value and a
    bar over its interval, e.g. a metric per slice for candidate and champion. ``muted`` rows
    (small slices) are drawn grey; ``vline`` marks a threshold. Missing numbers are left out."""
    left, top, row_h = 12 + 7 * max((len(t) for t in labels), default=4), 48, 22
    width, height = left + 340, top + BOTTOM + row_h * max(len(labels), 1)
    numbers = [v for _, *cols in series for col in cols for v in col if v is not None]
    numbers += [vline] if vline is not None else []
    lo, hi = _padded(*_finite_range([np.array(numbers, dtype=np.float64)]))
    span = width - left - RIGHT

    def x(value: float) -> str:
        return _num(left + (value - lo) / (hi - lo) * span)

    bottom = height - BOTTOM
    parts = [f'<rect x="{left}" y="{top}" width="{span}" height="{bottom - top}" fill="none" stroke="#444"/>']
    for t in nice_ticks(lo, hi):
        parts.append(f'<line x1="{x(t)}" y1="{bottom}" x2="{x(t)}" y2="{bottom + 4}" stroke="#444"/>')
        parts.append(f'<text x="{x(t)}" y="{bottom + 16}" text-anchor="middle">{_label(t)}</text>')
    if vline is not None:
        parts.append(f'<line x1="{x(vline)}" y1="{top}" x2="{x(vline)}" y2="{bottom}" '
                     'stroke="#a00" stroke-dasharray="4 3"/>')
    offsets = np.linspace(-5, 5, len(series)) if len(series) > 1 else np.zeros(1)
    for r, label in enumerate(labels):
        y = top + row_h * (r + 0.5)
        grey = bool(muted and muted[r])
        fill = ' fill="#999"' if grey else ""
        parts.append(_text(left - 6, y, label, f'text-anchor="end" dominant-baseline="middle"{fill}'))
        for s, (_, values, lowers, uppers) in enumerate(series):
            color = "#bbb" if grey else COLORS[s % len(COLORS)]
            cy = _num(y + offsets[s])
            if lowers[r] is not None and uppers[r] is not None:
                parts.append(f'<line x1="{x(lowers[r])}" y1="{cy}" x2="{x(uppers[r])}" y2="{cy}" '
                             f'stroke="{color}" stroke-width="2"/>')
            if values[r] is not None:
                parts.append(f'<circle cx="{x(values[r])}" cy="{cy}" r="3.5" fill="{color}"/>')
    parts.append(_text((left + width - RIGHT) / 2, 16, title, 'text-anchor="middle" font-weight="bold"'))
    parts.append(_text((left + width - RIGHT) / 2, height - 10, xlabel, 'text-anchor="middle"'))
    for s, (name, *_) in enumerate(series):
        lx = left + 8 + 120 * s
        parts.append(f'<circle cx="{lx}" cy="{top - 12}" r="3.5" fill="{COLORS[s % len(COLORS)]}"/>')
        parts.append(_text(lx + 8, top - 12, name, 'dominant-baseline="middle"'))
    return (f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
            f'font-family="sans-serif" font-size="11" role="img"><title>{html.escape(title)}</title>'
            + "".join(parts) + "</svg>")
