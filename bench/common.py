"""Shared pieces of the benchmarks: timing a child process, medians, the result rows and the table.

Every figure is a median over repeated runs next to a baseline measured in the same run, because
the machine is small (2 cores) and shared: absolute numbers drift, ratios measured side by side
drift much less.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRAINING = ROOT / "include" / "training"
PLUGINS = ROOT / "plugins"
DATA_FILE = ROOT / "include" / "data" / "california_housing.csv.gz"
# preprocess.py's options for the bundled data, as the California housing pipeline spec sets them
DATA_ARGS = ("--target", "median_house_value", "--categorical-columns", "ocean_proximity",
             "--feature-recipes", "california_ratios")
RESULTS_DIR = ROOT / "bench" / "results"
MIB = 2**20
GIB = 2**30


def project_env(**extra: str) -> dict[str, str]:
    """The environment of a child that imports project code (as ``./dev`` sets it up)."""
    parts = [str(ROOT), str(PLUGINS), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in parts if p), **extra}


def run_timed(cmd: Sequence[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
              stdin: str | None = None) -> tuple[float, str]:
    """(wall seconds, stdout) of one child process; a failure raises with the child's output."""
    started = time.perf_counter()
    result = subprocess.run(list(cmd), env=env, cwd=cwd, input=stdin, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd[:3]))} ... failed ({result.returncode}):\n"
                           f"{result.stdout[-2000:]}{result.stderr[-3000:]}")
    return seconds, result.stdout


def timed(fn: Callable[[], object]) -> float:
    """Wall seconds of one call."""
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def profile_script(cmd: Sequence[str], env: dict[str, str], out: Path, top: int = 7) -> str:
    """Run a training script (``[python, script, *args]``) under cProfile; its own functions (in
    include/training) with the largest cumulative time, as one line for a table note."""
    import pstats

    subprocess.run([cmd[0], "-m", "cProfile", "-o", str(out), *cmd[1:]], env=env, check=True,
                   capture_output=True)
    stats = pstats.Stats(str(out)).stats
    total = max(cum for (_cc, _nc, _tt, cum, _callers) in stats.values())
    entries = [(cum, f"{Path(file).name}:{func}") for (file, _line, func), (_cc, _nc, _tt, cum, _c)
               in stats.items() if str(TRAINING) in file and func not in ("<module>", "main", "run_main")]
    best = sorted(entries, reverse=True)[:top]
    return f"{total:.1f} s under cProfile; " + ", ".join(f"{name} {cum:.1f} s" for cum, name in best)


def median(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("median of no measurements: was the benchmark run with --repeat 0?")
    return float(statistics.median(values))


@dataclass
class Row:
    """One line of the performance table.

    ``ratio`` is ``ours / baseline`` for costs (time, memory, latency) and ``baseline / ours`` for
    speed-ups (``speedup=True``), so a goal such as "≥ 2× faster" reads directly off the column.
    ``met`` is None when the row carries no goal of its own (context for the row above it).
    """

    figure: str
    ours: float
    baseline: float
    unit: str
    goal: str
    met: bool | None
    speedup: bool = False
    detail: str = ""  # the value that decided ``met`` when it is not the ratio, e.g. "overhead 0.4 s"
    runs: dict[str, list[float]] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        if self.speedup:
            return self.baseline / self.ours if self.ours else float("inf")
        return self.ours / self.baseline if self.baseline else float("inf")


def fmt(value: float, unit: str) -> str:
    if unit == "MiB":
        return f"{value:,.0f} MiB"
    if unit == "ms":
        return f"{value:.2f} ms"
    return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"


def ratio_text(row: Row) -> str:
    return f"{row.ratio:.2f}× faster" if row.speedup else f"{row.ratio:.2f}×"


def met_text(row: Row) -> str:
    if row.met is None:
        verdict = "-"
    else:
        verdict = "yes" if row.met else "NO"
    return f"{verdict} ({row.detail})" if row.detail else verdict


HEADER = ("figure", "ours (median)", "baseline (median)", "ratio", "goal", "met?")


def cells(row: Row) -> tuple[str, ...]:
    return (row.figure, fmt(row.ours, row.unit), fmt(row.baseline, row.unit), ratio_text(row),
            row.goal, met_text(row))


def render_table(rows: Sequence[Row]) -> str:
    """The table as aligned text for the terminal."""
    lines = [HEADER, *(cells(r) for r in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADER))]
    out = [" | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines]
    out.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(out)


def render_markdown(rows: Sequence[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in cells(r)) + " |" for r in rows]
    return "\n".join(lines)


def machine() -> str:
    """What the figures were measured on, including how busy it was (they move with the load)."""
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    return (f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"load average {load}")


def write_results(rows: Sequence[Row], notes: Sequence[str], settings: dict, out_dir: Path = RESULTS_DIR
                  ) -> tuple[Path, Path]:
    """``results.json`` (every run's raw measurements) and ``results.md`` (the table) in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    payload = {"measured_at": stamp, "machine": machine(), "settings": settings,
               "rows": [{**asdict(r), "ratio": r.ratio} for r in rows], "notes": list(notes)}
    json_path, md_path = out_dir / "results.json", out_dir / "results.md"
    json_path.write_text(json.dumps(payload, indent=2, default=str))
    md = [f"Measured {stamp} on {machine()}; settings {json.dumps(settings)}", "", render_markdown(rows)]
    if notes:
        md += ["", *(f"- {n}" for n in notes)]
    md_path.write_text("\n".join(md) + "\n")
    return json_path, md_path


def log(message: str) -> None:
    """Progress on stderr, so stdout stays the table."""
    print(f"[bench {datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)
