"""The worker tools/run_offline.py runs DAGs in: ready before the trigger, clean when not used."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tools.run_offline import DagWorker, RunRejected, airflow_env

# nothing here reaches SageMaker: a closed port makes any stray call fail loudly
UNUSED_ENDPOINT = "http://127.0.0.1:9"


def test_worker_rejects_a_bad_conf_and_an_untriggered_worker_is_stopped(airflow_db, tmp_path):
    env = airflow_env(Path(os.environ["AIRFLOW_HOME"]), UNUSED_ENDPOINT)
    idle = DagWorker(env, "mlops_pipeline", tmp_path / "idle.log")
    rejecting = DagWorker(env, "mlops_pipeline", tmp_path / "rejecting.log")
    try:
        assert idle.wait_ready() > 0  # seconds it took: Airflow import, DAG parse, Execution API
        with pytest.raises(RunRejected, match="'xgboost' is not one of"):
            rejecting.trigger({"model": "xgboost"})
    finally:
        idle.stop()
        rejecting.stop()
    assert idle.process.returncode is not None and idle.process.returncode < 0  # killed, not left behind
    assert not idle.result_file.exists()
    assert rejecting.process.returncode == 2
    assert "Filling up the DagBag" in (tmp_path / "rejecting.log").read_text()
