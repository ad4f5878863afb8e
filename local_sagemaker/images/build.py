"""Build the image environments: a venv per image with its pinned, hash-checked package set.

Done by the set-up, never in the middle of a job: an environment is rebuilt only when its image
entry changed (the fingerprint in its stamp file differs).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from . import STAMP, ImageEnvironment, catalog, environment_for, is_built


def _site_packages(prefix: Path) -> Path:
    purelib = sysconfig.get_path("purelib", vars={"base": str(prefix), "platbase": str(prefix)})
    return Path(purelib)


def _apply_patches(env: ImageEnvironment, site_packages: Path) -> None:
    for patch in env.spec.patches:
        path = site_packages / patch.file
        text = path.read_text()
        if patch.old not in text and patch.new in text:
            continue
        if patch.old not in text:
            raise RuntimeError(f"{env.spec.name}: patch target {patch.old!r} not found in {path}")
        path.write_text(text.replace(patch.old, patch.new))


def build(env: ImageEnvironment, *, force: bool = False, quiet: bool = True) -> bool:
    """Build ``env`` unless it is up to date; True when something was built."""
    if is_built(env) and not force:
        return False
    print(f"==> building image environment {env.name} in {env.prefix}", flush=True)
    if env.prefix.exists():
        shutil.rmtree(env.prefix)
    subprocess.run([sys.executable, "-m", "venv", str(env.prefix)], check=True)
    pip = [str(env.python), "-m", "pip", "install", "--disable-pip-version-check"]
    if quiet:
        pip.append("--quiet")
    subprocess.run(
        [*pip, "--require-hashes", "--no-deps", "-r", str(env.spec.requirements)], check=True
    )
    site_packages = _site_packages(env.prefix)
    _apply_patches(env, site_packages)
    if env.spec.site is not None:
        (site_packages / "local_sagemaker_image_site.pth").write_text(f"{env.spec.site}\n")
    subprocess.run(
        [str(env.python), "-m", "pip", "check", "--disable-pip-version-check"], check=True
    )
    (env.prefix / STAMP).write_text(env.spec.fingerprint() + "\n")
    return True


def build_all(*, force: bool = False, names: list[str] | None = None) -> list[str]:
    """Build every catalogued image (or just ``names``); the names that were (re)built."""
    built = []
    for spec in catalog():
        if names and spec.name not in names:
            continue
        if build(environment_for(spec), force=force):
            built.append(spec.name)
    return built
