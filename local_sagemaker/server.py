"""The emulator's single HTTP endpoint: a WSGI dispatcher in front of our SageMaker
implementation and moto (S3, SNS, IAM, STS, CloudWatch Logs), plus its lifecycle."""

from __future__ import annotations

import io
import logging
import re
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from a2wsgi import WSGIMiddleware
from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.wsgi import get_input_stream

from local_sagemaker import iam_requests, runtime_api, s3util
from local_sagemaker.api import Context, dispatch
from local_sagemaker.endpoints import EndpointManager
from local_sagemaker.iam import Authorizer, Call, denial_message
from local_sagemaker.jobs import JobManager
from local_sagemaker.notification_snapshot import SERVICES as NOTIFICATION_SERVICES
from local_sagemaker.notification_snapshot import NotificationMirror
from local_sagemaker.protocol import AwsError, dump_json, parse_json_body
from local_sagemaker.s3_snapshot import READ_ONLY_METHODS, S3Mirror
from local_sagemaker.settings import Settings
from local_sagemaker.state import Store

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
SAGEMAKER_TARGET = "SageMaker."
DEBUG_TABLES = {"processing-jobs": "processing_jobs", "training-jobs": "training_jobs"}
# Threads running requests: invocations and the runner's S3 transfers block one each.
REQUEST_THREADS = 128
START_TIMEOUT = 30
# The Amazon provider's hooks name the operator class calling in their User-Agent
_CALLER = re.compile(r"\bCaller/(\S+)")


