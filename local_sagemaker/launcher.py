"""Start ``python -m local_sagemaker serve`` as a child process and talk to it (tests, bench,
scripts): a free loopback port, wait for /health, stop with SIGTERM as compose does."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from local_sagemaker.iam import ADMIN_ACCESS_KEY

PROJECT_ROOT = Path(__file__).resolve().parents[1]
REGION = "us-east-1"


class EmulatorClient:
    """boto3 clients (test credentials, path-style S3) on an emulator already listening at ``url``."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._clients: dict[tuple[str, bool], Any] = {}

    def client(self, service: str, *, validate: bool = True) -> Any:
        """A boto3 client on the emulator; ``validate=False`` skips botocore's client-side
        checks so callers see what the server itself answers."""
        key = (service, validate)
        if key not in self._clients:
            config = Config(parameter_validation=validate, retries={"max_attempts": 1},
                            s3={"addressing_style": "path"}, max_pool_connections=64)
            self._clients[key] = boto3.client(
                service, endpoint_url=self.url, region_name=REGION, aws_access_key_id=ADMIN_ACCESS_KEY,
                aws_secret_access_key="test", config=config)
        return self._clients[key]


class EmulatorProcess(EmulatorClient):
    """A running emulator subprocess: ``url``, ``data_dir``, ``log_path``, ``client()``, ``stop()``."""

    def __init__(self, data_dir: Path, *extra_args: str, start_timeout: float = 60,
                 wrapper: tuple[str, ...] = ()) -> None:
        """``wrapper`` runs the server under another command (e.g. ``unshare`` to give it a
        small file system in fault-injection tests)."""
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir / f"emulator-{uuid.uuid4().hex[:6]}.log"
        pythonpath = os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(
                [*wrapper, sys.executable, "-m", "local_sagemaker", "serve", "--port", "0",
                 "--data-dir", str(self.data_dir), *extra_args],
                cwd=PROJECT_ROOT, env={**os.environ, "PYTHONPATH": pythonpath},
                stdout=log, stderr=subprocess.STDOUT)
        try:
            super().__init__(self._wait_listening(start_timeout))
        except BaseException:
            self.process.kill()
            self.process.wait()
            raise

    def _wait_listening(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the emulator exited with {self.process.returncode}:\n{self.log()}")
            for line in self.log().splitlines():
                if "listening on " in line:
                    url = line.split("listening on ", 1)[1].split()[0]
                    with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
                        if json.load(response)["status"] == "ok":
                            return url
            time.sleep(0.05)
        raise RuntimeError(f"the emulator did not start within {timeout} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, as compose and Ctrl-C do; returns the exit code (SIGKILL after ``timeout``)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
