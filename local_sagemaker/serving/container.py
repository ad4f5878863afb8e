"""One model container: its sandbox, its image environment and its serving process.

What the SageMaker platform does around a hosting container happens here, in the emulator: the
image must be one the emulator has an environment for; ``ModelDataUrl`` is downloaded and
extracted into the sandbox's ``/opt/ml/model`` before the container starts; the container gets
the Model's ``Environment`` (over the image's ENV) and credentials that reach the emulator
(``AWS_ENDPOINT_URL``); it is healthy once ``GET /ping`` answers 200. Everything inside the
container (installing ``SAGEMAKER_SUBMIT_DIRECTORY``, gunicorn, handler resolution, status codes)
is the image's serving stack, started by ``serve_container.py`` with the image's Python under
:func:`local_sagemaker.isolation.contained`.
"""

from __future__ import annotations

import collections
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from local_sagemaker import images, isolation, s3util
from local_sagemaker.iam import EXECUTION_ACCESS_KEY
from local_sagemaker.runner.container import aws_environ

from .errors import ModelError, ModelLoadError

SERVE_CONTAINER = Path(__file__).resolve().parent / "serve_container.py"
STOP_GRACE_SECONDS = 5.0
INVOKE_TIMEOUT_SECONDS = 60.0  # SageMaker's real-time invocation limit
PING_TIMEOUT_SECONDS = 2.0  # SageMaker's /ping request timeout
_PASSTHROUGH_ENV = ("HOME", "TMPDIR", "TZ", "USER")
# bubblewrap's --die-with-parent (PR_SET_PDEATHSIG) fires when the *thread* that started it ends,
# and deploys run in short-lived threads: containers are started from this one, which lives as
# long as the emulator.
_SPAWNER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-container-spawner")
_EXCEPTION = re.compile(r"^(?P<type>[A-Za-z_][\w.]*)(?::\s?(?P<message>.*))?$")
_CHAINED = ("During handling of the above exception", "The above exception was the direct cause")


def failure_reason(lines: list[str]) -> str | None:
    """``Type: message`` of the root cause of the last traceback in a server's output."""
    reason: str | None = None
    chained = in_traceback = False
    for position, line in enumerate(lines):
        if line.startswith("Traceback (most recent call last)"):
            if not chained:
                reason = None  # a new error, unrelated to any before it
            in_traceback, chained = True, False
        elif line.startswith(_CHAINED):
            chained = True
        elif in_traceback and line.strip() and not line[0].isspace():
            match = _EXCEPTION.match(line)
            in_traceback = False
            if match and reason is None:
                message = (match["message"] or "").strip()
                following = next((n.strip() for n in lines[position + 1 :] if n.strip()), "")
                if not message and following and not following.startswith(("Traceback", "[")):
                    message = following
                kind = match["type"].rsplit(".", 1)[-1]
                reason = f"{kind}: {message}" if message else kind
    return reason


def _model_data_error(index: int, uri: str) -> str:
    """SageMaker's FailureReason when the artifact cannot be fetched."""
    return (
        f'Failed to download model data for container "container_{index + 1}" from URL: "{uri}". '
        "Please ensure that there is an object located at the URL and that the role passed to "
        "CreateModel has permissions to download the object."
    )


