"""Run docker-compose.yaml's services as plain processes on this machine, for a test without Docker.

Each service's command, environment, health check and depends_on come from the compose model;
only what a container network provides is translated: service hostnames and container ports
become 127.0.0.1 and free ports, container paths become the mounted directories (bind mounts:
the repo; named volumes: directories under the work dir), and every process gets its own
AIRFLOW_HOME as every container has its own file system. Test-only deviations, all to keep
servers on loopback: the api-server binds 127.0.0.1, the emulator's `--host` is 127.0.0.1, and
the scheduler and triggerer skip their log servers (which bind all interfaces; the logs volume
is shared, so the api-server reads task logs from files as it does in the stack).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .compose_file import REPO, as_argv, healthcheck_argv, parse_port, parse_volume

VENV_BIN = Path(sys.executable).parent
IMAGE_AIRFLOW_HOME = "/opt/airflow"


class StackError(RuntimeError):
    """A service failed to start, exited, or never became healthy; the message says which."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def postgres_bin_dir() -> Path:
    """Debian's server binaries (postgresql-NN); newest version first."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if not candidates:
        raise StackError(
            "no PostgreSQL server under /usr/lib/postgresql/*/bin: run .ci/system-deps.sh"
        )
    return candidates[-1].parent


def require_host_tools() -> None:
    """Fail early, naming the fix, when the machine lacks what the stack needs."""
    postgres_bin_dir()
    if importlib.util.find_spec("asyncpg") is None:
        raise StackError(
            "asyncpg is not installed: Airflow 3's Postgres backend needs it "
            "(pip install -r requirements-dev.txt -c constraints.txt)"
        )


def _seconds(value: str | int | float | None, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, int | float):
        return float(value)
    total, matched = 0.0, False
    for amount, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", value):
        total += float(amount) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
        matched = True
    if not matched:
        raise ValueError(f"unsupported duration {value!r}")
    return total


def _env_file_path(entry: str | Mapping[str, Any]) -> str:
    return entry if isinstance(entry, str) else str(entry["path"])


@dataclass
class Translation:
    """Maps container-network names and paths to this host."""

    ports: dict[tuple[str, int], int]  # (service, container port) -> host port on 127.0.0.1
    volumes_dir: Path

    def host_port(self, service: str, container_port: int) -> int:
        return self.ports[(service, container_port)]

    def mounts(self, service: Mapping[str, Any]) -> list[tuple[str, Path]]:
        """(container path, host path) of a service's volumes, longest container path first."""
        pairs = []
        for spec in service.get("volumes", []):
            volume = parse_volume(spec)
            if volume.is_bind:
                host = (REPO / volume.source).resolve()
            else:
                host = self.volumes_dir / volume.source
                host.mkdir(parents=True, exist_ok=True)
            pairs.append((volume.target, host))
        return sorted(pairs, key=lambda pair: len(pair[0]), reverse=True)

    def __call__(self, name: str, service: Mapping[str, Any], text: str) -> str:
        for (other, container_port), host_port in self.ports.items():
            hosts = [other] + (["localhost"] if other == name else [])
            for host in hosts:
                text = re.sub(
                    rf"(?<![\w.-]){re.escape(host)}:{container_port}(?!\d)",
                    f"127.0.0.1:{host_port}",
                    text,
                )
        for target, host in self.mounts(service):
            text = re.sub(rf"{re.escape(target)}(?![\w.-])", str(host), text)
        # The image's AIRFLOW_HOME holds the mounted project packages: the repo root here.
        return re.sub(rf"{re.escape(IMAGE_AIRFLOW_HOME)}(?![\w.-])", str(REPO), text)


