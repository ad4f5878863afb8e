"""The image catalogue: entries as data, URI resolution, and rebuilds when an entry changes."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from local_sagemaker import images
from local_sagemaker.images import build as image_build
from tests.emulator._core_helpers import SKLEARN_IMAGE


def _entry(folder: Path, name: str = "tiny", env: str = 'GREETING = "hello"') -> Path:
    """A minimal image entry: one URI pattern, no packages, one ENV line."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "image.toml").write_text(textwrap.dedent(f"""
        name = "{name}"
        description = "a test image"
        uri_patterns = ['^example\\.com/{name}:1$']
        requirements = "requirements.txt"
        [env]
        {env}
    """))
    (folder / "requirements.txt").write_text("")
    return folder


def test_the_catalogue_holds_the_sklearn_image():
    (spec,) = [s for s in images.catalog() if s.name == "sklearn-1.4-2"]
    assert spec.image_python == "3.10"
    assert spec.env["SAGEMAKER_TRAINING_MODULE"] == "sagemaker_sklearn_container.training:main"
    assert spec.matches(SKLEARN_IMAGE)
    assert spec.matches("763104351884.dkr.ecr.cn-north-1.amazonaws.com.cn/sagemaker-scikit-learn:1.4-2-cpu-py3")
    assert not spec.matches(SKLEARN_IMAGE.replace("1.4-2", "1.2-1"))
    assert not spec.matches("local/sklearn:1.4-2")


def test_resolve_gives_the_built_environment_and_its_programs():
    env = images.resolve(SKLEARN_IMAGE)
    assert env.name == "sklearn-1.4-2"
    assert env.interpreter("python3") == str(env.python)
    assert env.interpreter("/usr/local/bin/python3.10") == str(env.python)
    assert env.interpreter("/bin/sh") == "/bin/sh"
    assert env.program("train") == str(env.bin_dir / "train")
    # sagemaker-containers and sagemaker-training both ship `train`; the image's is the former
    # (its trainer is in real sklearn failure reasons: aws/amazon-sagemaker-examples#1740)
    assert "from sagemaker_containers.cli.train import main" in (env.bin_dir / "train").read_text()
    assert env.program("no-such-program") == "no-such-program"
    environ = env.environ({"PATH": "/usr/bin", "PYTHONPATH": "/emulator", "KEEP": "1"})
    assert environ["PATH"].split(":")[0] == str(env.bin_dir)
    assert "PYTHONPATH" not in environ and environ["KEEP"] == "1"
    assert environ["PYTHONUNBUFFERED"] == "1"


def test_an_unknown_image_is_refused_naming_the_supported_ones():
    with pytest.raises(images.UnsupportedImage) as caught:
        images.resolve("123456789012.dkr.ecr.us-east-1.amazonaws.com/my-own:latest")
    message = str(caught.value)
    assert message.startswith("Image 123456789012.dkr.ecr.us-east-1.amazonaws.com/my-own:latest is not supported")
    assert "sklearn-1.4-2: SageMaker scikit-learn 1.4-2" in message


def test_an_unbuilt_environment_is_refused_with_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv(images.ENV_ROOT_VARIABLE, str(tmp_path / "none"))
    with pytest.raises(images.UnsupportedImage) as caught:
        images.resolve(SKLEARN_IMAGE)
    assert "(sklearn-1.4-2) is not built in" in str(caught.value)
    assert "run ./dev install" in str(caught.value)


def test_an_invalid_entry_names_its_file(tmp_path):
    folder = _entry(tmp_path / "broken")
    (folder / "image.toml").write_text('name = "broken"\n')  # no uri_patterns
    with pytest.raises(ValueError, match=r"broken/image.toml: invalid image entry \(KeyError"):
        images._load_spec(folder)


@pytest.mark.slow  # creates virtual environments
def test_a_changed_entry_is_rebuilt_and_an_unchanged_one_reused(monkeypatch, tmp_path):
    monkeypatch.setenv(images.ENV_ROOT_VARIABLE, str(tmp_path / "envs"))
    folder = _entry(tmp_path / "catalog" / "tiny")
    env = images.environment_for(images._load_spec(folder))
    assert not images.is_built(env)
    assert image_build.build(env) is True
    assert images.is_built(env) and env.python.is_file()
    assert image_build.build(env) is False  # up to date: nothing done
    before = env.spec.fingerprint()

    _entry(folder, env='GREETING = "bonjour"')  # the entry changed: its fingerprint too
    changed = images.environment_for(images._load_spec(folder))
    assert changed.spec.fingerprint() != before
    assert not images.is_built(changed)
    assert image_build.build(changed) is True
    assert images.is_built(changed)
    shutil.rmtree(tmp_path / "envs")
