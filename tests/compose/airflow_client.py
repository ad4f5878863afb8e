"""The slice of Airflow 3's REST API a user needs to schedule and trigger a DAG."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx

TASK_FAILURES = {"failed", "upstream_failed"}


class AirflowApiError(RuntimeError):
    """The API refused a request, or a run failed; the message carries the evidence."""


class AirflowClient:
    def __init__(self, base_url: str, username: str, password: str) -> None:
        self.base_url = base_url.rstrip("/")
        response = httpx.post(
            f"{self.base_url}/auth/token",
            json={"username": username, "password": password},
            timeout=30,
        )
        if response.status_code != 201:
            raise AirflowApiError(f"login as {username!r} failed: {response.status_code} {response.text}")
        self.token: str = response.json()["access_token"]
        self._http = httpx.Client(
            base_url=f"{self.base_url}/api/v2",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=60,
        )

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise AirflowApiError(f"{method} {path}: {response.status_code} {response.text}")
        return response.json() if response.content else None

    def wait_for_dag(self, dag_id: str, timeout: float) -> dict[str, Any]:
        """Wait until the dag-processor has parsed the DAG; fail at once on an import error."""
        deadline = time.monotonic() + timeout
        while True:
            errors = self._request("GET", "/importErrors")["import_errors"]
            if errors:
                details = "\n\n".join(f"{e['filename']}:\n{e['stack_trace']}" for e in errors)
                raise AirflowApiError(f"DAG import errors:\n{details}")
            response = self._http.get(f"/dags/{dag_id}")
            if response.status_code == 200:
                return response.json()
            if time.monotonic() > deadline:
                raise AirflowApiError(f"DAG {dag_id} not parsed after {timeout:.0f} s")
            time.sleep(2)

    def unpause(self, dag_id: str) -> None:
        dag = self._request("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
        if dag["is_paused"]:
            raise AirflowApiError(f"{dag_id} is still paused")

    def trigger(self, dag_id: str, run_id: str, conf: dict[str, Any]) -> dict[str, Any]:
        return self._request(
            "POST",
            f"/dags/{dag_id}/dagRuns",
            json={"dag_run_id": run_id, "logical_date": None, "conf": conf},
        )

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return self._request("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")[
            "task_instances"
        ]

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> str:
        """One try's log as text lines (the API serves structured JSON events)."""
        log = self._request(
            "GET",
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
            params={"full_content": True},
            headers={"Accept": "application/json"},
        )
        lines = []
        for entry in log["content"]:
            if isinstance(entry, str):
                lines.append(entry)
                continue
            line = f"{entry.get('timestamp', '')} {entry.get('level', '')} {entry.get('event', '')}"
            if entry.get("error_detail"):
                line += f"\n{json.dumps(entry['error_detail'], indent=1)}"
            lines.append(line)
        return "\n".join(lines)

    def wait_for_run(
        self, dag_id: str, run_id: str, timeout: float, on_retry: Callable[[str, str], None]
    ) -> list[dict[str, Any]]:
        """Poll until the run succeeds; on the first failed task, raise with its log.

        A task waiting for its retry is not a failure (the DAG's retries decide); its failed
        try's log goes to ``on_retry(task_id, log)`` once.
        """
        deadline = time.monotonic() + timeout
        reported: set[tuple[str, int]] = set()
        while True:
            run = self._request("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
            tasks = self.task_instances(dag_id, run_id)
            for task in tasks:
                key = (task["task_id"], task["try_number"])
                if task["state"] == "up_for_retry" and key not in reported:
                    reported.add(key)
                    on_retry(task["task_id"], self.task_log(dag_id, run_id, *key))
            failing = [t for t in tasks if t["state"] in TASK_FAILURES]
            if failing or run["state"] == "failed":
                raise AirflowApiError(self._failure_report(dag_id, run_id, run, failing or tasks))
            if run["state"] == "success":
                return tasks
            if time.monotonic() > deadline:
                states = {t["task_id"]: t["state"] for t in tasks}
                raise AirflowApiError(f"run {run_id} still {run['state']} after {timeout:.0f} s: {states}")
            time.sleep(3)

    def wait_for_end(self, dag_id: str, run_id: str, timeout: float) -> tuple[str, dict[str, str]]:
        """Poll until the run ends, failed or not: (run state, {task_id: state})."""
        deadline = time.monotonic() + timeout
        while True:
            state = self._request("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"]
            tasks = {t["task_id"]: t["state"] for t in self.task_instances(dag_id, run_id)}
            if state in ("success", "failed"):
                return state, tasks
            if time.monotonic() > deadline:
                raise AirflowApiError(f"run {run_id} still {state} after {timeout:.0f} s: {tasks}")
            time.sleep(3)

    def wait_for_hitl(self, dag_id: str, run_id: str, task_id: str, timeout: float) -> dict[str, Any]:
        """Wait until ``task_id`` asks for a human answer (its HITL detail exists and the task is
        parked); raise with the failed task's log if the run fails first."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/-1/hitlDetails"
        deadline = time.monotonic() + timeout
        while True:
            tasks = self.task_instances(dag_id, run_id)
            failing = [t for t in tasks if t["state"] in TASK_FAILURES]
            if failing:
                run = self._request("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
                raise AirflowApiError(self._failure_report(dag_id, run_id, run, failing))
            state = next((t["state"] for t in tasks if t["task_id"] == task_id), None)
            response = self._http.get(path)
            if response.status_code == 200 and state in {"awaiting_input", "deferred"}:
                return response.json()
            if time.monotonic() > deadline:
                states = {t["task_id"]: t["state"] for t in tasks}
                raise AirflowApiError(f"{task_id} of {run_id} asked nothing within {timeout:.0f} s: {states}")
            time.sleep(3)

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self._request("GET", f"/dags/{dag_id}/dagRuns/{run_id}")

    def extra_links(self, dag_id: str, run_id: str, task_id: str) -> dict[str, str | None]:
        return self._request(
            "GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/links"
        )["extra_links"]

    def create_connection(self, conn_id: str, conn_type: str, **fields: Any) -> None:
        self._request("POST", "/connections",
                      json={"connection_id": conn_id, "conn_type": conn_type, **fields})

    def respond(
        self, dag_id: str, run_id: str, task_id: str, option: str, params_input: dict[str, Any]
    ) -> dict[str, Any]:
        """Answer a human-in-the-loop task as the logged-in user (what the UI's form sends)."""
        return self._request(
            "PATCH",
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/-1/hitlDetails",
            json={"chosen_options": [option], "params_input": params_input},
        )

    def _failure_report(self, dag_id: str, run_id: str, run: dict, tasks: list[dict]) -> str:
        lines = [f"run {run_id} is {run['state']}"]
        for task in tasks:
            lines.append(f"--- {task['task_id']}: {task['state']} (try {task['try_number']})")
            if task["state"] == "failed":  # an upstream_failed task never ran: it has no log
                try_number = max(task["try_number"], 1)
                lines.append(self.task_log(dag_id, run_id, task["task_id"], try_number)[-6000:])
        return "\n".join(lines)
