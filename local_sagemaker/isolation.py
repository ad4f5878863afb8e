"""A literal ``/opt/ml`` per job instance and model server: a private mount namespace.

Each process that stands for a container is started under bubblewrap with its sandbox directory
bound at ``/opt/ml``, so unmodified SageMaker scripts that open ``/opt/ml/...`` work, and two
instances never see each other's files. The rest of the file system stays as it is (the image
environment, the emulator's work dir). Where namespaces are unavailable (no ``bwrap``, or an
unprivileged container that forbids them), :func:`mode` is ``"remap"``: callers rewrite ``/opt/ml``
in arguments and point ``SAGEMAKER_BASE_DIR``/``OPT_ML_DIR`` at the sandbox instead; that is logged
once, because scripts with literal paths then fail where SageMaker would not.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path

log = logging.getLogger("local_sagemaker.isolation")
CONTAINER_OPT_ML = "/opt/ml"
_OPT_ML_RE = re.compile(r"(?:(?<=^)|(?<=[=:,]))/opt/ml(?=/|$|[,:])")
MODE_VARIABLE = "LOCAL_SAGEMAKER_ISOLATION"  # "namespace" | "remap" | unset (probe)


def _bwrap_argv(bwrap: str, opt_ml: Path, etc_hosts: Path | None = None) -> list[str]:
    hosts = ["--ro-bind", str(etc_hosts), "/etc/hosts"] if etc_hosts is not None else []
    return [
        bwrap,
        "--dev-bind", "/", "/",
        "--bind", str(opt_ml), CONTAINER_OPT_ML,
        *hosts,
        "--die-with-parent",
        "--chdir", CONTAINER_OPT_ML,
        "--",
    ]  # fmt: skip


def _probe() -> str | None:
    """None when a namespace with a bound /opt/ml works here, else why not."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return "bubblewrap (bwrap) is not installed"
    with tempfile.TemporaryDirectory() as tmp:
        marker = Path(tmp) / "probe"
        marker.write_text("ok")
        argv = [*_bwrap_argv(bwrap, Path(tmp)), "cat", f"{CONTAINER_OPT_ML}/probe"]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"bwrap could not run ({exc})"
        if done.returncode != 0 or done.stdout != "ok":
            return f"bwrap failed: {(done.stderr or done.stdout).strip()[:200]}"
    return None


@cache
def mode() -> str:
    """``"namespace"`` (literal /opt/ml) or ``"remap"`` (paths rewritten); decided once."""
    wanted = os.environ.get(MODE_VARIABLE, "").strip().lower()
    if wanted == "remap":
        log.warning("isolation: %s=remap: /opt/ml paths are remapped, not mounted", MODE_VARIABLE)
        return "remap"
    why_not = _probe()
    if why_not is None:
        return "namespace"
    if wanted == "namespace":
        raise RuntimeError(f"{MODE_VARIABLE}=namespace but {why_not}")
    log.warning(
        "isolation: no private mount namespace (%s): /opt/ml is remapped in arguments and "
        "SAGEMAKER_BASE_DIR/OPT_ML_DIR; scripts that open literal /opt/ml paths will fail here",
        why_not,
    )
    return "remap"


def contained(argv: list[str], opt_ml: Path, *, etc_hosts: Path | None = None) -> list[str]:
    """``argv`` run with ``opt_ml`` at ``/opt/ml`` (unchanged in remap mode).

    ``etc_hosts``, when given, is what the process sees as ``/etc/hosts``: how the platform makes
    the other instances' names (``algo-2``...) resolvable, as SageMaker does for a cluster.
    """
    if mode() != "namespace":
        return list(argv)
    bwrap = shutil.which("bwrap")
    assert bwrap is not None
    return [*_bwrap_argv(bwrap, opt_ml, etc_hosts), *argv]


def hosts_file(path: Path, hostnames: list[str], address: str = "127.0.0.1") -> Path:
    """Write an ``/etc/hosts`` for a container: this machine's entries plus ``hostnames``."""
    try:
        base = Path("/etc/hosts").read_text()
    except OSError:
        base = "127.0.0.1\tlocalhost\n"
    lines = [base.rstrip("\n"), *(f"{address}\t{name}" for name in hostnames)]
    path.write_text("\n".join(lines) + "\n")
    return path


def remap_opt_ml(value: str, opt_ml: Path) -> str:
    """Remap mode: ``/opt/ml`` at the start of ``value`` (or after ``=``, ``:``, ``,``) rewritten
    to the sandbox's ``opt_ml``."""
    return _OPT_ML_RE.sub(str(opt_ml).replace("\\", "\\\\"), value)
