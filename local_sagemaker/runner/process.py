"""Launch a job's instance processes, stream their output, stop them on request.

Each instance runs in its own process group so a stop (or a sibling's failure) can
SIGTERM the whole tree, then SIGKILL it after STOP_GRACE_SECONDS, as SageMaker does with
its 120 s window (shortened here: nothing is billed). The group's leader is the container's first
process (bubblewrap, then the image's ``train``); the user script is its child, so when a stop makes
the leader exit first, the rest of the group keeps the grace period to finish (save a checkpoint)
before it is killed. Without a stop, whatever outlives the leader dies with it, like a container.

Separate SageMaker instances do not share CPUs, so each instance process is pinned to its own
slice of this host's CPUs (:func:`instance_cpus`); thread pools that size themselves from the CPU
affinity (pandas' parallel read_csv, OpenBLAS, joblib) then see one instance's CPUs, not all.
"""

from __future__ import annotations

import collections
import contextlib
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .context import JobFailure

STOP_GRACE_SECONDS = 5.0
TAIL_LINES = 30
LineSink = Callable[[str], None]


@dataclass
class ProcessSpec:
    argv: list[str]
    cwd: Path
    env: dict[str, str]
    sink: LineSink  # receives every stdout and stderr line
    cpus: frozenset[int] | None = None  # CPU affinity of the instance; None leaves it unchanged


def instance_cpus(count: int) -> list[frozenset[int] | None]:
    """The CPUs each of ``count`` instances gets: this process's CPUs cut into equal disjoint
    slices of ``cpus // count`` (at least one; with more instances than CPUs they take turns).
    ``None`` for every instance where CPU affinity cannot be set (not Linux)."""
    if not hasattr(os, "sched_setaffinity"):
        return [None] * count
    cpus = sorted(os.sched_getaffinity(0))
    share = max(1, len(cpus) // count)
    return [frozenset(cpus[(i * share + k) % len(cpus)] for k in range(share)) for i in range(count)]


@contextlib.contextmanager
def _affinity_for_children(cpus: frozenset[int] | None) -> Iterator[None]:
    """Narrow this thread's CPU affinity while it starts a child, which inherits it from the
    first instruction (no window in which the child's threads could start on other CPUs)."""
    if cpus is None:
        yield
        return
    before = os.sched_getaffinity(0)  # pid 0 is the calling thread on Linux
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


@dataclass
class ProcessOutcome:
    exit_code: int
    started: float  # time.monotonic()
    ended: float
    stderr_tail: list[str] = field(default_factory=list)
    stdout_tail: list[str] = field(default_factory=list)

    @property
    def output_tail(self) -> list[str]:
        """The last lines that explain a failure: stderr if any, else stdout."""
        return self.stderr_tail or self.stdout_tail


@dataclass
class RunOutcome:
    processes: list[ProcessOutcome]
    stopped: bool  # the stop event fired before every process ended

    @property
    def script_seconds(self) -> float:
        return max(p.ended for p in self.processes) - min(p.started for p in self.processes)


class _Instance:
    """One running process with its output readers."""

    def __init__(self, spec: ProcessSpec) -> None:
        self.started = time.monotonic()
        try:
            with _affinity_for_children(spec.cpus):
                self.popen = subprocess.Popen(
                    spec.argv,
                    cwd=spec.cwd,
                    env=spec.env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    start_new_session=True,
                )
        except OSError as exc:
            raise JobFailure(
                f"AlgorithmError: could not start {spec.argv[0]!r}: {exc.strerror or exc}"
            ) from exc
        self.ended = self.started
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self.stdout_tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self.readers = [
            threading.Thread(
                target=self._read,
                args=(self.popen.stdout, spec.sink, self.stdout_tail),
                daemon=True,
            ),
            threading.Thread(
                target=self._read,
                args=(self.popen.stderr, spec.sink, self.stderr_tail),
                daemon=True,
            ),
        ]
        for reader in self.readers:
            reader.start()

    @staticmethod
    def _read(pipe, sink: LineSink, tail: collections.deque) -> None:
        for raw in iter(pipe.readline, b""):
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            tail.append(line)
            sink(line)
        pipe.close()

    def signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.popen.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def group_alive(self) -> bool:
        try:
            os.killpg(self.popen.pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def outcome(self) -> ProcessOutcome:
        return ProcessOutcome(
            exit_code=self.popen.returncode,
            started=self.started,
            ended=self.ended,
            stderr_tail=[line for line in self.stderr_tail if line.strip()],
            stdout_tail=[line for line in self.stdout_tail if line.strip()],
        )


class _Stop:
    """When the grace period of a stop ends (None while nothing is being stopped)."""

    def __init__(self) -> None:
        self.deadline: float | None = None
        self._lock = threading.Lock()

    def begin(self, grace: float) -> float:
        with self._lock:
            if self.deadline is None:
                self.deadline = time.monotonic() + grace
            return self.deadline


def _terminate(instances: list[_Instance], grace: float, stop: _Stop | None = None) -> None:
    """SIGTERM every live process group, SIGKILL whatever is left after ``grace`` seconds."""
    deadline = (stop or _Stop()).begin(grace)
    live = [i for i in instances if i.popen.poll() is None]
    for inst in live:
        inst.signal_group(signal.SIGTERM)
    for inst in live:
        try:
            inst.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            inst.signal_group(signal.SIGKILL)


def _reap_group(inst: _Instance, stop: _Stop) -> None:
    """Kill what outlives the group's leader; during a stop, only once the grace period ends."""
    if stop.deadline is not None:
        while inst.group_alive() and time.monotonic() < stop.deadline:
            time.sleep(0.02)
    inst.signal_group(signal.SIGKILL)


def run_processes(
    specs: list[ProcessSpec], stop_event: threading.Event, grace: float | None = None
) -> RunOutcome:
    """Run all instances in parallel until they end; the first failure stops the others."""
    grace = STOP_GRACE_SECONDS if grace is None else grace
    instances: list[_Instance] = []
    try:
        for spec in specs:
            instances.append(_Instance(spec))
    except JobFailure:
        _terminate(instances, 0)
        raise
    finished: queue.Queue[_Instance] = queue.Queue()
    stop = _Stop()

    def wait(inst: _Instance) -> None:
        inst.popen.wait()
        inst.ended = time.monotonic()
        _reap_group(inst, stop)  # orphans die with their container
        finished.put(inst)

    for inst in instances:
        threading.Thread(target=wait, args=(inst,), daemon=True).start()

    done = threading.Event()
    stopped = threading.Event()

    def watch_stop() -> None:
        while not done.is_set():
            if stop_event.wait(0.1):
                if not done.is_set():
                    stopped.set()
                    _terminate(instances, grace, stop)
                return

    threading.Thread(target=watch_stop, daemon=True).start()
    terminating = False
    for _ in instances:
        inst = finished.get()
        if inst.popen.returncode != 0 and not terminating:
            terminating = True
            threading.Thread(
                target=_terminate, args=(instances, grace, stop), daemon=True
            ).start()
    done.set()
    for inst in instances:
        for reader in inst.readers:
            reader.join(timeout=5)
    return RunOutcome([inst.outcome() for inst in instances], stopped.is_set())