def _scope(environ: dict[str, Any]) -> list[str]:
    """The SigV4 credential scope, <access key>/<date>/<region>/<service>/aws4_request, from the
    Authorization header or a presigned URL (SigV4 X-Amz-Credential, or S3's SigV2 AWSAccessKeyId)."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    marker = auth.find("Credential=")
    if marker >= 0:
        return auth[marker + len("Credential="):].split(",", 1)[0].split("/")
    query = parse_qs(environ.get("QUERY_STRING", ""))
    if "X-Amz-Credential" in query:
        return query["X-Amz-Credential"][0].split("/")
    if "AWSAccessKeyId" in query:  # SigV2 query authentication: S3's presigned URLs only
        return [query["AWSAccessKeyId"][0], "", "", "s3", "aws4_request"]
    return []


def _scope_service(environ: dict[str, Any]) -> str | None:
    scope = _scope(environ)
    return scope[3] if len(scope) >= 5 else None


def _replay_body(environ: dict[str, Any]) -> bytes:
    """Read the request body and put it back, so the handler behind still reads all of it."""
    body = get_input_stream(environ).read()
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


class EmulatorApp:
    """Routes each request: SageMaker by X-Amz-Target, Runtime by path, the rest to moto."""

    def __init__(self, ctx: Context, authorizer: Authorizer | None = None,
                 s3_mirror: S3Mirror | None = None,
                 notification_mirror: NotificationMirror | None = None) -> None:
        self.ctx = ctx
        self.authorizer = authorizer
        self.s3_mirror = s3_mirror
        self.notification_mirror = notification_mirror
        self.moto = DomainDispatcherApplication(create_backend_app)

    def _checked(self, environ: dict[str, Any]) -> bool:
        scope = _scope(environ)
        return self.authorizer is not None and bool(scope) and self.authorizer.applies_to(scope[0])

    def _refuse(self, environ: dict[str, Any], start_response: StartResponse, protocol: str,
                calls: list[Call]) -> Iterable[bytes] | None:
        """Answer the service's access-denied error when the policy refuses one of ``calls``."""
        assert self.authorizer is not None
        caller = _CALLER.search(environ.get("HTTP_USER_AGENT", ""))
        denied = self.authorizer.first_denied(calls, caller.group(1) if caller else None, _scope(environ)[0])
        if denied is None:
            return None
        status, headers, body = iam_requests.refusal(protocol, denial_message(*denied))
        return _respond(start_response, status, headers, body)

    def _moto_calls(self, environ: dict[str, Any]) -> tuple[str, list[Call]]:
        """The protocol and IAM calls of a request moto answers (S3, SNS, STS, IAM, Logs, ...)."""
        service = _scope_service(environ) or ""
        region = self.ctx.settings.region
        body = _replay_body(environ)
        query = environ.get("QUERY_STRING", "")
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if service == "s3":
            headers = {key[5:].replace("_", "-").lower(): value
                       for key, value in environ.items() if key.startswith("HTTP_")}
            return "s3", iam_requests.s3_calls(environ.get("REQUEST_METHOD", "GET"),
                                               environ.get("PATH_INFO", ""), query, headers)
        if target:
            operation = target.rsplit(".", 1)[-1]
            params = iam_requests.json_params(body)
            if service == "logs":
                return "json", iam_requests.logs_calls(operation, params, region)
            return "json", [Call(f"{service}:{operation}", "*")]
        return service, iam_requests.query_calls(service, iam_requests.form_params(body, query), region)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target.startswith(SAGEMAKER_TARGET):
            return self._sagemaker(environ, start_response, target[len(SAGEMAKER_TARGET):])
        invoke = runtime_api.INVOKE_PATH.match(path)
        if invoke and environ.get("REQUEST_METHOD") == "POST" and _scope_service(environ) in (None, "sagemaker"):
            return self._invoke(environ, start_response, invoke.group(1))
        if path == "/health":
            return _respond(start_response, 200, [("Content-Type", "application/json")],
                            dump_json({"status": "ok", "service": "local_sagemaker"}))
        if path.startswith("/_emulator/"):
            return self._debug(start_response, path)
        if self._checked(environ):
            refused = self._refuse(environ, start_response, *self._moto_calls(environ))
            if refused is not None:
                return refused
        service = _scope_service(environ)
        if (self.s3_mirror is not None and environ.get("REQUEST_METHOD") not in READ_ONLY_METHODS
                and service == "s3"):
            return self._durable(environ, start_response, self.s3_mirror)
        if self.notification_mirror is not None and service in NOTIFICATION_SERVICES:
            return self._durable(environ, start_response, self.notification_mirror)
        return self.moto(environ, start_response)

    def _durable(self, environ: dict[str, Any], start_response: StartResponse,
                 mirror: S3Mirror | NotificationMirror) -> Iterable[bytes]:
        """A request that may change what ``mirror`` keeps: answered only once it is on disk."""
        answer: list[Any] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable:
            answer[:] = [status, headers, exc_info]
            return lambda data: None

        body = list(self.moto(environ, capture))
        if answer and answer[0][:1] == "2":
            mirror.sync()
        start_response(*answer)
        return body

    def _sagemaker(self, environ: dict[str, Any], start_response: StartResponse,
                   operation: str) -> Iterable[bytes]:
        headers = [("Content-Type", "application/x-amz-json-1.1"),
                   ("x-amzn-RequestId", str(uuid.uuid4()))]
        try:
            params = parse_json_body(get_input_stream(environ).read())
            if self._checked(environ):
                refused = self._refuse(environ, start_response, "json", iam_requests.sagemaker_calls(
                    operation, params, self.ctx.settings.region))
                if refused is not None:
                    return refused
            body = dump_json(dispatch(self.ctx, operation, params))
            return _respond(start_response, 200, headers, body)
        except AwsError as exc:
            return _respond(start_response, exc.status, headers, dump_json(exc.body()))
        except Exception as exc:
            log.exception("SageMaker %s failed inside the emulator", operation)
            error = AwsError("InternalFailure", f"emulator error in {operation}: {exc}", status=500)
            return _respond(start_response, 500, headers, dump_json(error.body()))

    def _invoke(self, environ: dict[str, Any], start_response: StartResponse,
                name: str) -> Iterable[bytes]:
        request_headers = {key[5:].replace("_", "-").lower(): value
                           for key, value in environ.items() if key.startswith("HTTP_")}
        if environ.get("CONTENT_TYPE"):
            request_headers["content-type"] = environ["CONTENT_TYPE"]
        if self._checked(environ):
            refused = self._refuse(environ, start_response, "json", iam_requests.sagemaker_calls(
                "InvokeEndpoint", {"EndpointName": name}, self.ctx.settings.region))
            if refused is not None:
                return refused
        try:
            status, headers, body = runtime_api.invoke(
                self.ctx.endpoints, name, get_input_stream(environ).read(), request_headers)
        except AwsError as exc:
            status, body = exc.status, dump_json(exc.body())
            headers = [("Content-Type", "application/json"), ("x-amzn-ErrorType", exc.code)]
        except Exception as exc:
            log.exception("InvokeEndpoint %s failed inside the emulator", name)
            status, body = 500, dump_json(AwsError("InternalFailure", str(exc), 500).body())
            headers = [("Content-Type", "application/json"), ("x-amzn-ErrorType", "InternalFailure")]
        return _respond(start_response, status, headers, body)

    def _debug(self, start_response: StartResponse, path: str) -> Iterable[bytes]:
        """``/_emulator/<processing-jobs|training-jobs>/<name>``: the full job record including
        the non-AWS ``_emulator.script_seconds`` the overhead benchmark needs."""
        parts = path.strip("/").split("/")
        record = None
        if len(parts) == 3 and parts[1] in DEBUG_TABLES:
            record = self.ctx.store.get(DEBUG_TABLES[parts[1]], parts[2])
        if record is None:
            return _respond(start_response, 404, [("Content-Type", "application/json")],
                            dump_json({"message": f"nothing at {path}"}))
        return _respond(start_response, 200, [("Content-Type", "application/json")], dump_json(record))


