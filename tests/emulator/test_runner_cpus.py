"""Each instance of a job runs on its own slice of the host's CPUs, as separate machines would."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest

from local_sagemaker.runner import process
from local_sagemaker.runner.process import ProcessSpec, instance_cpus, run_processes

needs_affinity = pytest.mark.skipif(not hasattr(os, "sched_setaffinity"),
                                    reason="CPU affinity is Linux-only")


@needs_affinity
@pytest.mark.parametrize(("host", "count", "expected"), [
    ({0, 1, 2, 3}, 1, [{0, 1, 2, 3}]),
    ({0, 1, 2, 3}, 2, [{0, 1}, {2, 3}]),
    ({0, 1, 2, 3}, 3, [{0}, {1}, {2}]),           # cpu_count // N, the spare CPU stays unused
    ({0, 1}, 3, [{0}, {1}, {0}]),                 # more instances than CPUs: they take turns
    ({2, 5, 7}, 2, [{2}, {5}]),                   # the emulator's own affinity is the pool
])
def test_instance_cpus_splits_the_emulators_cpus(monkeypatch, host, count, expected) -> None:
    monkeypatch.setattr(process.os, "sched_getaffinity", lambda pid: set(host))
    assert instance_cpus(count) == [frozenset(e) for e in expected]


def test_without_affinity_support_nothing_is_pinned(monkeypatch) -> None:
    monkeypatch.delattr(process.os, "sched_setaffinity", raising=False)
    assert instance_cpus(2) == [None, None]


@needs_affinity
def test_each_instance_process_sees_only_its_cpus(tmp_path: Path) -> None:
    slices = instance_cpus(2)
    lines: list[list[str]] = [[], []]
    code = "import os; print(sorted(os.sched_getaffinity(0)))"
    specs = [ProcessSpec([sys.executable, "-c", code], tmp_path, dict(os.environ), lines[i].append,
                         cpus) for i, cpus in enumerate(slices)]
    before = os.sched_getaffinity(0)
    outcome = run_processes(specs, threading.Event())
    assert [p.exit_code for p in outcome.processes] == [0, 0]
    assert lines == [[str(sorted(cpus))] for cpus in slices]
    assert os.sched_getaffinity(0) == before  # the launching thread got its own CPUs back
    if len(before) >= 2:
        assert not slices[0] & slices[1]
