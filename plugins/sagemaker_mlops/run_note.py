"""The run's note: the verdict's summary line, so the grid answers "why" without opening a log.

Airflow 3.3 gives a task no way to write its own run's note: the Task SDK's Execution API reads
``dag_run.note`` but has no call that changes it (``api_fastapi/execution_api/routes``), and
tasks have no database access. The note is a field of the public REST API
(``PATCH /api/v2/dags/{dag_id}/dagRuns/{run_id}?update_mask=note``, at most 1000 characters), so
the task calls that, as a user, with the credentials of an Airflow connection (setting
``run_note_conn_id``, default ``airflow_api``): conn type HTTP, host the api-server's URL (e.g.
``http://airflow-apiserver:8080``), login and password of a user allowed to edit DAG runs. The
token comes from ``POST /auth/token``, which the simple and the FAB auth managers serve.

Without that connection the note is left alone (logged once); the summary line is still in the
task log, in verdict.json and behind the report link. A failing call only logs a warning: the
note explains a decision, it never changes one.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

import httpx

from sagemaker_mlops.verdict import Verdict, format_number, summary_line

log = logging.getLogger(__name__)

NOTE_MAX = 1000  # DAGRunPatchBody.note


def verdict_note(verdict: Verdict) -> str:
    """The summary line, plus each failed check with its value and requirement."""
    failed = [
        "load_check (the model did not load and predict)" if c.metric == "load_check"
        else f"{c.metric} {format_number(c.value)} (required {c.op} {format_number(c.threshold)})"
        for c in verdict.failed_checks
    ]
    return summary_line(verdict) + (f"; failed: {', '.join(failed)}" if failed else "")


def api_base_url(host: str, schema: str | None = None, port: int | None = None) -> str:
    """The api-server's base URL from a connection's host / schema / port."""
    host = host.strip().rstrip("/")
    if "://" not in host:
        host = f"{schema or 'http'}://{host}"
    if port and host.count(":") < 2:
        host = f"{host}:{port}"
    return host


def set_run_note(dag_id: str, run_id: str, note: str, conn_id: str | None = None) -> bool:
    """Write ``note`` as the run's note through the REST API; False when it could not.

    ``conn_id`` defaults to the ``run_note_conn_id`` setting.
    """
    from airflow.sdk import BaseHook

    from sagemaker_mlops.settings import runtime_setting

    conn_id = conn_id or runtime_setting("run_note_conn_id")

    try:
        connection = BaseHook.get_connection(conn_id)
    except Exception:  # the SDK raises AirflowNotFoundException; older paths other errors
        log.info("Run note not set: no Airflow connection %r (docs/approval.md, 'Run note')",
                 conn_id)
        return False
    base = api_base_url(connection.host or "", connection.schema, connection.port)
    try:
        with httpx.Client(base_url=base, timeout=30) as http:
            token = http.post("/auth/token", json={"username": connection.login,
                                                   "password": connection.password})
            token.raise_for_status()
            response = http.patch(
                f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}",
                params={"update_mask": "note"},
                json={"note": note[:NOTE_MAX]},
                headers={"Authorization": f"Bearer {token.json()['access_token']}"},
            )
            response.raise_for_status()
    except (httpx.HTTPError, KeyError, ValueError) as exc:
        log.warning("Run note not set through %s (connection %r): %s", base, conn_id, exc)
        return False
    log.info("Run note: %s", note[:NOTE_MAX])
    return True