def _respond(start_response: StartResponse, status: int, headers: list[tuple[str, str]],
             body: bytes) -> list[bytes]:
    start_response(f"{status} {_REASONS.get(status, 'Error')}",
                   [*headers, ("Content-Length", str(len(body)))])
    return [body]


_REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 424: "Failed Dependency",
            500: "Internal Server Error", 501: "Not Implemented"}


class Emulator:
    """One emulator instance: state, job pool, endpoints and the HTTP server, started and
    stopped together."""

    def __init__(self, host: str = "127.0.0.1", port: int = 4566, data_dir: Path | None = None,
                 *, workers: int = 4, region: str = "us-east-1", keep_sandboxes: bool = False,
                 authorizer: Authorizer | None = None) -> None:
        self._own_work_dir = data_dir is None
        self._s3_mirror = S3Mirror(Path(data_dir) / "s3") if data_dir is not None else None
        self._notification_mirror = NotificationMirror(Path(data_dir)) if data_dir is not None else None
        work_dir = (Path(tempfile.mkdtemp(prefix="local-sagemaker-")) if data_dir is None
                    else Path(data_dir) / "work")
        work_dir.mkdir(parents=True, exist_ok=True)
        self.settings = Settings(region=region, work_dir=work_dir, workers=workers,
                                 keep_sandboxes=keep_sandboxes)
        store = Store(Path(data_dir) if data_dir is not None else None)
        self.ctx = Context(self.settings, store, JobManager(self.settings, store),
                           EndpointManager(self.settings, store))
        # uvicorn keeps client connections alive (werkzeug's server closes each one), so a
        # request thread keeps its pooled connection to the model server too.
        self._socket = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self._server = uvicorn.Server(uvicorn.Config(
            WSGIMiddleware(EmulatorApp(self.ctx, authorizer, self._s3_mirror, self._notification_mirror),
                           workers=REQUEST_THREADS),
            log_config=None,
            access_log=False, lifespan="off", timeout_graceful_shutdown=5))
        connect_host = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
        self.settings.endpoint_url = f"http://{connect_host}:{self._socket.getsockname()[1]}"
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return self.settings.endpoint_url

    def start(self) -> None:
        """Serve in a background thread, then bring back what a previous run left in --data-dir."""
        self.ctx.jobs.recover()
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]},
                                        name="http", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the HTTP server did not start on {self.url}")
            time.sleep(0.01)
        threading.Thread(target=self._warm_up, name="warm-up", daemon=True).start()
        if self._s3_mirror is not None:
            count = self._s3_mirror.load(self._s3(), self.settings.region)
            log.info("restored %d S3 objects from %s", count, self._s3_mirror.root)
        if self._notification_mirror is not None:
            restored = self._notification_mirror.load(
                lambda service, region: s3util.aws_client(service, self.settings.endpoint_url, region))
            log.info("restored SNS topics, subscriptions and SQS queues %s from %s", restored,
                     self._notification_mirror.path)
        self.ctx.endpoints.restore()

    def _warm_up(self) -> None:
        """Pay the one-off costs (boto3 clients, moto's per-service apps) before the first job
        does: they would otherwise add a good part of a second to its overhead."""
        try:
            self._s3().list_buckets()
            s3util.aws_client("logs", self.settings.endpoint_url, self.settings.region).describe_log_groups(limit=1)
        except Exception:  # only an optimisation: the first job pays instead
            log.debug("warm-up failed", exc_info=True)

    def _s3(self) -> Any:
        return s3util.aws_client("s3", self.settings.endpoint_url, self.settings.region)

    def shutdown(self) -> None:
        """Stop jobs and model servers (their processes too), save S3 when there is a data dir,
        then stop the HTTP server."""
        self.ctx.jobs.shutdown()
        self.ctx.endpoints.shutdown()
        if self._s3_mirror is not None and self._thread is not None:
            try:
                self._s3_mirror.sync()
                log.info("S3 kept in %s (%d objects)", self._s3_mirror.root, self._s3_mirror.object_count())
            except Exception:  # the rest of the state is safe; say loudly what is lost
                log.exception("writing S3 to %s failed: S3 changes since the last write will not "
                              "survive this restart", self._s3_mirror.root)
        if self._thread is not None:
            self._server.should_exit = True
            self._thread.join()
        self._socket.close()
        if self._own_work_dir:
            shutil.rmtree(self.settings.work_dir, ignore_errors=True)
