"""Benchmark: parse time of dags/mlops_pipeline.py vs a bare DAG file importing the same operators.

Each measurement is a fresh interpreter that imports Airflow's DagBag first (not timed: every
DAG processor has it loaded) and then times ``DagBag(dag_folder=<file>)``, which is what the DAG
processor pays per file: our imports (provider operators, ``sagemaker_mlops``) plus building the
DAG. The bare file, generated in a temp dir, imports the same provider operators and builds one
task per operator class with static arguments, so the ratio isolates what our DAG adds.

When the goal (≤ 1.1×) is missed, the note splits each file's parse into its top-level imports
and building the DAG, and names the functions that cost most while building ours (cProfile).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

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


# Child: the file's top-level imports alone (timed), then DagBag of the file with those imports
# cached (timed, under cProfile): what building the DAG costs beyond importing. Prints JSON.
SPLIT_CHILD = """\
import ast, cProfile, json, pstats, sys, time
from airflow.dag_processing.dagbag import DagBag
path = sys.argv[1]
tree = ast.parse(open(path).read(), path)
imports = ast.Module([n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))], [])
started = time.perf_counter()
exec(compile(imports, path, "exec"), {"__name__": "bench_imports_only"})
imports_s = time.perf_counter() - started
profile = cProfile.Profile()
started = time.perf_counter()
profile.enable()
DagBag(dag_folder=path)
profile.disable()
build_s = time.perf_counter() - started
stats = pstats.Stats(profile).stats
top = sorted(((cum, f"{file.rsplit('/', 3)[-2]}/{file.rsplit('/', 1)[-1]}:{func}")
              for (file, _l, func), (_c, _n, _t, cum, _) in stats.items()
              if "/airflow/sdk/" in file or "/jsonschema/" in file or "sagemaker_mlops" in file
              if func not in ("<module>", "__call__", "wrapper")), reverse=True)[:5]
print(json.dumps({"imports_s": imports_s, "build_s": build_s, "top": top}))
"""


def split_seconds(dag_file: Path, env: dict[str, str]) -> dict[str, Any]:
    """Imports vs DAG building for one file (one fresh interpreter), with the building's top
    functions by cumulative time."""
    _, out = run_timed([sys.executable, "-c", SPLIT_CHILD, str(dag_file)], env=env, cwd=ROOT)
    return json.loads(out.strip().splitlines()[-1])


def describe_split(ours: dict[str, Any], bare: dict[str, Any]) -> str:
    top = ", ".join(f"{name} {cum * 1000:.0f} ms" for cum, name in ours["top"])
    return (f"DAG parse profile: top-level imports {ours['imports_s'] * 1000:.0f} ms vs "
            f"{bare['imports_s'] * 1000:.0f} ms bare; building the DAG (DagBag with imports "
            f"cached) {ours['build_s'] * 1000:.0f} ms vs {bare['build_s'] * 1000:.0f} ms bare "
            f"(under cProfile); its top functions by cumulative time: {top}")


MIN_PAIRS = 15  # a parse is ~0.3 s and the difference sought ~30 ms: fewer pairs flip the verdict


def run(repeat: int, quick: bool = False) -> tuple[list[Row], list[str]]:
    """Interleaved parses of both files, ``repeat`` times each (at least MIN_PAIRS unless quick),
    the order inside a pair alternating so that a drift in the machine's load favours neither."""
    n = repeat if quick else max(repeat, MIN_PAIRS)
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
            if i % 2:
                bare_runs.append(parse_seconds(bare, env))
                ours_runs.append(parse_seconds(DAG_FILE, env))
            else:
                ours_runs.append(parse_seconds(DAG_FILE, env))
                bare_runs.append(parse_seconds(bare, env))
        row = Row("DAG file parse time (DagBag of the file)", median(ours_runs), median(bare_runs),
                  "s", f"≤ {GOAL_RATIO}×", None, runs={"ours": ours_runs, "baseline": bare_runs})
        row.met = row.ratio <= GOAL_RATIO
        notes = []
        if not row.met:
            notes.append(describe_split(split_seconds(DAG_FILE, env), split_seconds(bare, env)))
    return [row], notes