def _group_alive(group: int) -> bool:
    """Whether a process of ``group`` is still running (zombies awaiting their reaper are not)."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()  # after "pid (comm) ": state ppid pgrp ...
        if len(fields) > 2 and fields[2] == str(group) and fields[0] not in ("Z", "X"):
            return True
    return False


class ModelContainer:
    """A container of a variant: a sandbox with ``/opt/ml``, the image's serve command on a port."""

    def __init__(self, index: int, container: dict[str, Any], root: Path) -> None:
        self.index = index
        self.label = "primary" if index == 0 else f"container-{index + 1}"
        self.container, self.root = container, Path(root)
        self.opt_ml = self.root / "opt_ml"
        self.output: collections.deque[str] = collections.deque(maxlen=400)
        self.popen: subprocess.Popen | None = None
        self._socket: socket.socket | None = None
        self.port = 0
        self._local = threading.local()
        self._log_sink: Any = None

    # -- start ---------------------------------------------------------------------------------
    def start(self, endpoint_url: str, region: str, log_sink: Any = None) -> None:
        """Resolve the image, stage the model, start the serve command (not yet healthy)."""
        try:
            environment = images.resolve(self.container.get("Image") or "")
        except images.UnsupportedImage as exc:
            raise ModelLoadError(str(exc)) from None
        if self.root.exists():
            shutil.rmtree(self.root)
        (self.opt_ml / "model").mkdir(parents=True)
        model_data = self.container.get("ModelDataUrl")
        if model_data:
            try:
                s3util.fetch_tarball(
                    s3util.aws_client("s3", endpoint_url, region, EXECUTION_ACCESS_KEY), model_data,
                    self.opt_ml / "model"
                )
            except Exception as exc:
                raise ModelLoadError(_model_data_error(self.index, model_data)) from exc
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(1024)
        self.port = self._socket.getsockname()[1]
        fd = self._socket.fileno()
        argv = isolation.contained(
            [str(environment.python), str(SERVE_CONTAINER), "--listen-fd", str(fd),
             "--site", str(self.root / "site-packages")],
            self.opt_ml,
        )  # fmt: skip
        self._log_sink = log_sink
        self.popen = _SPAWNER.submit(
            subprocess.Popen,
            argv,
            cwd=self.opt_ml,
            env=self._environment(environment, endpoint_url, region),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            pass_fds=(fd,),
            start_new_session=True,
        ).result()
        threading.Thread(
            target=self._collect_output, name=f"model-{self.port}", daemon=True
        ).start()

    def _environment(self, image: images.ImageEnvironment, endpoint_url: str, region: str) -> dict:
        platform = {k: os.environ[k] for k in _PASSTHROUGH_ENV if k in os.environ}
        platform["PATH"] = os.environ.get("PATH", "/usr/bin:/bin")
        platform.update(aws_environ(endpoint_url, region))
        env = image.environ(platform)
        env.update({k: str(v) for k, v in (self.container.get("Environment") or {}).items()})
        if isolation.mode() != "namespace":  # no literal /opt/ml: point the toolkit at the sandbox
            env["SAGEMAKER_BASE_DIR"] = str(self.opt_ml)
            if "SAGEMAKER_SUBMIT_DIRECTORY" in env:
                env["SAGEMAKER_SUBMIT_DIRECTORY"] = isolation.remap_opt_ml(
                    env["SAGEMAKER_SUBMIT_DIRECTORY"], self.opt_ml
                )
        return env

    def _collect_output(self) -> None:
        assert self.popen is not None and self.popen.stdout is not None
        with open(self.root / "server.log", "ab") as log:
            for raw in iter(self.popen.stdout.readline, b""):
                log.write(raw)
                log.flush()
                line = raw.decode("utf-8", errors="replace").rstrip()
                self.output.append(line)
                if self._log_sink is not None:
                    self._log_sink.write(line)

    # -- health --------------------------------------------------------------------------------
    def await_healthy(self, deadline: float, variant: str) -> None:
        """Poll ``/ping`` until it answers 200; ModelLoadError with the server's reason if not."""
        prefix = f"The {self.label} container for production variant {variant} did not pass the ping health check"
        logs = "Please check CloudWatch logs for this endpoint."
        while True:
            code = self.popen.poll() if self.popen else None
            if code is not None:
                raise ModelLoadError(
                    f"{prefix}: it exited with code {code} ({self._reason(wait=True)}). {logs}"
                )
            if time.monotonic() >= deadline:
                raise ModelLoadError(f"{prefix} before the start timed out. {logs}")
            try:
                status, body, _ = self.request(
                    "GET", "/ping", None, {}, timeout=PING_TIMEOUT_SECONDS
                )
            except ModelError:
                continue  # still installing or loading: the ping timed out
            if status == 200:
                return
            reason = self._reason(wait=True) or body[:200].decode(errors="replace")
            raise ModelLoadError(f"{prefix}: /ping answered HTTP {status} ({reason}). {logs}")

    def _reason(self, wait: bool = False) -> str:
        """The root cause from the server's output (the output thread may lag a little)."""
        until = time.monotonic() + (1.0 if wait else 0.0)
        while True:
            lines = list(self.output)
            reason = failure_reason(lines)
            if reason or time.monotonic() >= until:
                break
            time.sleep(0.05)
        if reason:
            return reason
        return next((line for line in reversed(lines) if line.strip()), "no output")

    # -- requests ------------------------------------------------------------------------------
    def request(
        self, method: str, path: str, body: bytes | None, headers: dict,
        timeout: float = INVOKE_TIMEOUT_SECONDS,
    ) -> tuple[int, bytes, str]:  # fmt: skip
        """One HTTP exchange on this thread's keep-alive connection (reconnects once)."""
        for attempt in range(2):
            conn = getattr(self._local, "conn", None)
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
                    conn.connect()
                    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    self._local.conn = conn
                conn.timeout = timeout  # used when http.client reopens a closed connection
                if conn.sock is not None:
                    conn.sock.settimeout(timeout)
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                return response.status, response.read(), response.getheader("Content-Type") or ""
            except (http.client.HTTPException, OSError) as exc:
                if conn is not None:
                    conn.close()
                self._local.conn = None
                if attempt or isinstance(exc, TimeoutError) or not self.alive():
                    raise ModelError(
                        500, f"The model container {self.label} is not reachable: {exc}"
                    ) from exc
        raise AssertionError("unreachable")

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    # -- stop ----------------------------------------------------------------------------------
    def stop(self) -> None:
        """SIGTERM the container's process group; SIGKILL what is left once its leader exits."""
        if self.popen is not None:
            group = self.popen.pid
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(group, sig)
                except ProcessLookupError:
                    break
                try:
                    self.popen.wait(timeout=STOP_GRACE_SECONDS)
                except subprocess.TimeoutExpired:
                    continue
                if sig == signal.SIGTERM:  # the leader is gone: end what is left of the group
                    try:
                        os.killpg(group, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                break
            self.popen.wait()
            deadline = time.monotonic() + STOP_GRACE_SECONDS
            while _group_alive(group) and time.monotonic() < deadline:  # SIGKILL is asynchronous
                time.sleep(0.01)
        if self._socket is not None:
            self._socket.close()
            self._socket = None
