"""ModelServer: starts, health-checks, invokes and stops the containers of one production variant.

Each container of the variant's model (several make an inference pipeline) is a
:class:`~local_sagemaker.serving.container.ModelContainer`: the image's own serving stack in a
sandbox with a literal ``/opt/ml``. The variant is InService once every container answers
``/ping``; requests go through the containers in order, the client's Accept reaching the last.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from .container import ModelContainer
from .errors import ModelError, ModelLoadError, ThrottlingError

START_TIMEOUT_SECONDS = 300.0


class ModelServer:
    """One production variant's containers."""

    def __init__(
        self,
        containers: list[dict],
        endpoint_url: str,
        region: str,
        work_dir: Path,
        memory_mb: int | None = None,
        max_concurrency: int | None = None,
        variant: str = "AllTraffic",
        log_sink: Any = None,
    ) -> None:
        if not containers:
            raise ModelLoadError("The model has no containers to serve")
        self.endpoint_url, self.region, self.work_dir = endpoint_url, region, Path(work_dir)
        self.memory_mb, self.max_concurrency, self.variant = memory_mb, max_concurrency, variant
        self._log_sink = log_sink  # where the containers' output goes (CloudWatch Logs), or None
        self._containers = [
            ModelContainer(i, c, self.work_dir / f"container-{i + 1}")
            for i, c in enumerate(containers)
        ]
        self._slots = threading.BoundedSemaphore(max_concurrency) if max_concurrency else None
        self._lock = threading.Lock()
        self._stopped = False

    def start(self) -> None:
        """Stage each container's model and start its serve command; ModelLoadError if one cannot."""
        try:
            for container in self._containers:
                if self._stopped:
                    raise ModelLoadError("the model server was stopped while starting")
                container.start(self.endpoint_url, self.region, self._log_sink)
                if self._stopped:  # stop() ran while this container was being started
                    container.stop()
                    raise ModelLoadError("the model server was stopped while starting")
        except Exception:
            self.stop()
            raise

    def wait_ready(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        """Return once every container answers /ping with 200, or raise ModelLoadError."""
        deadline = time.monotonic() + timeout
        try:
            for container in self._containers:
                container.await_healthy(deadline, self.variant)
        except ModelLoadError:
            self.stop()
            raise

    def invoke(self, body: bytes, content_type: str, accept: str | None) -> tuple[bytes, str]:
        """Send one request through the container chain; ModelError when a container answers
        anything but 200 (status and body as the container sent them)."""
        if self._slots is not None and not self._slots.acquire(blocking=False):
            raise ThrottlingError(self.max_concurrency)
        try:
            data, data_type = body, content_type
            for position, container in enumerate(self._containers):
                last = position == len(self._containers) - 1
                headers = {"Content-Type": data_type}
                wanted = accept if last else data_type
                if wanted:
                    headers["Accept"] = wanted
                status, data, data_type = container.request("POST", "/invocations", data, headers)
                if status != 200:
                    message = data.decode("utf-8", errors="replace")
                    raise ModelError(status, message, container.label)
            return data, data_type
        finally:
            if self._slots is not None:
                self._slots.release()

    def stop(self) -> None:
        """Stop every container (SIGTERM, then SIGKILL); safe to call twice."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        for container in self._containers:
            container.stop()
        if self._log_sink is not None:
            self._log_sink.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._containers[0].port}"

    @property
    def output_tail(self) -> list[str]:
        """The last lines the containers printed (tracebacks of failed invocations)."""
        return [line for c in self._containers for line in c.output]
