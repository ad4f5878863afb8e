"""The scripts need nothing beyond SageMaker's scikit-learn image (which has no matplotlib).

A Processing job installs nothing, so a module-level import of a package the image lacks fails the
job before the failure contract can write its message. These tests run the scripts with such a
package made unimportable.
"""

from __future__ import annotations

import subprocess

import pytest
from training_support import PYTHON, TEST_BOOTSTRAP, TRAINING, Container, Trained

NOT_IN_IMAGE = ("matplotlib",)


def _run_without(code: str, container: Container) -> subprocess.CompletedProcess:
    blocked = "".join(f"sys.modules[{name!r}] = None\n" for name in NOT_IN_IMAGE)
    prelude = f"import sys\n{blocked}sys.path.insert(0, {str(TRAINING)!r})\n"
    return subprocess.run([PYTHON, "-c", prelude + code], env=container.env(), capture_output=True,
                          text=True, timeout=300)


def test_every_module_imports_without_packages_the_image_lacks(container: Container) -> None:
    modules = sorted(p.stem for p in TRAINING.glob("*.py"))
    assert {"evaluate", "report", "train", "preprocess", "inference"} <= set(modules)
    result = _run_without(f"import importlib\nfor m in {modules!r}:\n    importlib.import_module(m)\n",
                          container)
    assert result.returncode == 0, result.stderr


def test_evaluate_writes_svg_report_without_matplotlib(container: Container, regression_hgb: Trained,
                                                       regression_linear: Trained) -> None:
    argv = ["evaluate.py", "--model-dir", str(regression_hgb.tarball_dir),
            "--test-dir", str(regression_hgb.splits / "test"),
            "--champion-dir", str(regression_linear.tarball_dir), *TEST_BOOTSTRAP]
    code = f"import runpy\nsys.argv = {argv!r}\nrunpy.run_path({str(TRAINING / 'evaluate.py')!r}, run_name='__main__')\n"
    result = _run_without(code, container)
    assert result.returncode == 0, result.stderr
    out = container.opt_ml / "processing" / "evaluation"
    report = (out / "report.html").read_text()
    assert "<svg " in report and "<title>residual distribution</title>" in report
    assert (out / "evaluation.json").is_file()
    assert not (container.opt_ml / "output" / "message").exists()


def test_failure_module_needs_only_the_standard_library(container: Container) -> None:
    blocked = "".join(f"sys.modules[{m!r}] = None\n" for m in ("numpy", "pandas", "sklearn", "scipy"))
    result = subprocess.run([PYTHON, "-c", f"import sys\n{blocked}sys.path.insert(0, {str(TRAINING)!r})\n"
                             "import failure\n"], env=container.env(), capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(("script", "kind"), [
    ("preprocess.py", "processing"), ("evaluate.py", "processing"), ("train.py", "training")])
def test_a_failed_import_still_leaves_the_failure_file(script: str, kind: str,
                                                       container: Container) -> None:
    # as if the image lacked pandas: the script dies while importing, before main() runs
    code = (f"import runpy\nsys.modules['pandas'] = None\nsys.argv = [{script!r}]\n"
            f"runpy.run_path({str(TRAINING / script)!r}, run_name='__main__')\n")
    result = _run_without(code, container)
    assert result.returncode == 1
    reason = container.failure(kind)
    assert reason.startswith(f"{script} could not start: ModuleNotFoundError: ")
    assert "pandas" in reason and "(a package the image lacks? Processing jobs install nothing)" in reason
    assert "Traceback" in result.stderr  # the usual traceback still reaches the job's log
    other = "failure" if kind == "processing" else "message"
    assert not (container.opt_ml / "output" / other).exists()


def test_failure_text_is_one_line_within_sagemakers_first_kilobyte(container: Container,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import failure

    monkeypatch.setenv("OPT_ML_DIR", str(container.opt_ml))
    path = failure.write_failure("processing", "colonne « é »\n" + "é" * 2000)
    data = path.read_bytes()
    assert path == container.opt_ml / "output" / "message"
    assert len(data) <= 1024 and data.endswith(b"\n") and data.count(b"\n") == 1
    assert data.decode("utf-8").startswith("colonne « é » éé")  # cut on a character boundary
