"""Image environments: which Python environment stands in for which SageMaker image.

A job or model server never runs with the emulator's own interpreter and packages: each supported
image maps to a pinned environment with that image's package set, built once by the set-up
(``python -m local_sagemaker.images build``, which ``./dev install`` runs). A supported image is a
data entry, a folder ``local_sagemaker/images/<name>/`` with an ``image.toml`` (URI patterns, the
image's ENV lines, post-install patches), its ``requirements.txt`` (pinned, with hashes) and
optionally ``site/`` (modules the image has that are not on PyPI). No code changes for a new image.
"""

from __future__ import annotations

import hashlib
import os
import re
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

CATALOG_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = CATALOG_DIR.parents[1]
ENV_ROOT_VARIABLE = "LOCAL_SAGEMAKER_IMAGES_DIR"
STAMP = ".local-sagemaker-image"
_CONTAINER_PYTHONS = re.compile(r"(/usr(/local)?/bin/)?python3?(\.\d+)?")


class UnsupportedImage(ValueError):
    """The image has no environment here; the message is a ValidationException's."""


@dataclass(frozen=True)
class Patch:
    file: str  # relative to the environment's site-packages
    old: str
    new: str


@dataclass(frozen=True)
class ImageSpec:
    """One image's entry in the catalogue (what ``image.toml`` says)."""

    name: str
    description: str
    image_python: str
    folder: Path
    uri_patterns: tuple[re.Pattern[str], ...]
    requirements: Path
    site: Path | None
    patches: tuple[Patch, ...]
    env: dict[str, str] = field(default_factory=dict)

    def matches(self, uri: str) -> bool:
        return any(p.fullmatch(uri) for p in self.uri_patterns)

    def fingerprint(self) -> str:
        """Changes whenever anything that goes into the built environment changes."""
        digest = hashlib.sha256()
        for path in (self.folder / "image.toml", self.requirements):
            digest.update(path.read_bytes())
        digest.update(str(self.site).encode())  # site/ is used in place, via a .pth file
        return digest.hexdigest()[:16]


@dataclass(frozen=True)
class ImageEnvironment:
    """A built environment: where its interpreter is and what the image's ENV adds."""

    spec: ImageSpec
    prefix: Path

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def bin_dir(self) -> Path:
        return self.prefix / "bin"

    @property
    def python(self) -> Path:
        return self.bin_dir / "python3"

    def interpreter(self, argv0: str) -> str:
        """``python3`` (or ``/usr/bin/python3``...) in a container command is the image's Python."""
        return str(self.python) if _CONTAINER_PYTHONS.fullmatch(argv0) else argv0

    def program(self, name: str) -> str:
        """A command the image has on its PATH (``train``, ``serve``: the console scripts SageMaker
        runs the image with), by absolute path; ``name`` itself when the environment lacks it."""
        path = self.bin_dir / name
        return str(path) if path.is_file() else name

    def environ(self, base: dict[str, str]) -> dict[str, str]:
        """``base`` plus the image's ENV, with the image's ``bin`` first on PATH."""
        env = dict(base)
        env.update(self.spec.env)
        env["PATH"] = os.pathsep.join([str(self.bin_dir), base.get("PATH", "/usr/bin:/bin")])
        env.pop("PYTHONPATH", None)
        env.pop("PYTHONHOME", None)
        return env


def _load_spec(folder: Path) -> ImageSpec:
    path = folder / "image.toml"
    try:
        data = tomllib.loads(path.read_text())
        site = folder / data["site"] if data.get("site") else None
        return ImageSpec(
            name=data["name"],
            description=data.get("description", ""),
            image_python=data.get("image_python", ""),
            folder=folder,
            uri_patterns=tuple(re.compile(p) for p in data["uri_patterns"]),
            requirements=folder / data["requirements"],
            site=site,
            patches=tuple(Patch(**p) for p in data.get("patches", [])),
            env={k: str(v) for k, v in data.get("env", {}).items()},
        )
    except (KeyError, TypeError, re.error, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path}: invalid image entry ({type(exc).__name__}: {exc})") from exc


@cache
def catalog() -> tuple[ImageSpec, ...]:
    """Every image entry under ``local_sagemaker/images/``."""
    return tuple(
        _load_spec(folder)
        for folder in sorted(CATALOG_DIR.iterdir())
        if (folder / "image.toml").is_file()
    )


def environments_root() -> Path:
    return Path(os.environ.get(ENV_ROOT_VARIABLE) or PROJECT_ROOT / ".images")


def environment_for(spec: ImageSpec) -> ImageEnvironment:
    return ImageEnvironment(spec, environments_root() / spec.name)


def is_built(env: ImageEnvironment) -> bool:
    stamp = env.prefix / STAMP
    return stamp.is_file() and stamp.read_text().strip() == env.spec.fingerprint()


def supported_images() -> str:
    return "; ".join(f"{s.name}: {s.description}" for s in catalog())


def resolve(image_uri: str) -> ImageEnvironment:
    """The built environment standing for ``image_uri``, or :class:`UnsupportedImage`."""
    for spec in catalog():
        if spec.matches(image_uri):
            env = environment_for(spec)
            if not is_built(env):
                raise UnsupportedImage(
                    f"The local emulator's environment for image {image_uri} ({spec.name}) is "
                    f"not built in {env.prefix}: run ./dev install "
                    "(python -m local_sagemaker.images build)"
                )
            return env
    patterns = ", ".join(p.pattern for s in catalog() for p in s.uri_patterns)
    raise UnsupportedImage(
        f"Image {image_uri} is not supported by the local emulator. Supported images: "
        f"{supported_images()} (URIs matching {patterns})"
    )
