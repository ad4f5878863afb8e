"""Benchmark: parse time of dags/mlops_pipeline.py vs a bare DAG file importing the same operators.

Each measurement is a fresh interpreter that imports Airflow's DagBag first (not timed: every
DAG processor has it loaded) and then times ``DagBag(dag_folder=<file>)``, which is what the DAG
processor pays per file: our imports (provider operators, ``sagemaker_mlops``) plus building the
DAG. The bare file, generated in a temp dir, imports the same provider operators and builds one
task per operator class with static arguments, so the ratio isolates what our DAG adds.

When the goal (≤ 1.1×) is missed, ``python -X importtime`` of both files names the imports only
ours pays, biggest first.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import ROOT, Row, log, median, project_env, run_timed

DAG_FILE = ROOT / "dags" / "mlops_pipeline.py"
GOAL_RATIO = 1.1

BARE_DAG = '''\
"""A bare DAG with the same operator imports as mlops_pipeline (benchmark baseline)."""
from datetime import datetime

from airflow.providers.amazon.aws.operators.sagemaker import (
    SageMakerProcessingOperator,
    SageMakerTrainingOperator,
)
from airflow.providers.amazon.aws.operators.sns import SnsPublishOperator
from airflow.providers.standard.operators.python import BranchPythonOperator
from airflow.sdk import DAG, chain, task

with DAG(dag_id="bare_baseline", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):

    @task
    def plan() -> dict:
        return {}

    chain(
        plan(),
        SageMakerProcessingOperator(task_id="preprocess", config={}),
        SageMakerTrainingOperator(task_id="train", config={}),
        BranchPythonOperator(task_id="gate", python_callable=lambda: "alert"),
        SnsPublishOperator(task_id="alert", target_arn="arn:aws:sns:us-east-1:1:t", message="m"),
    )
'''

# Child: Airflow's DagBag already imported, then one timed parse of the file; prints seconds.
PARSE_CHILD = """\
import sys, time
from airflow.dag_processing.dagbag import DagBag
started = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])
seconds = time.perf_counter() - started
if bag.import_errors or not bag.dags:
    raise SystemExit(f"{sys.argv[1]} did not parse: {bag.import_errors or 'no DAG found'}")
print(seconds)
"""


def parse_env(home: Path) -> dict[str, str]:
    """A throwaway AIRFLOW_HOME (SQLite, no examples) so parsing never touches a real deployment."""
    return project_env(
        AIRFLOW_HOME=str(home), AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
        AIRFLOW__CORE__DAGS_FOLDER=str(home / "dags"), MLOPS_SCHEDULE="none",
    )


def parse_seconds(dag_file: Path, env: dict[str, str]) -> float:
    _, out = run_timed([sys.executable, "-c", PARSE_CHILD, str(dag_file)], env=env, cwd=ROOT)
    return float(out.strip().splitlines()[-1])


_IMPORTTIME = re.compile(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)")


def import_costs(dag_file: Path, env: dict[str, str]) -> dict[str, tuple[int, int]]:
    """{module: (self µs, cumulative µs)} of the imports triggered by parsing ``dag_file``."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-c", PARSE_CHILD, str(dag_file)],
                            env=env, cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"importtime run of {dag_file} failed:\n{result.stderr[-2000:]}")
    costs = {}
    for line in result.stderr.splitlines():
        match = _IMPORTTIME.match(line)
        if match:
            costs[match.group(4)] = (int(match.group(1)), int(match.group(2)))
    return costs


def extra_imports(ours: dict[str, tuple[int, int]], bare: dict[str, tuple[int, int]],
                  top: int = 6) -> list[tuple[str, float]]:
    """Top-level modules only our DAG imports, with the self time of everything under them (ms)."""
    only = {m: c for m, c in ours.items() if m not in bare}
    roots: dict[str, float] = {}
    for module, (self_us, _cum) in only.items():
        roots.setdefault(_root(module, only), 0.0)
        roots[_root(module, only)] += self_us / 1000
    return sorted(roots.items(), key=lambda kv: kv[1], reverse=True)[:top]


def _root(module: str, modules: dict) -> str:
    """The outermost package of ``module`` that is itself among ``modules`` (e.g. pandas for
    pandas.core.frame), so costs add up per thing a person could avoid importing."""
    parts = module.split(".")
    for i in range(1, len(parts) + 1):
        candidate = ".".join(parts[:i])
        if candidate in modules:
            return candidate
    return module


def run(repeat: int, quick: bool = False) -> tuple[list[Row], list[str]]:
    """Interleaved parses of both files, ``repeat`` times each (at least 5 unless quick: a parse
    is short and noisy)."""
    n = repeat if quick else max(repeat, 5)
    with tempfile.TemporaryDirectory(prefix="bench-dag-parse-") as tmp:
        home = Path(tmp)
        (home / "dags").mkdir()
        bare = home / "dags" / "bare_baseline.py"
        bare.write_text(BARE_DAG)
        env = parse_env(home)
        parse_seconds(bare, env)  # warm the OS file cache and .pyc files for both
        parse_seconds(DAG_FILE, env)
        ours_runs, bare_runs = [], []
        for i in range(n):
            log(f"dag parse {i + 1}/{n}")
            ours_runs.append(parse_seconds(DAG_FILE, env))
            bare_runs.append(parse_seconds(bare, env))
        row = Row("DAG file parse time (DagBag of the file)", median(ours_runs), median(bare_runs),
                  "s", f"≤ {GOAL_RATIO}×", None, runs={"ours": ours_runs, "baseline": bare_runs})
        row.met = row.ratio <= GOAL_RATIO
        notes = []
        if not row.met:
            extra = extra_imports(import_costs(DAG_FILE, env), import_costs(bare, env))
            notes.append("DAG parse: imports only mlops_pipeline pays (python -X importtime, self "
                         "time summed per top package): "
                         + ", ".join(f"{m} {ms:.0f} ms" for m, ms in extra))
    return [row], notes
