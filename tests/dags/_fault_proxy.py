"""A loopback HTTP proxy between an Airflow worker and the emulator that injects network faults.

Faults are injected where they happen in production, on the wire, so the code under test runs
unchanged: a request for a chosen SageMaker action can be *held* (it never reaches SageMaker
until released, so the test can SIGKILL the worker at that exact point, or line up two
deployments), the next N requests for an action can be throttled as SageMaker does
(``ThrottlingException``), and every request of a chosen AWS service can be answered 503 (an
outage).
"""

from __future__ import annotations

import http.client
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}
SERVICE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")


@dataclass
class Hold:
    """Hold requests for ``action`` (``X-Amz-Target: SageMaker.<action>``) once ``after`` was
    forwarded; ``count`` of them, until ``release()`` (forward them) or ``drop()`` (never)."""

    action: str
    after: str | None = None
    count: int = 1
    held: list[str] = field(default_factory=list)
    arrived: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))
    gate: threading.Event = field(default_factory=threading.Event)
    forward: bool = True
    serial: threading.Lock = field(default_factory=threading.Lock)

    def wait_arrivals(self, timeout: float) -> None:
        for _ in range(self.count):
            if not self.arrived.acquire(timeout=timeout):
                raise TimeoutError(f"{len(self.held)} of {self.count} {self.action} requests arrived")

    def release(self) -> None:
        self.gate.set()

    def drop(self) -> None:
        self.forward = False
        self.gate.set()


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream)
        self.seen: list[str] = []
        self.hold: Hold | None = None
        self.down: set[str] = set()  # services answered 503
        self.throttled: dict[str, int] = {}  # SageMaker action -> requests left to throttle
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _handle(self) -> None:
                proxy._serve(self)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self.hold is not None:
            self.hold.drop()
        self._server.shutdown()
        self._server.server_close()

    def _matches_hold(self, action: str) -> Hold | None:
        with self._lock:
            hold = self.hold
            if hold is None or action != hold.action or len(hold.held) >= hold.count:
                return None
            if hold.after is not None and hold.after not in self.seen:
                return None
            hold.held.append(action)
        hold.arrived.release()
        return hold

    def _throttle(self, action: str) -> bool:
        with self._lock:
            left = self.throttled.get(action, 0)
            if left:
                self.throttled[action] = left - 1
                self.seen.append(f"{action} (throttled)")
            return bool(left)

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        target = handler.headers.get("X-Amz-Target", "")
        action = target.split(".", 1)[1] if target.startswith("SageMaker.") else ""
        service = SERVICE.search(handler.headers.get("Authorization", ""))
        if service and service.group(1) in self.down:
            self._reply(handler, 503, {"Content-Type": "text/xml"},
                        b"<ErrorResponse><Error><Type>Receiver</Type><Code>ServiceUnavailable</Code>"
                        b"<Message>Service is unavailable</Message></Error></ErrorResponse>")
            return
        if action and self._throttle(action):
            self._reply(handler, 400, {"Content-Type": "application/x-amz-json-1.1"},
                        b'{"__type": "ThrottlingException", "message": "Rate exceeded"}')
            return
        hold = self._matches_hold(action) if action else None
        if hold is not None:
            hold.gate.wait()
            if not hold.forward:
                handler.close_connection = True
                return
            with hold.serial:  # released holds reach SageMaker one after the other, in order
                self._forward(handler, body, action)
            return
        self._forward(handler, body, action)

    def _forward(self, handler: BaseHTTPRequestHandler, body: bytes, action: str) -> None:
        connection = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=300)
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in HOP_BY_HOP}
        connection.request(handler.command, handler.path, body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
        if action:
            with self._lock:
                self.seen.append(action)
        dropped = HOP_BY_HOP if handler.command == "HEAD" else HOP_BY_HOP | {"content-length"}
        out = {k: v for k, v in response.getheaders() if k.lower() not in dropped}
        self._reply(handler, response.status, out, data)
        connection.close()

    @staticmethod
    def _reply(handler: BaseHTTPRequestHandler, status: int, headers: dict[str, str], data: bytes) -> None:
        handler.send_response(status)
        for key, value in headers.items():
            handler.send_header(key, value)
        if handler.command != "HEAD":
            handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(data)
