"""MetricDefinitions: regexes over the training output that fill FinalMetricDataList."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime

from .context import JobFailure


class MetricCollector:
    """Keeps the last value each metric's regex matched (FinalMetricDataList holds final values)."""

    def __init__(self, definitions: list[dict] | None) -> None:
        self._patterns: list[tuple[str, re.Pattern]] = []
        for d in definitions or []:
            try:
                self._patterns.append((d["Name"], re.compile(d["Regex"])))
            except re.error as exc:
                raise JobFailure(
                    f"ClientError: MetricDefinitions regex for {d['Name']!r} is invalid: {exc}"
                ) from exc
        self._last: dict[str, dict] = {}
        self._lock = threading.Lock()

    def feed(self, line: str) -> None:
        for name, pattern in self._patterns:
            match = pattern.search(line)
            if not match:
                continue
            text = match.group(1) if pattern.groups else match.group(0)
            try:
                value = float(text)
            except (TypeError, ValueError):
                continue
            with self._lock:
                self._last[name] = {
                    "MetricName": name,
                    "Value": value,
                    "Timestamp": datetime.now(UTC),
                }

    def final(self) -> list[dict]:
        with self._lock:
            return [self._last[name] for name, _ in self._patterns if name in self._last]
