"""Where the SageMaker container files are, and which host of a multi-instance job this is.

Every script resolves ``/opt/ml`` through ``OPT_ML_DIR`` so the offline emulator (and tests) can run
them in a sandbox; on real SageMaker the variable is unset and the defaults are the real paths.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def opt_ml_dir() -> Path:
    return Path(os.environ.get("OPT_ML_DIR", "/opt/ml"))


def env_path(name: str, fallback: str | None = None) -> str | None:
    """An ``SM_*`` path variable, or ``fallback`` under ``OPT_ML_DIR`` (as SageMaker would set it)."""
    value = os.environ.get(name)
    if value:
        return value
    if fallback is None:
        return None
    return str(opt_ml_dir() / fallback)


def resource_config() -> tuple[str, list[str]]:
    """(current_host, hosts) from ``config/resourceconfig.json``; a single ``algo-1`` when absent.

    Training jobs also publish ``SM_CURRENT_HOST`` / ``SM_HOSTS``; the file wins because Processing
    jobs only have the file.
    """
    path = opt_ml_dir() / "config" / "resourceconfig.json"
    if path.is_file():
        try:
            cfg = json.loads(path.read_text())
            host = str(cfg["current_host"])
            hosts = [str(h) for h in cfg.get("hosts") or [host]]
            return host, hosts
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path} is not a valid resource config ({exc})") from exc
    host = os.environ.get("SM_CURRENT_HOST", "algo-1")
    try:
        hosts = json.loads(os.environ.get("SM_HOSTS", "[]")) or [host]
    except ValueError:
        hosts = [host]
    return host, [str(h) for h in hosts]


def shard_name(stem: str, suffix: str) -> str:
    """``stem.suffix`` on one host, ``stem-<host>.suffix`` when several hosts write the same output."""
    host, hosts = resource_config()
    return f"{stem}-{host}{suffix}" if len(hosts) > 1 else f"{stem}{suffix}"
