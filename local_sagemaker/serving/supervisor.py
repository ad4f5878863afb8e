"""ModelServer: starts, health-checks, invokes and stops the serving processes of one variant.

Each container of the variant's model gets ``SAGEMAKER_MODEL_SERVER_WORKERS`` processes (the
sklearn container's gunicorn workers; default 1 here to start fast) sharing one loopback port
through SO_REUSEPORT. The port is reserved by a bound, non-listening socket held for the
server's lifetime, so no other process can take it between start and stop.
"""

from __future__ import annotations

import collections
import http.client
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from .errors import ModelError, ModelLoadError, ThrottlingError

STOP_GRACE_SECONDS = 5.0
INVOKE_TIMEOUT_SECONDS = 60.0  # SageMaker's real-time invocation limit
_PROJECT_ROOT = str(Path(__file__).resolve().parents[2])
_PASSTHROUGH_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ", "USER")


def _reserve_port() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


class _Process:
    """One serving process: its ready handshake and its output (kept in server.log)."""

    def __init__(self, root: Path, argv: list[str], env: dict[str, str]) -> None:
        self.root = root
        self.output: collections.deque[str] = collections.deque(maxlen=200)
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        read_fd, write_fd = os.pipe()
        argv = [*argv, "--model-dir", str(root / "model"), "--code-dir", str(root / "code"),
                "--ready-fd", str(write_fd)]  # fmt: skip
        try:
            self.popen = subprocess.Popen(
                argv,
                cwd=root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                pass_fds=(write_fd,),
                start_new_session=True,
            )
        except OSError:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        self._ready_fd: int | None = read_fd
        threading.Thread(target=self._collect_output, daemon=True).start()

    def _collect_output(self) -> None:
        with open(self.root / "server.log", "ab") as log:
            for raw in iter(self.popen.stdout.readline, b""):
                log.write(raw)
                log.flush()
                self.output.append(raw.decode("utf-8", errors="replace").rstrip())

    def await_ready(self, deadline: float, label: str) -> None:
        """Block until the process reports READY, or raise ModelLoadError with its reason."""
        line = b""
        try:
            while not line.endswith(b"\n"):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ModelLoadError(
                        f"The model server for {label} did not become ready in time "
                        "(model download or model_fn too slow)"
                    )
                if select.select([self._ready_fd], [], [], remaining)[0]:
                    chunk = os.read(self._ready_fd, 4096)
                    if not chunk:
                        break
                    line += chunk
        finally:
            self._close_ready()
        text = line.decode("utf-8", errors="replace").strip()
        if text.startswith("READY "):
            return
        if text.startswith("FAILED "):
            raise ModelLoadError(text[len("FAILED ") :])
        try:
            code = self.popen.wait(timeout=STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            code = "unknown"
        last = next((out for out in reversed(self.output) if out.strip()), "no output")
        raise ModelLoadError(f"The model server for {label} exited with code {code}: {last}")

    def _close_ready(self) -> None:
        if self._ready_fd is not None:
            os.close(self._ready_fd)
            self._ready_fd = None

    def stop(self) -> None:
        self._close_ready()
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if self.popen.poll() is not None:
                return
            try:
                os.killpg(self.popen.pid, sig)
                self.popen.wait(timeout=STOP_GRACE_SECONDS)
            except ProcessLookupError:
                return
            except subprocess.TimeoutExpired:
                continue


class _Container:
    """The processes serving one container on one port, and per-thread keep-alive connections."""

    def __init__(self, index: int, container: dict, root: Path) -> None:
        self.label = f"container {index + 1}"
        self.container, self.root = container, root
        self.processes: list[_Process] = []
        self._socket = _reserve_port()
        self.port: int = self._socket.getsockname()[1]
        self._local = threading.local()

    def start(self, endpoint_url: str, region: str) -> None:
        environment = {k: str(v) for k, v in (self.container.get("Environment") or {}).items()}
        try:
            workers = max(1, int(environment.get("SAGEMAKER_MODEL_SERVER_WORKERS", "1")))
        except ValueError as exc:
            raise ModelLoadError(
                f"SAGEMAKER_MODEL_SERVER_WORKERS must be an integer, got "
                f"{environment['SAGEMAKER_MODEL_SERVER_WORKERS']!r}"
            ) from exc
        argv = [sys.executable, "-m", "local_sagemaker.serving.worker",
                "--endpoint-url", endpoint_url, "--region", region, "--port", str(self.port)]  # fmt: skip
        if self.container.get("ModelDataUrl"):
            argv += ["--model-data", self.container["ModelDataUrl"]]
        env = {k: os.environ[k] for k in _PASSTHROUGH_ENV if k in os.environ}
        env.update(
            PYTHONPATH=_PROJECT_ROOT,
            PYTHONUNBUFFERED="1",
            PYTHONDONTWRITEBYTECODE="1",
            AWS_ENDPOINT_URL=endpoint_url,
            AWS_DEFAULT_REGION=region,
            AWS_ACCESS_KEY_ID="test",
            AWS_SECRET_ACCESS_KEY="test",
        )
        env.update(environment)
        for k in range(workers):
            self.processes.append(_Process(self.root / f"worker-{k + 1}", argv, env))

    def await_ready(self, deadline: float) -> None:
        for process in self.processes:
            process.await_ready(deadline, self.label)
        status, body, _ = self.request("GET", "/ping", None, {})
        if status != 200:
            raise ModelLoadError(
                f"The model server for {self.label} failed the /ping health check with HTTP "
                f"{status}: {body[:200].decode(errors='replace')}"
            )

    def request(
        self, method: str, path: str, body: bytes | None, headers: dict
    ) -> tuple[int, bytes, str]:
        """One HTTP exchange on this thread's keep-alive connection (reconnects once)."""
        for attempt in range(2):
            conn = getattr(self._local, "conn", None)
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(
                        "127.0.0.1", self.port, timeout=INVOKE_TIMEOUT_SECONDS
                    )
                    conn.connect()
                    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    self._local.conn = conn
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                return response.status, response.read(), response.getheader("Content-Type") or ""
            except (http.client.HTTPException, OSError) as exc:
                if conn is not None:
                    conn.close()
                self._local.conn = None
                if attempt or not self.alive():
                    raise ModelError(
                        500, f"The model server for {self.label} is not reachable: {exc}"
                    ) from exc
        raise AssertionError("unreachable")

    def alive(self) -> bool:
        return any(p.popen.poll() is None for p in self.processes)

    def stop(self) -> None:
        for process in self.processes:
            process.stop()
        self._socket.close()


class ModelServer:
    """One production variant's serving processes (several containers = an inference pipeline)."""

    def __init__(
        self,
        containers: list[dict],
        endpoint_url: str,
        region: str,
        work_dir: Path,
        memory_mb: int | None = None,
        max_concurrency: int | None = None,
    ) -> None:
        if not containers:
            raise ModelLoadError("The model has no containers to serve")
        self.endpoint_url, self.region, self.work_dir = endpoint_url, region, Path(work_dir)
        self.memory_mb, self.max_concurrency = memory_mb, max_concurrency
        self._containers = [
            _Container(i, c, self.work_dir / f"container-{i + 1}") for i, c in enumerate(containers)
        ]
        self._slots = threading.BoundedSemaphore(max_concurrency) if max_concurrency else None
        self._lock = threading.Lock()
        self._stopped = False

    def start(self) -> None:
        """Spawn the processes; they download artifacts and load the model on their own."""
        try:
            for container in self._containers:
                container.start(self.endpoint_url, self.region)
        except Exception:
            self.stop()
            raise

    def wait_ready(self, timeout: float = 120) -> None:
        """Return once every container answers /ping, or raise ModelLoadError with the reason."""
        deadline = time.monotonic() + timeout
        try:
            for container in self._containers:
                container.await_ready(deadline)
        except ModelError as exc:
            self.stop()
            raise ModelLoadError(exc.message) from exc
        except ModelLoadError:
            self.stop()
            raise

    def invoke(self, body: bytes, content_type: str, accept: str | None) -> tuple[bytes, str]:
        """Send one request through the container chain; ModelError on a model 4xx/5xx."""
        if self._slots is not None and not self._slots.acquire(blocking=False):
            raise ThrottlingError(self.max_concurrency)
        try:
            data, data_type = body, content_type
            for position, container in enumerate(self._containers):
                last = position == len(self._containers) - 1
                headers = {"Content-Type": data_type}
                # inference pipelines: the client's Accept goes to the last container
                wanted = accept if last else data_type
                if wanted:
                    headers["Accept"] = wanted
                status, data, data_type = container.request("POST", "/invocations", data, headers)
                if status != 200:
                    message = data.decode("utf-8", errors="replace").strip() or f"HTTP {status}"
                    raise ModelError(status, message)
            return data, data_type
        finally:
            if self._slots is not None:
                self._slots.release()

    def stop(self) -> None:
        """Terminate every process (SIGTERM, then SIGKILL); safe to call twice."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        for container in self._containers:
            container.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._containers[0].port}"

    @property
    def output_tail(self) -> list[str]:
        """The last lines the serving processes printed (tracebacks of failed invocations)."""
        return [line for c in self._containers for p in c.processes for line in p.output]
