"""Saving and loading the model artifact: ``model.joblib`` (one sklearn Pipeline) + metadata JSON.

Loading is defensive because a registry can hand evaluate a truncated or foreign tarball: every
failure becomes an :class:`InputError` that says which file and what was found.
"""

from __future__ import annotations

import json
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import joblib
from failure import InputError

MODEL_FILE = "model.joblib"
METADATA_FILE = "model_metadata.json"
TARBALL = "model.tar.gz"


@dataclass
class LoadedModel:
    pipeline: object
    metadata: dict
    source: str

    @property
    def features(self) -> list[str]:
        """Feature columns in the data's order (the order a headerless CSV row must follow)."""
        return [f["name"] for f in self.schema["features"]]

    @property
    def schema(self) -> dict:
        """The data set schema train recorded (``dataset_schema``); artifacts from before it was
        recorded get one rebuilt from their column lists, numeric first."""
        if "schema" in self.metadata:
            return self.metadata["schema"]
        meta = self.metadata
        features = [{"name": c, "kind": "numeric"} for c in meta["numeric_columns"]]
        features += [{"name": c, "kind": "categorical"} for c in meta["categorical_columns"]]
        labels = meta.get("classes") or None
        return {"target": meta["target"], "problem_type": meta["problem_type"], "features": features,
                "dropped": [], "labels": labels, "feature_recipes": [],
                "derived_features": meta.get("derived_features", []),
                "positive_class": self.positive_class, "warnings": []}

    @property
    def positive_class(self) -> object:
        """The binary positive label (recorded, else the second class: the rule before recording)."""
        classes = self.metadata.get("classes") or []
        if len(classes) != 2:
            return None
        return self.metadata.get("positive_class", classes[-1])


def save_model(model_dir: Path, pipeline: object, metadata: dict) -> None:
    model_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(pipeline, model_dir / MODEL_FILE)
    (model_dir / METADATA_FILE).write_text(json.dumps(metadata, indent=2, allow_nan=False))


def load_model_dir(model_dir: Path, source: str | None = None) -> LoadedModel:
    """Load from an extracted model directory (what SageMaker serving gives ``model_fn``)."""
    source = source or str(model_dir)
    model_path, meta_path = model_dir / MODEL_FILE, model_dir / METADATA_FILE
    for path in (model_path, meta_path):
        if not path.is_file():
            raise InputError(f"{source}: {path.name} missing from the model artifact")
    try:
        metadata = json.loads(meta_path.read_text())
        for key in ("problem_type", "target", "numeric_columns", "categorical_columns"):
            metadata[key]  # noqa: B018 - presence check
    except (ValueError, KeyError) as exc:
        raise InputError(f"{source}: {METADATA_FILE} is not valid model metadata ({exc})") from exc
    try:
        pipeline = joblib.load(model_path)
    except Exception as exc:  # noqa: BLE001 - unpickling can raise nearly anything
        raise InputError(f"{source}: cannot load {MODEL_FILE} ({type(exc).__name__}: {exc})") from exc
    if not hasattr(pipeline, "predict"):
        raise InputError(f"{source}: {MODEL_FILE} holds a {type(pipeline).__name__}, not a model")
    return LoadedModel(pipeline, metadata, source)


def find_tarball(directory: Path) -> Path | None:
    """The model tarball in ``directory``: ``model.tar.gz`` or the only ``*.tar.gz``."""
    if not directory.is_dir():
        return None
    if (directory / TARBALL).is_file():
        return directory / TARBALL
    found = sorted(directory.rglob("*.tar.gz"))
    if len(found) > 1:
        raise InputError(f"{directory}: several tarballs {[p.name for p in found]}; expected one {TARBALL}")
    return found[0] if found else None


def extract_tarball(tarball: Path, dest: Path) -> None:
    """Extract regular files only, refusing paths that escape ``dest`` (tar-slip)."""
    try:
        with tarfile.open(tarball, "r:*") as tar:
            members = []
            for m in tar.getmembers():
                target = (dest / m.name).resolve()
                if not str(target).startswith(str(dest.resolve())) or m.issym() or m.islnk():
                    raise InputError(f"{tarball}: unsafe member {m.name!r} in model tarball")
                if m.isfile() or m.isdir():
                    members.append(m)
            safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(dest, members=members, **safe)  # noqa: S202 - members checked above
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise InputError(f"{tarball}: corrupt or unreadable model tarball ({exc})") from exc


def load_model_tarball(directory: Path, workdir: Path | None = None) -> LoadedModel:
    """Extract ``model.tar.gz`` from ``directory`` and load it."""
    tarball = find_tarball(directory)
    if tarball is None:
        raise InputError(f"no {TARBALL} in {directory}; expected the training job's model artifact")
    dest = Path(tempfile.mkdtemp(prefix="model-", dir=workdir))
    extract_tarball(tarball, dest)
    return load_model_dir(dest, source=str(tarball))
