"""The model server process for one container: ``python -m local_sagemaker.serving.worker``.

It fetches the model data and the entry point's code, imports ``SAGEMAKER_PROGRAM``, calls
``model_fn`` once, then serves ``GET /ping`` and ``POST /invocations`` on a loopback port.
It reports ``READY <port>`` or ``FAILED <reason>`` on the file descriptor given by
``--ready-fd``, which is how the supervisor learns the port or why the model cannot load.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import socketserver
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from local_sagemaker import s3util
from local_sagemaker.serving.handlers import Handlers, InferenceError, base_type, one_line

log = logging.getLogger("local_sagemaker.serving.worker")
CONTAINER_MODEL_DIR = "/opt/ml/model"


class LoadError(Exception):
    """Why the model cannot load; becomes the endpoint's FailureReason."""


def _reason(exc: Exception) -> str:
    return one_line(exc.cause if isinstance(exc, s3util.S3TransferError) else exc)


def fetch_model(model_data: str | None, model_dir: Path, endpoint_url: str, region: str) -> None:
    if not model_data:
        return
    try:
        s3util.fetch_tarball(s3util.aws_client("s3", endpoint_url, region), model_data, model_dir)
    except Exception as exc:
        raise LoadError(f"Failed to download model data from {model_data}: {_reason(exc)}") from exc


def code_dir_for(
    submit: str | None, model_dir: Path, scratch: Path, endpoint_url: str, region: str
) -> Path:
    """Where SAGEMAKER_SUBMIT_DIRECTORY's code lives locally (fetched if it is on S3)."""
    if not submit:
        return model_dir / "code"
    if submit.startswith("s3://"):
        try:
            s3util.fetch_tarball(s3util.aws_client("s3", endpoint_url, region), submit, scratch)
        except Exception as exc:
            raise LoadError(
                f"Failed to download SAGEMAKER_SUBMIT_DIRECTORY {submit}: {_reason(exc)}"
            ) from exc
        return scratch
    if submit.rstrip("/") == CONTAINER_MODEL_DIR or submit.startswith(CONTAINER_MODEL_DIR + "/"):
        return model_dir / submit[len(CONTAINER_MODEL_DIR) :].lstrip("/")
    return Path(submit.removeprefix("file://"))


def load_handlers(program: str | None, code_dir: Path) -> Handlers:
    """Import the entry point (modules beside it importable, e.g. what the pickle needs)."""
    if not program:
        return Handlers()
    if not (code_dir / program).is_file():
        raise LoadError(f"SAGEMAKER_PROGRAM {program} was not found in {code_dir}")
    sys.path.insert(0, str(code_dir))
    module_name = program[:-3] if program.endswith(".py") else program
    try:
        return Handlers(importlib.import_module(module_name))
    except Exception as exc:
        traceback.print_exc()
        raise LoadError(f"Failed to import SAGEMAKER_PROGRAM {program}: {one_line(exc)}") from exc


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # many clients connect at once; the default backlog of 5 drops SYNs
    allow_reuse_port = True  # SAGEMAKER_MODEL_SERVER_WORKERS processes share one port

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name (getfqdn), which can stall for seconds
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


def make_handler(handlers: Handlers, default_accept: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the supervisor reuses connections
        disable_nagle_algorithm = True

        def do_GET(self) -> None:  # noqa: N802 (http.server naming)
            if self.path == "/ping":
                self._send(200, b"", "text/plain")
            else:
                self._send(404, f"No route {self.path}".encode(), "text/plain")

        def do_POST(self) -> None:  # noqa: N802
            if self.path != "/invocations":
                self._send(404, f"No route {self.path}".encode(), "text/plain")
                return
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            content_type = self.headers.get("Content-Type") or "application/json"
            accept = self.headers.get("Accept")
            if not accept or base_type(accept) == "*/*":
                accept = default_accept
            try:
                data, out_type = handlers.invoke(body, content_type, accept)
            except InferenceError as exc:
                if exc.status >= 500 and exc.__cause__ is not None:
                    log.error("Invocation failed", exc_info=exc.__cause__)
                self._send(exc.status, exc.message.encode(), "text/plain")
                return
            self._send(200, data, out_type)

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args) -> None:  # noqa: A002 (http.server's name)
            log.debug(format, *args)

    return Handler


def exit_with_parent(interval: float = 1.0) -> None:
    """End this process when the emulator that started it is gone (killed, crashed): a model
    server must never outlive its endpoint. A reparented process sees a new parent pid."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        log.warning("the emulator (pid %d) is gone: stopping this model server", parent)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    exit_with_parent()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-data", help="ModelDataUrl (s3://.../model.tar.gz)")
    parser.add_argument("--model-dir", required=True, type=Path)
    parser.add_argument("--code-dir", required=True, type=Path, help="scratch dir for S3 code")
    parser.add_argument("--endpoint-url", required=True)
    parser.add_argument("--region", required=True)
    parser.add_argument("--ready-fd", required=True, type=int)
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    ready = os.fdopen(args.ready_fd, "w")
    args.model_dir.mkdir(parents=True, exist_ok=True)
    try:
        fetch_model(args.model_data, args.model_dir, args.endpoint_url, args.region)
        code_dir = code_dir_for(
            os.environ.get("SAGEMAKER_SUBMIT_DIRECTORY"),
            args.model_dir,
            args.code_dir,
            args.endpoint_url,
            args.region,
        )
        # the container has only its own code on the path, not the emulator's project
        project_root = str(Path(__file__).resolve().parents[2])
        sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(project_root)]
        handlers = load_handlers(os.environ.get("SAGEMAKER_PROGRAM"), code_dir)
        try:
            handlers.load(str(args.model_dir))
        except Exception as exc:
            traceback.print_exc()
            raise LoadError(f"model_fn failed: {one_line(exc)}") from exc
    except LoadError as exc:
        ready.write(f"FAILED {' '.join(str(exc).split())}\n")
        ready.close()
        return 1
    default_accept = os.environ.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "application/json")
    server = _Server(("127.0.0.1", args.port), make_handler(handlers, default_accept))
    ready.write(f"READY {server.server_address[1]}\n")
    ready.close()
    log.info("Model server listening on 127.0.0.1:%d", server.server_address[1])
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
