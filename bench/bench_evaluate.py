"""Benchmark: evaluate.py on a large test set vs a naive "pandas load everything + sklearn.metrics".

Builds a realistic setup from the bundled data in a temp dir (preprocess -> train -> model.tar.gz),
writes a test set of ``--rows`` rows by resampling the real rows with replacement, then runs each
contender ``--repeat`` times as a child process and reports the median wall time and the peak RSS
(``ru_maxrss`` of that child, from ``os.wait4``).

Contenders (same model, same rows, same number of bootstrap replicates):
- ``evaluate.py``: the real evaluation task (chunked reading, bounded bootstrap, plots, report);
- ``naive``: ``pd.read_csv`` of everything, one ``predict``, ``sklearn.metrics`` for each metric on
  each bootstrap replicate (index resampling of all rows);
- ``naive, no bootstrap``: the same without intervals, as a floor for load + predict + metrics.

    python bench/bench_evaluate.py                      # 2,000,000 rows, 3 runs each
    python bench/bench_evaluate.py --rows 20000 --repeat 1
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRAINING = ROOT / "include" / "training"
DATA = ROOT / "include" / "data" / "california_housing.csv.gz"
GIB = 1024 ** 3


def run_child(cmd: list[str], env: dict | None = None) -> tuple[float, int]:
    """(wall seconds, peak RSS bytes) of one child process; raises if it fails."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out_r, err_r = proc.stdout, proc.stderr
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    out, err = out_r.read(), err_r.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} failed ({proc.returncode}):\n{out.decode()}\n{err.decode()}")
    return wall, usage.ru_maxrss * 1024


def prepare(work: Path, rows: int, model: str, seed: int) -> tuple[Path, Path]:
    """Preprocess + train on the bundled data; write the resampled test set. Returns (model dir, test dir)."""
    import numpy as np
    import pandas as pd

    py = sys.executable
    raw = work / "raw"
    raw.mkdir()
    (raw / DATA.name).write_bytes(DATA.read_bytes())
    env = {**os.environ, "OPT_ML_DIR": str(work / "opt" / "ml")}
    subprocess.run([py, str(TRAINING / "preprocess.py"), "--input-dir", str(raw),
                    "--output-dir", str(work / "splits"), "--target", "median_house_value",
                    "--categorical-columns", "ocean_proximity", "--feature-recipes", "california_ratios"],
                   check=True, env=env, capture_output=True)
    subprocess.run([py, str(TRAINING / "train.py"), "--train", str(work / "splits" / "train"),
                    "--model-dir", str(work / "model"), "--model", model], check=True, env=env,
                   capture_output=True)
    model_dir = work / "model-tar"
    model_dir.mkdir()
    with tarfile.open(model_dir / "model.tar.gz", "w:gz") as tar:
        for f in (work / "model").iterdir():
            tar.add(f, arcname=f.name)
    source = pd.read_csv(DATA)
    test_dir = work / "test"
    test_dir.mkdir()
    rng = np.random.default_rng(seed)
    path = test_dir / "test.csv"
    for start in range(0, rows, 500_000):
        take = rng.integers(0, len(source), size=min(500_000, rows - start))
        source.iloc[take].to_csv(path, mode="a", header=start == 0, index=False)
    return model_dir, test_dir


