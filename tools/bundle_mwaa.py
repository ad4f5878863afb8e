"""Write what Amazon MWAA takes from its S3 bucket: ``./dev bundle mwaa [--out DIR]``.

MWAA syncs the bucket's ``dags/`` prefix to every Airflow component and puts that folder on
``sys.path``; ``requirements.txt`` is a separate object it pip-installs with a 9-minute limit.
Plugins (``plugins.zip``) are for UI extensions, so our package goes into the DAGs folder:

    OUT/dags/                 -> s3://BUCKET/dags/
        mlops_pipeline.py, deploy_approved_model.py, pipeline_specs.py   (the DAG files)
        pipelines/*.yaml      the pipeline specs the DAG files read beside themselves
        sagemaker_mlops/      plugins/sagemaker_mlops    (``import sagemaker_mlops``)
        include/training/     the SageMaker code         (``import include.training.catalogue``;
                              stage_code uploads it; settings.PROJECT_ROOT finds it here)
        .airflowignore        every non-DAG entry, so the dag-processor never parses them
    OUT/requirements.txt      -> s3://BUCKET/requirements.txt (a --constraint line, no Airflow pin)
    OUT/sample-data/<s3_prefix>/raw/<file>   -> s3://BUCKET/ (each spec's sample data, optional)

No startup script: every setting the DAG files read at parse time has a production default, the
rest are Airflow Variables (docs/mwaa.md). The output depends only on the repository's files.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
# Python of each MWAA image (aws/amazon-mwaa-docker-images, images/airflow/<version>/): the
# constraints file must be the one for that Python.
MWAA_PYTHON = {"3.2.1": "3.12"}
DEFAULT_AIRFLOW = "3.2.1"
CONSTRAINTS_URL = (
    "https://raw.githubusercontent.com/apache/airflow/constraints-{airflow}/constraints-{python}.txt"
)
# MWAA installs these itself at the image's versions; a pin here would clash with them.
MWAA_PINNED = {"apache-airflow", "apache-airflow-core", "apache-airflow-task-sdk"}
# what the DAGs folder holds besides the DAG files (dags/*.py); every entry is in .airflowignore
NON_DAG_ENTRIES = ("include/", "pipelines/", "sagemaker_mlops/")
SKIPPED = ("__pycache__", "*.pyc", ".*", "ruff.toml")  # caches, dot-folders, lint config
OUTPUTS = ("dags", "requirements.txt", "sample-data")


class BundleError(ValueError):
    """The bundle cannot be written as asked; the message says what to change."""


def constraints_line(airflow_version: str) -> str:
    """The ``--constraint`` line MWAA honours (its check needs a space after the flag)."""
    try:
        python = MWAA_PYTHON[airflow_version]
    except KeyError:
        raise BundleError(
            f"--airflow-version {airflow_version}: no MWAA image known for it (known: "
            f"{', '.join(sorted(MWAA_PYTHON))}); add its Python to MWAA_PYTHON in tools/bundle_mwaa.py"
        ) from None
    return f'--constraint "{CONSTRAINTS_URL.format(airflow=airflow_version, python=python)}"'


def mwaa_requirements(requirements: Path, airflow_version: str) -> str:
    """Our runtime requirements for MWAA: no Airflow pin, versions left to the constraints file
    (our own pins are for the newer Airflow we run offline and would clash with it)."""
    lines = [
        f"# Amazon MWAA, Airflow {airflow_version}: written by ./dev bundle mwaa from "
        f"{requirements.name} (docs/mwaa.md)",
        constraints_line(airflow_version),
    ]
    for raw in requirements.read_text().splitlines():
        text = raw.split("#", 1)[0].strip()
        if not text:
            continue
        if text.startswith("-"):
            raise BundleError(f"{requirements}: option line {text!r} is not supported in a bundle")
        req = Requirement(text)
        if req.name.lower() in MWAA_PINNED:
            continue
        extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
        lines.append(f"{req.name}{extras}")
    return "\n".join(lines) + "\n"


def airflowignore() -> str:
    """Glob patterns (Airflow 3's default syntax) for everything in the DAGs folder but DAG files."""
    header = "# Not DAG files: the package, the SageMaker code and the specs (docs/mwaa.md)"
    return "\n".join([header, *NON_DAG_ENTRIES]) + "\n"


def _copy_tree(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(*SKIPPED))


def _sample_data(dags: Path, out: Path) -> list[Path]:
    """Each spec's sample data, laid out as the pipeline's default raw-data prefix."""
    from sagemaker_mlops.specs import load_spec

    written = []
    for spec_file in sorted((dags / "pipelines").glob("*.yaml")):
        spec = load_spec(spec_file)
        if spec.sample_data is None or not spec.sample_data.is_file():
            continue
        target = out / "sample-data" / spec.s3_prefix / "raw" / spec.sample_data.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(spec.sample_data, target)
        written.append(target)
    return written


def write_bundle(out: Path, airflow_version: str = DEFAULT_AIRFLOW, root: Path = ROOT) -> Path:
    """Write the bundle into ``out`` (its previous bundle entries are replaced); returns ``out``."""
    requirements = mwaa_requirements(root / "requirements.txt", airflow_version)
    out.mkdir(parents=True, exist_ok=True)
    for name in OUTPUTS:
        old = out / name
        if old.is_dir():
            shutil.rmtree(old)
        elif old.exists():
            old.unlink()
    dags = out / "dags"
    dags.mkdir()
    for dag_file in sorted((root / "dags").glob("*.py")):
        shutil.copy2(dag_file, dags / dag_file.name)
    _copy_tree(root / "dags" / "pipelines", dags / "pipelines")
    _copy_tree(root / "plugins" / "sagemaker_mlops", dags / "sagemaker_mlops")
    _copy_tree(root / "include" / "training", dags / "include" / "training")
    (dags / ".airflowignore").write_text(airflowignore())
    (out / "requirements.txt").write_text(requirements)
    _sample_data(root / "dags", out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./dev bundle mwaa", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist" / "mwaa",
                        help="output folder (default: dist/mwaa)")
    parser.add_argument("--airflow-version", default=DEFAULT_AIRFLOW,
                        help=f"the MWAA environment's Airflow version (default {DEFAULT_AIRFLOW})")
    args = parser.parse_args(argv)
    try:
        out = write_bundle(args.out, args.airflow_version)
    except BundleError as exc:
        print(f"bundle mwaa: {exc}", file=sys.stderr)
        return 2
    print(f"MWAA bundle written to {out} (upload steps: docs/mwaa.md)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
