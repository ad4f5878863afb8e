"""Airflow environment for the whole test session, set before anything imports airflow.

Only Airflow settings live here: a throw-away AIRFLOW_HOME with its own SQLite database, the
project's dags/ and plugins/, no example DAGs. The database is migrated lazily by the
``airflow_db`` fixture, only for tests that need it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="airflow-tests-"))

os.environ.update(
    {
        "AIRFLOW_HOME": str(_AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_AIRFLOW_HOME / 'airflow.db'}",
    }
)


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated metadata database (SQLite in the session's AIRFLOW_HOME)."""
    from airflow.utils import db

    db.resetdb()
    return _AIRFLOW_HOME


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True)
