"""Helpers for the training tests: container-shaped temp dirs and runs of the real scripts.

A uniquely named module (not conftest) so test files can import it without clashing with the
other test packages' conftest modules.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
TRAINING = ROOT / "include" / "training"
DATA = ROOT / "include" / "data" / "california_housing.csv.gz"
PYTHON = os.environ.get("TRAINING_TEST_PYTHON", sys.executable)
TEST_BOOTSTRAP = ["--bootstrap-samples", "200"]
# preprocess.py's options for the bundled data, as its pipeline spec passes them
HOUSING_ARGS = ["--target", "median_house_value", "--categorical-columns", "ocean_proximity",
                "--feature-recipes", "california_ratios"]


@dataclass
class Container:
    """A temp dir laid out like a SageMaker container (``opt/ml/...``)."""

    root: Path
    monkeypatch: pytest.MonkeyPatch | None = None

    @property
    def opt_ml(self) -> Path:
        return self.root / "opt" / "ml"

    def path(self, *parts: str) -> Path:
        p = self.opt_ml.joinpath(*parts)
        p.mkdir(parents=True, exist_ok=True)
        return p

    def env(self, **extra: str) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SM_")}
        env.update({"OPT_ML_DIR": str(self.opt_ml), **extra})
        return env

    def run(self, script: str, *args: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run([PYTHON, str(TRAINING / script), *args], env=self.env(**env),
                              capture_output=True, text=True, timeout=300)

    def call(self, script: str, *args: str, **env: str) -> int:
        """Run a script's ``main`` in this process, with the same env and failure handling.

        Used for the many bad-input cases, where a new interpreter per case would only add start-up
        time; each script also has subprocess tests for the real exit code and files.
        """
        import importlib

        from failure import run_main

        assert self.monkeypatch is not None, "use the container fixture"
        for name in [k for k in os.environ if k.startswith("SM_")]:
            self.monkeypatch.delenv(name)
        for name, value in {"OPT_ML_DIR": str(self.opt_ml), **env}.items():
            self.monkeypatch.setenv(name, value)
        module = importlib.import_module(script.removesuffix(".py"))
        kind = "training" if script == "train.py" else "processing"
        return run_main(module.main, kind, list(args))

    def failure(self, kind: str) -> str:
        name = "failure" if kind == "training" else "message"
        path = self.opt_ml / "output" / name
        assert path.is_file(), f"no {path}"
        return path.read_text()

    def training_env(self, channels: dict[str, Path]) -> dict:
        env = {"SM_MODEL_DIR": str(self.path("model")), "SM_CHANNELS": json.dumps(sorted(channels)),
               "SM_OUTPUT_DATA_DIR": str(self.path("output", "data"))}
        env.update({f"SM_CHANNEL_{name.upper()}": str(p) for name, p in channels.items()})
        return env


def classification_data(housing: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Housing with a derived label instead of the price: binary ``expensive`` or a 3-band ``band``."""
    value = housing["median_house_value"]
    frame = housing.drop(columns=["median_house_value"])
    if kind == "binary":
        frame["expensive"] = (value > value.median()).astype(int)
    else:
        frame["band"] = pd.qcut(value, 3, labels=["low", "mid", "high"]).astype(str)
    return frame


def birds(rows: int = 600, seed: int = 3) -> pd.DataFrame:
    """A data set nothing in include/training knows: made-up columns, text labels, an id column."""
    rng = np.random.default_rng(seed)
    wingspan = rng.normal(90, 25, rows).round(1)
    habitat = rng.choice(["marsh", "coast", "forest"], rows)
    mass = (wingspan * 12 + rng.normal(0, 80, rows)).round(0)
    mass[rng.random(rows) < 0.05] = np.nan  # missing cells are imputed, not dropped
    score = (wingspan - 90) / 25 + np.where(habitat == "coast", 1.0, -0.3) + rng.normal(0, 0.6, rows)
    return pd.DataFrame({
        "ring_code": [f"R-{i:05d}" for i in range(rows)],  # an id: unique text per row
        "wingspan_cm": wingspan,
        "habitat": habitat,
        "status": np.where(score > 0, "migrant", "resident"),
        "mass_g": mass,
        "clutch": rng.integers(1, 6, rows),
    })


def tar_model(model_dir: Path, dest_dir: Path) -> Path:
    dest_dir.mkdir(parents=True, exist_ok=True)
    path = dest_dir / "model.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for f in model_dir.iterdir():
            tar.add(f, arcname=f.name)
    return path


@dataclass
class Trained:
    """Splits from preprocess and a trained, tarred model."""

    splits: Path
    model_dir: Path
    tarball_dir: Path
    log: str
    target: str


def prepare(root: Path, frame: pd.DataFrame | None, pre_args: list[str], train_args: list[str],
             target: str) -> Trained:
    c = Container(root)
    raw = c.path("processing", "input", "raw")
    if frame is None:
        (raw / DATA.name).write_bytes(DATA.read_bytes())
    else:
        frame.to_csv(raw / "data.csv", index=False)
    pre = c.run("preprocess.py", *pre_args)
    assert pre.returncode == 0, pre.stderr
    splits = c.opt_ml / "processing" / "output"
    channels = {"train": splits / "train", "validation": splits / "validation"}
    result = c.run("train.py", *train_args, **c.training_env(channels))
    assert result.returncode == 0, result.stderr
    model_dir = c.opt_ml / "model"
    return Trained(splits, model_dir, tar_model(model_dir, root / "tarball").parent, result.stdout, target)
