"""The emulator's own resource store, persisted as one JSON file when a data dir is given.

Records are plain JSON-able dicts (timestamps are epoch seconds), so persisting is a dump and
every read hands out a deep copy: callers never share mutable state with worker threads.
"""

from __future__ import annotations

import copy
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

TABLES = (
    "processing_jobs",
    "training_jobs",
    "models",
    "endpoint_configs",
    "endpoints",
    "model_package_groups",
    "model_packages",
)
STATE_FILE = "state.json"
STATE_VERSION = 1


def now() -> float:
    return time.time()


class Store:
    """Thread-safe tables of records keyed by resource name (model packages: by ARN)."""

    def __init__(self, data_dir: Path | None = None) -> None:
        self._lock = threading.RLock()
        self._data_dir = data_dir
        self._tables: dict[str, dict[str, dict[str, Any]]] = {t: {} for t in TABLES}
        if data_dir is not None:
            data_dir.mkdir(parents=True, exist_ok=True)
            self._load()

    @property
    def path(self) -> Path | None:
        return self._data_dir / STATE_FILE if self._data_dir is not None else None

    def _load(self) -> None:
        path = self.path
        if path is None or not path.exists():
            return
        try:
            saved = json.loads(path.read_text())
        except ValueError as exc:
            raise RuntimeError(f"{path} is not valid JSON ({exc}); move it away to start empty") from exc
        if saved.get("version") != STATE_VERSION:
            raise RuntimeError(f"{path} has state version {saved.get('version')!r}, "
                               f"this emulator reads version {STATE_VERSION}")
        for table in TABLES:
            self._tables[table] = saved.get("tables", {}).get(table, {})

    def _save(self) -> None:
        path = self.path
        if path is None:
            return
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"version": STATE_VERSION, "tables": self._tables}))
        os.replace(tmp, path)

    def get(self, table: str, key: str) -> dict[str, Any] | None:
        with self._lock:
            record = self._tables[table].get(key)
            return copy.deepcopy(record) if record is not None else None

    def values(self, table: str) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(list(self._tables[table].values()))

    def insert(self, table: str, key: str, record: dict[str, Any],
               exists: Callable[[dict[str, Any]], Exception] | None = None) -> None:
        """Add a record; when the key is taken, raise what ``exists(old)`` returns."""
        with self._lock:
            old = self._tables[table].get(key)
            if old is not None:
                if exists is None:
                    raise KeyError(key)
                raise exists(copy.deepcopy(old))
            self._tables[table][key] = copy.deepcopy(record)
            self._save()

    @contextmanager
    def edit(self, table: str, key: str) -> Iterator[dict[str, Any] | None]:
        """Mutate one record in place under the lock; saved on exit. Yields None if missing."""
        with self._lock:
            record = self._tables[table].get(key)
            yield record
            if record is not None:
                self._save()

    def delete(self, table: str, key: str) -> dict[str, Any] | None:
        with self._lock:
            record = self._tables[table].pop(key, None)
            if record is not None:
                self._save()
            return record
