"""``python -m bench`` (``./dev bench``): every benchmark, one performance table.

    python -m bench                    # all figures, 3 repeats each (about 35 min on 2 cores)
    python -m bench --quick            # tiny sizes, 1 repeat (what the smoke test runs)
    python -m bench --only evaluate    # one benchmark (comma-separate several)
    python -m bench --repeat 5

Prints ``figure | ours (median) | baseline (median) | ratio | goal | met?`` on stdout, the
profile notes under it (progress goes to stderr), and writes the same as bench/results/results.md
and results.json (every run's raw numbers). Exit status 0 even when goals are missed: a benchmark
reports, it does not gate.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.common import (
    GIB,
    MIB,
    PLUGINS,
    RESULTS_DIR,
    ROOT,
    TRAINING,
    Row,
    log,
    machine,
    median,
    profile_script,
    project_env,
    render_table,
    write_results,
)

for _path in (ROOT, PLUGINS):  # `python -m bench` from the repo root without ./dev's PYTHONPATH
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

Result = tuple[list[Row], list[str]]


@dataclass(frozen=True)
class Sizes:
    eval_rows: tuple[int, ...]
    eval_model: str
    eval_bootstrap: int
    shard_rows: int
    shard_parts: int
    emulator_args: tuple[str, ...]


FULL = Sizes((2_000_000, 5_000_000), "linear_regression", 200, 2_000_000, 8, ())
QUICK = Sizes((3_000,), "linear_regression", 20, 20_000, 4, ("--quick",))


# -- evaluate.py (bench/bench_evaluate.py owns the set-up and the naive contender) ----------------
def run_evaluate(repeat: int, sizes: Sizes) -> Result:
    from bench import bench_evaluate

    rows: list[Row] = []
    notes: list[str] = []
    for n in sizes.eval_rows:
        with tempfile.TemporaryDirectory(prefix="bench-evaluate-") as tmp:
            work = Path(tmp)
            log(f"evaluate: preparing {n:,} test rows (set-up, not timed)")
            model_dir, test_dir = bench_evaluate.prepare(work, n, sizes.eval_model, seed=7)
            py = sys.executable
            ours_cmd = [py, str(TRAINING / "evaluate.py"), "--model-dir", str(model_dir),
                        "--test-dir", str(test_dir), "--champion-dir", str(work / "no-champion"),
                        "--output-dir", str(work / "evaluation"),
                        "--bootstrap-samples", str(sizes.eval_bootstrap)]
            naive_cmd = [py, bench_evaluate.__file__, "--seed", "7", "--naive-run",
                         str(model_dir / "model.tar.gz"), str(test_dir), str(sizes.eval_bootstrap)]
            env = project_env(OPT_ML_DIR=str(work / "opt" / "ml"))
            ours, naive = [], []
            for i in range(repeat):
                log(f"evaluate {n:,} rows {i + 1}/{repeat}")
                ours.append(bench_evaluate.run_child(ours_cmd, env))
                naive.append(bench_evaluate.run_child(naive_cmd, env))
            label = f"evaluate.py, {n / 1e6:g} M test rows" if n >= 100_000 else f"evaluate.py, {n:,} test rows"
            time_row = Row(f"{label}: time", median([w for w, _ in ours]), median([w for w, _ in naive]),
                           "s", "≥ 2× faster", None, speedup=True,
                           runs={"ours": [w for w, _ in ours], "baseline": [w for w, _ in naive]})
            time_row.met = time_row.ratio >= 2
            rss_ours, rss_naive = [r / MIB for _, r in ours], [r / MIB for _, r in naive]
            rss_row = Row(f"{label}: peak RSS", median(rss_ours), median(rss_naive), "MiB", "≤ 1 GiB",
                          max(rss_ours) * MIB <= GIB, detail=f"max {max(rss_ours):,.0f} MiB",
                          runs={"ours": rss_ours, "baseline": rss_naive})
            rows += [time_row, rss_row]
            if not time_row.met or not rss_row.met:
                notes.append(f"{label} profile: " + profile_script(ours_cmd, env, work / "evaluate.prof"))
    notes.append(f"evaluate baseline: pandas load of every row, one predict, sklearn.metrics on each of "
                 f"{sizes.eval_bootstrap} bootstrap replicates (same model '{sizes.eval_model}', same "
                 "replicates as evaluate.py)")
    return rows, notes


# -- the emulator (bench/bench_emulator.py measures; this maps its JSON to table rows) ------------
def run_emulator(repeat: int, sizes: Sizes) -> Result:
    from bench import bench_emulator

    clients, per_client, invocations = 50, 100, 1000
    args = ["--clients", str(clients), "--per-client", str(per_client), "--invocations",
            str(invocations), "--jobs", str(max(10, 3 * repeat)), *sizes.emulator_args]
    if sizes.emulator_args:  # --quick: bench_emulator's own tiny counts
        per_client, invocations = 5, 50
    with tempfile.TemporaryDirectory(prefix="bench-emulator-") as tmp:
        out = Path(tmp) / "figures.json"
        log("emulator: per-job overhead and InvokeEndpoint latency (bench/bench_emulator.py)")
        with contextlib.redirect_stdout(sys.stderr):  # its own tables are progress here
            bench_emulator.main([*args, "--out", str(out)])
        figures = json.loads(out.read_text())
    rows = []
    for kind in ("processing", "training"):
        job = figures["jobs"][kind]
        rows.append(Row(f"per-job emulator overhead, {kind} job (wall vs script)", job["wall_s"],
                        job["script_s"], "s", "wall − script < 1 s", job["overhead_s"] < 1,
                        detail=f"overhead {job['overhead_s']:.2f} s, max {job['overhead_max_s']:.2f} s"))
    invoke = figures["invoke"]
    base = invoke["baseline_predict_ms"]
    notes = []
    for n, expected in ((1, invocations), (clients, clients * per_client)):
        stats = invoke[f"clients_{n}"]
        errors = expected - stats["n"]
        rows.append(Row(f"InvokeEndpoint p50, {n} client{'s' if n > 1 else ''} (vs predict())",
                        stats["p50"], base["p50"], "ms", "-", None))
        rows.append(Row(f"InvokeEndpoint p99, {n} client{'s' if n > 1 else ''} (vs predict())",
                        stats["p99"], base["p99"], "ms", "p99 ≤ 20 ms, 0 errors",
                        stats["p99"] <= 20 and errors == 0, detail=f"{errors} errors"))
        if n == 1 and not rows[-1].met:
            from bench import profile_invoke

            log("emulator: InvokeEndpoint goal missed, timing each layer of one request")
            notes.append(profile_invoke.describe(profile_invoke.layers(invocations)))
        if n > 1:
            notes.append(little_law_note(n, stats["requests_per_s"], stats["client_cpu_ms_per_request"]))
    return rows, notes


def little_law_note(clients: int, rate: float, client_cpu_ms: float) -> str:
    """Why a closed loop of many clients on this machine cannot see a low p99, from two measured
    numbers: the throughput reached and the CPU the clients alone spend per request."""
    cores = os.cpu_count() or 1
    ceiling = 1000 * cores / client_cpu_ms  # requests/s if the server side cost nothing at all
    return (
        f"InvokeEndpoint at {clients} clients: {rate:.0f} requests/s overall. {clients} clients each "
        f"waiting for its answer (a closed loop) see a mean latency of {clients} / {rate:.0f} = "
        f"{1000 * clients / rate:.0f} ms by Little's law; p99 ≤ 20 ms needs more than "
        f"{clients / 0.020:.0f} requests/s. The clients alone (boto3 building, signing and parsing "
        f"each call) used {client_cpu_ms:.2f} ms CPU per request, so {cores} cores could not serve "
        f"more than {ceiling:.0f} requests/s even if the emulator and the model server cost "
        f"nothing: a mean latency of at least {1000 * clients / ceiling:.0f} ms at {clients} clients"
    )


def _pipeline(repeat: int, sizes: Sizes) -> Result:
    from bench import bench_pipeline

    return bench_pipeline.run(repeat)


def _dag_parse(repeat: int, sizes: Sizes) -> Result:
    from bench import bench_dag_parse

    return bench_dag_parse.run(repeat, quick=sizes is QUICK)


def _sharding(repeat: int, sizes: Sizes) -> Result:
    from bench import bench_sharding

    return bench_sharding.run(repeat, rows=sizes.shard_rows, parts=sizes.shard_parts)


BENCHMARKS: dict[str, Callable[[int, Sizes], Result]] = {
    "pipeline": _pipeline,
    "dag_parse": _dag_parse,
    "evaluate": run_evaluate,
    "emulator": run_emulator,
    "sharding": _sharding,
}


def parse_only(value: str) -> list[str]:
    names = [n.strip() for n in value.split(",") if n.strip()]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown benchmark {', '.join(unknown) or repr(value)}; choose from {', '.join(BENCHMARKS)}")
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 1 repeat (smoke test)")
    parser.add_argument("--repeat", type=int, default=None,
                        help="runs per figure, the median is reported (default 3; 1 with --quick)")
    parser.add_argument("--only", type=parse_only, default=list(BENCHMARKS), metavar="NAME[,NAME]",
                        help=f"run only these benchmarks: {', '.join(BENCHMARKS)}")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR,
                        help="where results.md and results.json go (default bench/results/)")
    args = parser.parse_args(argv)
    repeat = args.repeat if args.repeat is not None else (1 if args.quick else 3)
    if repeat < 1:
        parser.error(f"--repeat must be at least 1, got {repeat}")
    sizes = QUICK if args.quick else FULL

    rows: list[Row] = []
    notes: list[str] = []
    started = time.perf_counter()
    load_at_start = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    for name in args.only:
        log(f"== {name}")
        new_rows, new_notes = BENCHMARKS[name](repeat, sizes)
        rows += new_rows
        notes += new_notes
    settings = {"quick": args.quick, "repeat": repeat, "only": args.only}
    print(render_table(rows))
    if notes:
        print("\n" + "\n".join(f"- {n}" for n in notes))
    print(f"\nmeasured on {machine()} (load at start {load_at_start})")
    json_path, md_path = write_results(rows, notes, settings, args.results_dir)
    log(f"done in {time.perf_counter() - started:.0f} s; wrote {md_path} and {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
