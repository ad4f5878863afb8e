"""Screenshot a logged-in Airflow UI page with Debian's headless Chromium.

The UI authenticates with the `_token` cookie that the login page sets. Chromium's
`--screenshot` flag can set no cookie and does not wait for the page's API calls, so this
drives the same binary over the DevTools protocol (loopback only): set the cookie, open the
page, wait until the expected text has rendered, capture.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from websockets.sync.client import ClientConnection, connect

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
]


class BrowserError(RuntimeError):
    """Chromium is missing, failed to start, or the page never showed what was expected."""


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        raise BrowserError("Debian's chromium is not installed: run .ci/system-deps.sh")
    return path


class _DevTools:
    def __init__(self, websocket: ClientConnection) -> None:
        self._ws = websocket
        self._next_id = 0

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        self._ws.send(json.dumps({"id": self._next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self._ws.recv(timeout=60))
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                return message["result"]


def _page_websocket(profile: Path, process: subprocess.Popen[bytes], timeout: float) -> str:
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + timeout
    while not port_file.exists() or not port_file.read_text().strip():
        if process.poll() is not None:
            raise BrowserError(f"chromium exited with code {process.returncode}")
        if time.monotonic() > deadline:
            raise BrowserError("chromium did not open its DevTools port")
        time.sleep(0.2)
    port = int(port_file.read_text().split()[0])
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
        targets = json.load(response)
    pages = [t for t in targets if t.get("type") == "page"]
    if not pages:
        raise BrowserError(f"no page target in {targets}")
    return pages[0]["webSocketDebuggerUrl"]


def screenshot(
    url: str,
    token: str,
    out: Path,
    expect_text: list[str],
    size: tuple[int, int] = (1600, 1000),
    timeout: float = 90,
) -> str:
    """Save a PNG of `url` seen by the user owning `token`; returns the page's visible text."""
    profile = Path(tempfile.mkdtemp(prefix="compose-chromium-"))
    log = out.with_suffix(".chromium.log")
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [chromium_path(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
             f"--window-size={size[0]},{size[1]}", "about:blank"],
            stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
    try:
        websocket_url = _page_websocket(profile, process, timeout=30)
        with connect(websocket_url, max_size=None, open_timeout=30) as websocket:
            return _capture(_DevTools(websocket), url, token, out, expect_text, size, timeout)
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        shutil.rmtree(profile, ignore_errors=True)


def _capture(devtools: _DevTools, url: str, token: str, out: Path, expect_text: list[str],
             size: tuple[int, int], timeout: float) -> str:
    parts = urlsplit(url)
    devtools.call("Emulation.setDeviceMetricsOverride", width=size[0], height=size[1],
                  deviceScaleFactor=1, mobile=False)
    devtools.call("Network.setCookie", name="_token", value=token, domain=parts.hostname,
                  path="/", httpOnly=False, secure=False)
    devtools.call("Page.navigate", url=url)
    deadline = time.monotonic() + timeout
    text = ""
    while True:
        result = devtools.call("Runtime.evaluate", returnByValue=True,
                               expression="document.body ? document.body.innerText : ''")
        text = result["result"].get("value") or ""
        if all(expected in text for expected in expect_text):
            break
        if time.monotonic() > deadline:
            out.with_suffix(".txt").write_text(text)
            _save(devtools, out)
            raise BrowserError(
                f"{url} never showed {expect_text} within {timeout:.0f} s; "
                f"see {out} and {out.with_suffix('.txt')}"
            )
        time.sleep(1)
    time.sleep(2)  # let the grid's cells and icons finish painting
    _save(devtools, out)
    return text


def _save(devtools: _DevTools, out: Path) -> None:
    shot = devtools.call("Page.captureScreenshot", format="png")
    out.write_bytes(base64.b64decode(shot["data"]))
