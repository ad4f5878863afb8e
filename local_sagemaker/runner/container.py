"""One job instance as a container: the image's environment, a literal /opt/ml, the platform's env.

What a SageMaker host gives the image's process, and nothing of the emulator's own: the image's
interpreter and packages (:mod:`local_sagemaker.images`), its own ``/opt/ml`` in a private mount
namespace (:mod:`local_sagemaker.isolation`), the other instances' host names resolvable, AWS
clients pointed at the emulator's endpoint, pip installs kept in the instance, and the request's
``Environment``. In the isolation's ``remap`` fallback, ``/opt/ml`` in the command is rewritten
into the sandbox and ``SAGEMAKER_BASE_DIR`` (the training toolkit) / ``OPT_ML_DIR`` (this
project's scripts) point there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .. import images, isolation
from ..iam import EXECUTION_ACCESS_KEY
from .context import JobFailure
from .sandbox import Sandbox

# A Debian-style image's default PATH; the image's own bin directory goes in front of it.
CONTAINER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Host settings a container inherits from the machine it runs on (locale, time zone, where pip
# finds packages and how it reaches the network): the "platform", not the emulator's Python.
_HOST_ENV = ("HOME", "USER", "TMPDIR", "TZ", "LANG", "LC_ALL", "LC_CTYPE")
_HOST_ENV_PREFIXES = ("PIP_",)
_PROXY_ENV = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")


def image_for(uri: str | None, what: str) -> images.ImageEnvironment:
    """The built environment of the job's image (checked again at run time: it may have been
    removed since Create); a job that cannot have it fails with ClientError."""
    try:
        return images.resolve(uri or "")
    except images.UnsupportedImage as exc:
        raise JobFailure(f"ClientError: {what}: {exc}") from exc


@dataclass(frozen=True)
class Container:
    """How one instance (``box``) of a job runs ``image``."""

    image: images.ImageEnvironment
    box: Sandbox
    hosts: tuple[str, ...]

    @property
    def remapped(self) -> bool:
        return isolation.mode() != "namespace"

    def path(self, value: str) -> str:
        """A container path or argument as the process must be given it."""
        return self.box.remap(value) if self.remapped else value

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` (a ContainerEntrypoint + arguments, or the image's own program) ready to
        start: ``python3`` is the image's Python, and it runs inside the instance's namespace."""
        mapped = [self.path(a) for a in argv]
        mapped[0] = self.image.interpreter(mapped[0])
        etc_hosts = isolation.hosts_file(self.box.root / "hosts", list(self.hosts))
        return isolation.contained(mapped, self.box.opt_ml, etc_hosts=etc_hosts)

    def environ(self, platform: dict[str, str], request: dict | None) -> dict[str, str]:
        """The process environment: host basics, the platform's variables, the image's ENV,
        then the request's Environment (which overrides the image's, as ``docker run -e`` does)."""
        base = {k: v for k, v in os.environ.items() if k in _HOST_ENV + _PROXY_ENV}
        base.update({k: v for k, v in os.environ.items() if k.startswith(_HOST_ENV_PREFIXES)})
        base["PATH"] = CONTAINER_PATH
        base.update(platform)
        env = self.image.environ(base)
        env.update(self._local_installs())
        env.update({k: str(v) for k, v in (request or {}).items()})
        if self.remapped:
            env = {k: self.path(v) for k, v in env.items()}
            env["SAGEMAKER_BASE_DIR"] = str(self.box.opt_ml)
            env["OPT_ML_DIR"] = str(self.box.opt_ml)
        return env

    def _local_installs(self) -> dict[str, str]:
        """What a container installs stays in that container: pip (the toolkit installing a
        ``requirements.txt``, or the script itself) writes into the instance's own directory,
        first on ``sys.path``, never into the image environment other jobs share."""
        site = self.box.root / "site-packages"
        site.mkdir(parents=True, exist_ok=True)
        return {"PIP_TARGET": str(site), "PYTHONPATH": str(site)}


def aws_environ(endpoint_url: str, region: str) -> dict[str, str]:
    """AWS SDKs in the container reach the emulator (boto3 >= 1.28 reads AWS_ENDPOINT_URL)."""
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_ACCESS_KEY_ID": EXECUTION_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": "test",
    }
