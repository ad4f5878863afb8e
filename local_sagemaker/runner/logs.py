"""Ship a job's output lines to CloudWatch Logs while it runs, as SageMaker does.

Lines are batched (every FLUSH_SECONDS or FLUSH_LINES) by a background thread, so the
provider's ``print_log=True`` sees them during the job and the script never waits on HTTP.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

log = logging.getLogger(__name__)

FLUSH_SECONDS = 0.2
FLUSH_LINES = 100
MAX_EVENT_BYTES = 256 * 1024 - 26  # CloudWatch's per-event limit minus its overhead
MAX_BATCH_BYTES = 1_048_576 - 26 * FLUSH_LINES  # PutLogEvents' request limit
_CLOSE = object()


def ensure_log_stream(client: Any, group: str, stream: str) -> None:
    """Create the group (if needed) and the stream."""
    try:
        client.create_log_group(logGroupName=group)
    except client.exceptions.ResourceAlreadyExistsException:
        pass
    try:
        client.create_log_stream(logGroupName=group, logStreamName=stream)
    except client.exceptions.ResourceAlreadyExistsException:
        pass


class LogStreamer:
    """One CloudWatch Logs stream fed line by line from any thread."""

    def __init__(self, client: Any, group: str, stream: str) -> None:
        self.client, self.group, self.stream = client, group, stream
        ensure_log_stream(client, group, stream)
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name=f"logs-{stream}", daemon=True)
        self._thread.start()

    def write(self, line: str, timestamp_ms: int | None = None) -> None:
        ts = timestamp_ms if timestamp_ms is not None else int(time.time() * 1000)
        if len(line) > MAX_EVENT_BYTES // 4:  # only long lines can exceed the limit in UTF-8
            line = line.encode()[:MAX_EVENT_BYTES].decode(errors="ignore")
        self._queue.put((ts, line or " "))

    def close(self) -> None:
        """Flush everything written so far and stop the thread."""
        self._queue.put(_CLOSE)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        batch: list[dict] = []
        size = 0
        deadline = None
        while True:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                item = None
            if item is _CLOSE:
                self._put(batch)
                return
            if item is not None:
                if size + len(item[1].encode()) > MAX_BATCH_BYTES:
                    self._put(batch)
                    batch, size = [], 0
                batch.append({"timestamp": item[0], "message": item[1]})
                size += len(item[1].encode())
                if deadline is None:
                    deadline = time.monotonic() + FLUSH_SECONDS
            if batch and (len(batch) >= FLUSH_LINES or time.monotonic() >= deadline):
                self._put(batch)
                batch, size, deadline = [], 0, None

    def _put(self, batch: list[dict]) -> None:
        if not batch:
            return
        batch.sort(key=lambda event: event["timestamp"])  # stdout/stderr readers race by a ms
        try:
            self.client.put_log_events(
                logGroupName=self.group, logStreamName=self.stream, logEvents=batch
            )
        except Exception:  # logs are best effort: never fail a job because of them
            log.warning(
                "Could not send %d log events to %s", len(batch), self.stream, exc_info=True
            )
