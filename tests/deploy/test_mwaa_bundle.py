"""``./dev bundle mwaa``: the layout MWAA takes, and the bundled DAGs on Airflow 3.2.1.

The last two tests run in the Airflow 3.2.1 environment (.venv-mwaa, MWAA's newest confirmed
version with amazon provider 9.25.0), which ``./dev test`` builds; run ad hoc without it they
skip, under ``./dev test`` (which sets MLOPS_MWAA_VENV) a missing environment fails them.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tools import bundle_mwaa

ROOT = Path(__file__).resolve().parents[2]
CONSTRAINT = (
    '--constraint "https://raw.githubusercontent.com/apache/airflow/'
    'constraints-3.2.1/constraints-3.12.txt"'
)
EXPECTED_DAGS = {"mlops_pipeline", "breast_cancer", "deploy_approved_model"}

# Runs inside the 3.2.1 environment the way MWAA's dag-processor parses the DAGs folder: the
# folder's .airflowignore decides which files are parsed, BundleDagBag puts the folder on sys.path.
DAGBAG_CHECK = """
import json, sys
from pathlib import Path
import airflow
from airflow.dag_processing.dagbag import BundleDagBag
from airflow.utils.file import list_py_file_paths
folder = Path(sys.argv[1])
parsed = sorted(Path(p).name for p in list_py_file_paths(str(folder)))
bag = BundleDagBag(dag_folder=str(folder), bundle_path=folder)
from sagemaker_mlops.settings import PROJECT_ROOT, Settings
print(json.dumps({
    "airflow": airflow.__version__,
    "parsed": parsed,
    "errors": {k: str(v) for k, v in bag.import_errors.items()},
    "dags": sorted(bag.dag_ids),
    "project_root": str(PROJECT_ROOT),
    "training_code_dir": Settings().training_code_dir,
}))
"""


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return bundle_mwaa.write_bundle(tmp_path_factory.mktemp("mwaa"))


def mwaa_python() -> Path:
    configured = os.environ.get("MLOPS_MWAA_VENV")
    python = ROOT / (configured or ".venv-mwaa") / "bin" / "python"
    if not python.exists():
        message = f"no Airflow 3.2.1 environment at {python.parents[1]} (./dev test builds it)"
        if configured:
            pytest.fail(message)
        pytest.skip(message)
    return python


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTHONPATH"))}
    return {**env, **extra}


def test_layout_holds_dag_files_package_training_code_and_specs(bundle):
    dags = bundle / "dags"
    assert sorted(p.name for p in dags.glob("*.py")) == sorted(
        p.name for p in (ROOT / "dags").glob("*.py")
    )
    assert sorted(p.name for p in (dags / "pipelines").iterdir()) == sorted(
        p.name for p in (ROOT / "dags" / "pipelines").iterdir()
    )
    assert (dags / "sagemaker_mlops" / "__init__.py").is_file()
    for script in ("preprocess.py", "train.py", "evaluate.py", "inference.py", "catalogue.py"):
        assert (dags / "include" / "training" / script).read_bytes() == (
            ROOT / "include" / "training" / script
        ).read_bytes()
    assert not list(bundle.rglob("__pycache__")) and not list(bundle.rglob(".ruff_cache"))
    assert (bundle / "sample-data" / "california-housing" / "raw" / "california_housing.csv.gz").is_file()
    assert sorted(p.name for p in bundle.iterdir()) == ["dags", "requirements.txt", "sample-data"]


def test_airflowignore_covers_every_entry_but_the_dag_files(bundle):
    dags = bundle / "dags"
    patterns = [
        line for line in (dags / ".airflowignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    entries = {p.name + ("/" if p.is_dir() else "") for p in dags.iterdir()}
    dag_files = {p.name for p in dags.glob("*.py")}
    assert sorted(entries - dag_files - {".airflowignore"}) == sorted(patterns)


def test_requirements_have_the_constraints_line_and_no_airflow_pin(bundle):
    lines = (bundle / "requirements.txt").read_text().splitlines()
    assert CONSTRAINT in lines
    packages = [line for line in lines if line and not line.startswith(("#", "-"))]
    assert "apache-airflow-providers-amazon[aiobotocore]" in packages
    assert not [p for p in packages if p.split("[")[0] in bundle_mwaa.MWAA_PINNED]
    assert not [p for p in packages if any(op in p for op in "=<>~")], "versions come from -c"


def test_requirements_drop_pins_comments_and_airflow_but_keep_extras(tmp_path):
    source = tmp_path / "requirements.txt"
    source.write_text(
        "# runtime\napache-airflow==3.3.2\napache-airflow-core==3.3.2\n"
        "apache-airflow-providers-amazon[aiobotocore]==9.39.0   # deferrable waits\n"
        "PyYAML>=6\n"
    )
    lines = bundle_mwaa.mwaa_requirements(source, "3.2.1").splitlines()
    assert lines[1:] == [CONSTRAINT, "apache-airflow-providers-amazon[aiobotocore]", "PyYAML"]
    source.write_text("-r other.txt\n")
    with pytest.raises(bundle_mwaa.BundleError, match=r"requirements\.txt: option line '-r other\.txt'"):
        bundle_mwaa.mwaa_requirements(source, "3.2.1")


def test_output_is_deterministic(bundle, tmp_path):
    again = bundle_mwaa.write_bundle(tmp_path / "again")

    def contents(root: Path) -> dict[str, bytes]:
        return {
            str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
        }

    assert contents(again) == contents(bundle)


def test_unknown_airflow_version_is_refused_naming_the_known_ones(tmp_path):
    with pytest.raises(bundle_mwaa.BundleError, match=r"--airflow-version 2\.0\.0: .*known: 3\.2\.1"):
        bundle_mwaa.write_bundle(tmp_path, airflow_version="2.0.0")


def test_bundled_dags_import_on_airflow_3_2_1(bundle):
    python = mwaa_python()
    home = bundle.parent / "airflow-home"
    result = subprocess.run(
        [str(python), "-c", DAGBAG_CHECK, str(bundle / "dags")],
        cwd=bundle.parent, capture_output=True, text=True, timeout=300,
        env=clean_env(AIRFLOW_HOME=str(home), AIRFLOW__CORE__LOAD_EXAMPLES="False"),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["airflow"] == "3.2.1"
    assert report["errors"] == {}
    assert report["parsed"] == sorted(p.name for p in (bundle / "dags").glob("*.py"))
    assert EXPECTED_DAGS <= set(report["dags"])
    assert Path(report["project_root"]) == (bundle / "dags").resolve()
    assert Path(report["training_code_dir"]) == (bundle / "dags" / "include" / "training").resolve()


def test_plugin_unit_tests_pass_on_airflow_3_2_1():
    python = mwaa_python()
    result = subprocess.run(
        [str(python), "-m", "pytest", "tests/plugins", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env=clean_env(),
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