@dataclass
class Service:
    name: str
    spec: dict[str, Any]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    healthy: bool = False
    stop: Callable[[], None] | None = None

    def log_tail(self, lines: int = 60) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class ProcessStack:
    """Starts the services in depends_on order and stops all of them on `close()`."""

    model: dict[str, Any]
    work_dir: Path
    log_dir: Path
    # The contents of `.env` for services that list it in `env_file` (lower precedence than
    # their `environment`, as in Compose).
    dotenv: dict[str, str] = field(default_factory=dict)
    services: dict[str, Service] = field(default_factory=dict, init=False)
    translate: Translation = field(init=False)

    def __post_init__(self) -> None:
        require_host_tools()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._events = self.log_dir / "stack.log"
        self._events.write_text("")
        self._started = time.monotonic()
        ports = {}
        for name, spec in self.model["services"].items():
            for port in spec.get("ports", []):
                ports[(name, parse_port(port).container_port)] = free_port()
        # Unpublished ports other services reach by name (postgres).
        ports[("postgres", 5432)] = free_port()
        self.translate = Translation(ports, self.work_dir / "volumes")

    def event(self, message: str) -> None:
        """One line in stack.log: what happened when, for reading a slow or failed CI run."""
        with self._events.open("a") as out:
            out.write(f"{time.monotonic() - self._started:7.1f}s {message}\n")

    # --- environment and command of one service ------------------------------------------
    def _environment(self, name: str, spec: dict[str, Any]) -> dict[str, str]:
        home = self.work_dir / "homes" / name
        home.mkdir(parents=True, exist_ok=True)
        env = {
            "PATH": os.pathsep.join([str(VENV_BIN), str(postgres_bin_dir()), os.environ["PATH"]]),
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "TZ": "UTC",
            "AIRFLOW_HOME": str(home),
        }
        if any(_env_file_path(entry) == ".env" for entry in spec.get("env_file", [])):
            env.update(self.dotenv)
        for key, value in (spec.get("environment") or {}).items():
            env[key] = self.translate(name, spec, "" if value is None else str(value))
        return env

    def argv(self, name: str) -> list[str]:
        """The service's command as the image would run it, translated to this host."""
        spec = self.model["services"][name]
        if "entrypoint" in spec:
            argv = as_argv(spec["entrypoint"]) + as_argv(spec.get("command"))
        else:  # the official image's entrypoint runs `airflow <command>`
            argv = ["airflow", *as_argv(spec.get("command"))]
        argv = [self.translate(name, spec, arg) for arg in argv]
        if "--host" in argv:
            argv[argv.index("--host") + 1] = "127.0.0.1"
        if "--port" in argv:  # a server's own listening port, published under another number
            index = argv.index("--port") + 1
            argv[index] = str(self.translate.host_port(name, int(argv[index])))
        if argv[:2] in (["airflow", "scheduler"], ["airflow", "triggerer"]):
            argv.append("--skip-serve-logs")
        if argv[0] == "python":
            argv[0] = sys.executable
        elif argv[0] == "airflow":
            argv[0] = str(VENV_BIN / "airflow")
        return argv

    # --- lifecycle -------------------------------------------------------------------------
    def start(self, name: str) -> Service:
        spec = self.model["services"][name]
        service = Service(name, spec, self._environment(name, spec), self.log_dir / f"{name}.log")
        self.services[name] = service
        service.log_path.write_bytes(b"")
        self.event(f"start {name}")
        if name == "postgres":
            self._start_postgres(service)
            return service
        if name == "airflow-apiserver":
            port = self.translate.host_port(name, parse_port(spec["ports"][0]).container_port)
            service.env.update({"AIRFLOW__API__HOST": "127.0.0.1", "AIRFLOW__API__PORT": str(port)})
        with service.log_path.open("ab") as log:
            service.process = subprocess.Popen(
                self.argv(name),
                env=service.env,
                cwd=service.env["HOME"],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: stop() ends its children too
            )
        return service

    def _start_postgres(self, service: Service) -> None:
        """What the postgres image's entrypoint does: initdb, start, create the database."""
        env = service.env
        user, password, database = env["POSTGRES_USER"], env["POSTGRES_PASSWORD"], env["POSTGRES_DB"]
        port = self.translate.host_port("postgres", 5432)
        bin_dir = postgres_bin_dir()
        # Outside the test's 0700 tmp tree: the server runs as the postgres user under root.
        base = Path(tempfile.mkdtemp(prefix="compose-postgres-"))
        as_postgres: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(base, "postgres", "postgres")
            as_postgres = ["runuser", "-u", "postgres", "--"]
        (base / "pwfile").write_text(password + "\n")
        if as_postgres:
            shutil.chown(base / "pwfile", "postgres", "postgres")
        data = base / "data"
        log = service.log_path

        def run(argv: list[str]) -> None:
            with log.open("ab") as out:
                result = subprocess.run(
                    as_postgres + argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=base,
                    timeout=120, check=False,
                )
            if result.returncode != 0:
                raise StackError(f"postgres: {' '.join(argv)} failed:\n{service.log_tail()}")

        def stop() -> None:  # also after a failed start: no server then, only files
            if (data / "postmaster.pid").exists():
                subprocess.run(as_postgres + [str(bin_dir / "pg_ctl"), "-D", str(data), "-m",
                                              "fast", "-w", "stop"],
                               cwd=base, capture_output=True, check=False)
            server_log = base / "server.log"
            if server_log.exists():
                with log.open("a") as out:
                    out.write(server_log.read_text(errors="replace"))
            shutil.rmtree(base, ignore_errors=True)

        service.stop = stop
        run([str(bin_dir / "initdb"), "-D", str(data), "-U", user, f"--pwfile={base / 'pwfile'}",
             "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8"])
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {base}"
        run([str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(base / "server.log"),
             "-o", options, "-w", "-t", "60", "start"])

        service.env.update({"PGHOST": "127.0.0.1", "PGPORT": str(port), "PGPASSWORD": password})
        run([str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", user, database])

    def check_health(self, name: str) -> bool:
        """Run the service's compose health check once, as the container would."""
        service = self.services[name]
        kind, argv = healthcheck_argv(service.spec)
        argv = [self.translate(name, service.spec, arg) for arg in argv]
        if kind == "CMD-SHELL":
            argv = ["bash", "-c", argv[0]]
        elif argv[0] == "python":
            argv[0] = sys.executable
        timeout = _seconds(service.spec["healthcheck"].get("timeout"), 30)
        try:
            result = subprocess.run(
                argv, env=service.env, cwd=service.env["HOME"], capture_output=True,
                timeout=timeout, check=False,
            )
        except subprocess.TimeoutExpired:
            return False
        return result.returncode == 0

    def _assert_running(self, service: Service) -> None:
        if service.process is not None and service.process.poll() is not None:
            raise StackError(
                f"{service.name} exited with code {service.process.returncode}:\n"
                f"{service.log_tail()}"
            )

    def wait_healthy(self, name: str, timeout: float) -> None:
        service = self.services[name]
        deadline = time.monotonic() + timeout
        while not service.healthy:
            self._assert_running(service)
            if self.check_health(name):
                service.healthy = True
                self.event(f"healthy {name}")
                return
            if time.monotonic() > deadline:
                raise StackError(f"{name} not healthy after {timeout:.0f} s:\n{service.log_tail()}")
            time.sleep(1)

    def wait_completed(self, name: str, timeout: float) -> None:
        service = self.services[name]
        assert service.process is not None
        try:
            code = service.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise StackError(f"{name} still running after {timeout:.0f} s:\n{service.log_tail()}") from None
        if code != 0:
            raise StackError(f"{name} exited with code {code}:\n{service.log_tail()}")
        self.event(f"completed {name}")

    def up(self, timeout: float = 300) -> None:
        """`docker compose up --wait`: start in depends_on order, then wait for every check."""
        deadline = time.monotonic() + timeout
        specs = self.model["services"]
        satisfied: set[tuple[str, str]] = set()

        def ensure(dep: str, condition: str) -> None:
            if (dep, condition) in satisfied:
                return
            remaining = max(deadline - time.monotonic(), 1)
            if condition == "service_healthy":
                self.wait_healthy(dep, remaining)
            elif condition == "service_completed_successfully":
                self.wait_completed(dep, remaining)
            elif condition != "service_started":
                raise StackError(f"unsupported depends_on condition {condition!r}")
            satisfied.add((dep, condition))

        def bring_up(name: str) -> None:
            if name in self.services:
                return
            for dep, spec in (specs[name].get("depends_on") or {}).items():
                if dep not in specs and spec.get("required") is False:
                    continue
                bring_up(dep)
                ensure(dep, spec.get("condition", "service_started"))
            self.start(name)

        # Fewest dependencies first, so independent services start early and overlap.
        for name in sorted(specs, key=lambda n: len(specs[n].get("depends_on") or {})):
            bring_up(name)
        for name, spec in specs.items():
            if "healthcheck" in spec:
                self.wait_healthy(name, max(deadline - time.monotonic(), 1))

    def close(self) -> None:
        """Stop every process this stack started; kill what ignores SIGTERM.

        All processes get SIGTERM at once (they stop in parallel), then services with their
        own stop step (postgres) stop last, so nothing loses its database while shutting down.
        """
        self.event("stopping")
        running = [s for s in self.services.values() if s.process is not None]
        for service in running:
            _signal_group(service.process, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for service in running:
            try:
                service.process.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                _signal_group(service.process, signal.SIGKILL)
                service.process.wait(10)
            # Children left in the group (task runners, model servers) go with it.
            _signal_group(service.process, signal.SIGKILL)
            self.event(f"stopped {service.name}")
        for service in self.services.values():
            if service.stop is not None:
                service.stop()
                self.event(f"stopped {service.name}")


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
