"""A model container's start command: the image's ``serve``, run with the image environment's Python.

The supervisor runs this file (never the emulator's interpreter) inside the container's sandbox.
It does what sagemaker-containers' ``server.start`` does in the image: install the user module from
``SAGEMAKER_SUBMIT_DIRECTORY`` (download, generated ``setup.py``, ``pip install .`` with any
``requirements.txt``, import) and run gunicorn with gevent workers on ``SAGEMAKER_SERVING_MODULE``,
with the same arguments. Differences, each because the emulator is not a container:
- no nginx: the image's nginx only proxies to gunicorn; gunicorn listens on the loopback socket the
  supervisor passes as ``--listen-fd`` (``-b fd://N``) instead of ``unix:/tmp/gunicorn.sock``;
- ``pip install`` writes into ``--site`` (a per-container directory, on the path after the image's
  site-packages) rather than into the shared image environment, and builds without build isolation
  so that no package index is needed to build the user's module (the environment's setuptools);
- when the emulator that started it is gone, gunicorn is stopped and this process exits.

It imports nothing from the emulator: only the image environment's packages.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import subprocess
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
if sys.path and os.path.abspath(sys.path[0] or ".") == _HERE:
    del sys.path[0]  # the emulator's own directory is not on the container's path

PR_SET_PDEATHSIG = 1
PIP_SETTINGS = {"PIP_NO_BUILD_ISOLATION": "0", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def _install_user_module(site: str) -> None:
    """Download, install and import ``SAGEMAKER_PROGRAM`` as the image's server does at start."""
    from sagemaker_containers import _env, _modules

    serving_env = _env.ServingEnv()
    if not serving_env.module_name:
        return
    os.makedirs(site, exist_ok=True)
    sys.path.append(site)
    settings = {**PIP_SETTINGS, "PIP_TARGET": site}
    previous = {key: os.environ.get(key) for key in settings}
    os.environ.update(settings)
    try:
        _modules.import_module(serving_env.module_dir, serving_env.module_name)
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _gunicorn_argv(listen_fd: int) -> list[str]:
    """sagemaker-containers' gunicorn command line, bound to the inherited socket."""
    from sagemaker_containers import _env

    serving_env = _env.ServingEnv()
    pythonpath = ",".join([*sys.path, _env.code_dir])
    return [
        "gunicorn",
        "--timeout", str(serving_env.model_server_timeout),
        "-k", "gevent",
        "--pythonpath", pythonpath,
        "-b", f"fd://{listen_fd}",
        "--worker-connections", str(1000 * serving_env.model_server_workers),
        "-w", str(serving_env.model_server_workers),
        "--log-level", "info",
        serving_env.framework_module,
    ]  # fmt: skip


def _die_with_this_process() -> None:
    """In the gunicorn child: SIGTERM when this launcher dies, however it dies."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen-fd", type=int, required=True, help="listening socket to serve on")
    parser.add_argument("--site", required=True, help="where pip installs the user module")
    args = parser.parse_args(argv)
    parent = os.getppid()
    _install_user_module(args.site)
    gunicorn = subprocess.Popen(
        _gunicorn_argv(args.listen_fd),
        pass_fds=(args.listen_fd,),
        preexec_fn=_die_with_this_process,  # noqa: PLW1509 (no threads in this process)
    )

    def terminate(signo: int, frame: object) -> None:
        if gunicorn.poll() is None:
            gunicorn.terminate()

    signal.signal(signal.SIGTERM, terminate)
    while True:
        try:
            return gunicorn.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            if os.getppid() != parent:  # the emulator is gone: a model server must not outlive it
                gunicorn.terminate()
                gunicorn.wait()
                return 0


if __name__ == "__main__":
    sys.exit(main())