def naive(model_tar: Path, test_dir: Path, samples: int, seed: int) -> None:
    """The baseline: everything in memory, sklearn.metrics on every bootstrap replicate."""
    import joblib
    import numpy as np
    import pandas as pd
    from sklearn import metrics

    sys.path.insert(0, str(TRAINING))  # the pickled Pipeline imports features.py
    work = Path(tempfile.mkdtemp())
    with tarfile.open(model_tar) as tar:
        tar.extractall(work)  # noqa: S202 - our own artifact
    meta = json.loads((work / "model_metadata.json").read_text())
    model = joblib.load(work / "model.joblib")
    frame = pd.concat([pd.read_csv(p) for p in sorted(test_dir.glob("*.csv"))], ignore_index=True)
    y = frame[meta["target"]].to_numpy()
    pred = model.predict(frame[meta["numeric_columns"] + meta["categorical_columns"]])

    def score(yt: np.ndarray, yp: np.ndarray) -> dict:
        mse = metrics.mean_squared_error(yt, yp)
        return {"r2_score": metrics.r2_score(yt, yp), "rmse": mse ** 0.5,
                "mae": metrics.mean_absolute_error(yt, yp), "mse": mse}

    point = score(y, pred)
    rng = np.random.default_rng(seed)
    reps = []
    for _ in range(samples):
        idx = rng.integers(0, len(y), len(y))
        reps.append(score(y[idx], pred[idx]))
    out = {k: {"value": v, "ci": list(np.percentile([r[k] for r in reps], [2.5, 97.5])) if reps else None}
           for k, v in point.items()}
    (work / "evaluation.json").write_text(json.dumps(out))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=2_000_000)
    p.add_argument("--repeat", type=int, default=3, help="runs per contender (median reported)")
    p.add_argument("--model", default="linear_regression", help="the pipeline's default model")
    p.add_argument("--bootstrap-samples", type=int, default=200,
                   help="replicates for both contenders (the naive one pays per replicate)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--keep", action="store_true", help="keep the temp dir")
    p.add_argument("--naive-run", nargs=3, metavar=("MODEL_TAR", "TEST_DIR", "SAMPLES"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.naive_run:
        naive(Path(args.naive_run[0]), Path(args.naive_run[1]), int(args.naive_run[2]), args.seed)
        return 0

    work = Path(tempfile.mkdtemp(prefix="bench-evaluate-"))
    started = time.perf_counter()
    model_dir, test_dir = prepare(work, args.rows, args.model, args.seed)
    size = sum(f.stat().st_size for f in test_dir.iterdir())
    print(f"prepared {args.rows:,} test rows ({size / 1e6:.0f} MB CSV), model {args.model}, "
          f"in {time.perf_counter() - started:.1f}s; {args.bootstrap_samples} bootstrap replicates")
    py, me = sys.executable, str(Path(__file__).resolve())
    contenders = {
        "evaluate.py": [py, str(TRAINING / "evaluate.py"), "--model-dir", str(model_dir),
                        "--test-dir", str(test_dir), "--champion-dir", str(work / "no-champion"),
                        "--output-dir", str(work / "evaluation"),
                        "--bootstrap-samples", str(args.bootstrap_samples)],
        "naive": [py, me, "--seed", str(args.seed), "--naive-run", str(model_dir / "model.tar.gz"),
                  str(test_dir), str(args.bootstrap_samples)],
        "naive, no bootstrap": [py, me, "--naive-run", str(model_dir / "model.tar.gz"), str(test_dir), "0"],
    }
    env = {**os.environ, "OPT_ML_DIR": str(work / "opt" / "ml")}
    results = {}
    for name, cmd in contenders.items():
        runs = [run_child(cmd, env) for _ in range(args.repeat)]
        results[name] = (statistics.median(w for w, _ in runs), max(r for _, r in runs))
    base_wall, base_rss = results["naive"]
    print(f"\n{'contender':<22} {'rows':>10} {'median wall s':>14} {'peak RSS MiB':>13} "
          f"{'time vs naive':>14} {'RSS vs naive':>13}")
    for name, (wall, rss) in results.items():
        print(f"{name:<22} {args.rows:>10,} {wall:>14.2f} {rss / 2**20:>13.0f} "
              f"{base_wall / wall:>13.2f}x {base_rss / rss:>12.2f}x")
    wall, rss = results["evaluate.py"]
    print(f"\nevaluate.py peak RSS {rss / 2**20:.0f} MiB ({'under' if rss < GIB else 'OVER'} the 1 GiB budget); "
          f"{base_wall / wall:.1f}x faster than the naive baseline")
    if args.keep:
        print(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
