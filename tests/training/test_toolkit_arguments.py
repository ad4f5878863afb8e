"""train.py accepts the arguments the sagemaker-training toolkit builds from our HyperParameters.

The image's entrypoint (sagemaker-training 4.8.0) reads ``hyperparameters.json``, JSON-decodes each
value (text when it is not JSON), keeps the keys without the ``sagemaker_`` prefix and turns them
into arguments with ``mapping.to_cmd_args``: keys sorted, ``--name value`` for longer names and
``-C value`` for one-character names. ``toolkit_arguments`` restates that rule; the last test checks
it against the real toolkit when the project's image environment is built.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import catalogue
import pytest
import train
from sagemaker_mlops import job_configs
from sagemaker_mlops.naming import RunLayout

ONE_LETTER = sorted(name for name in catalogue.hyperparameter_schema() if len(name) == 1)


def _decode(value: str) -> object:
    try:
        return json.loads(value)
    except ValueError:
        return value


def toolkit_arguments(hyperparameters: dict[str, str]) -> list[str]:
    """The argv sagemaker-training 4.8.0 passes to the entry point for these HyperParameters."""
    user = {k: _decode(v) for k, v in hyperparameters.items() if not k.startswith("sagemaker_")}
    argv: list[str] = []
    for key in sorted(user):
        value = user[key]
        argv += [f"--{key}" if len(key) > 1 else f"-{key}", "" if value is None else str(value)]
    return argv


def _request(model: str, hyperparameters: dict[str, str]) -> dict:
    layout = RunLayout("bucket", "prefix", "manual__2026-11-26T00:00:00+00:00")
    return job_configs.training_config(
        name="mlops-train-x", layout=layout, problem_type="classification", target="y", model=model,
        hyperparameters=hyperparameters, image_uri="image", role_arn="arn:aws:iam::1:role/r",
        instance_type="ml.m5.large", region="eu-west-1")


def test_one_letter_hyperparameters_exist_and_parse_with_one_dash() -> None:
    assert ONE_LETTER, "the catalogue has a one-letter hyperparameter (logistic regression's C)"
    for name in ONE_LETTER:
        args = train.build_parser().parse_args([f"-{name}", "0.5"])
        assert getattr(args, name) == "0.5"
        assert getattr(train.build_parser().parse_args([f"--{name}", "0.5"]), name) == "0.5"


def test_the_training_job_request_becomes_arguments_train_py_accepts() -> None:
    request = _request("logistic_regression", {"C": "0.5", "max_iter": "300"})
    argv = toolkit_arguments(request["HyperParameters"])
    assert argv[:2] == ["-C", "0.5"] and "--max_iter" in argv
    args = train.build_parser().parse_args(argv)
    assert (args.C, args.max_iter, args.model, args.problem_type) == (
        "0.5", "300", "logistic_regression", "classification")
    hp = train.parse_hyperparameters(args.model, {n: getattr(args, n) for n in train.HYPERPARAMETERS})
    assert hp["C"] == 0.5 and hp["max_iter"] == 300


def test_restated_rule_matches_the_real_toolkit(tmp_path: Path) -> None:
    from local_sagemaker import images

    python = images.environments_root() / "sklearn-1.4-2" / "bin" / "python"
    if not python.is_file():
        pytest.skip(f"image environment not built ({python}); ./dev install builds it")
    hyperparameters = _request("logistic_regression", {"C": "0.5", "max_iter": "300"})["HyperParameters"]
    config = tmp_path / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    code = ("import json\nfrom sagemaker_training import environment, mapping, params\n"
            "hps = environment.read_hyperparameters()\n"
            "user = mapping.split_by_criteria(hps, keys=params.SAGEMAKER_HYPERPARAMETERS,\n"
            "                                 prefix=params.SAGEMAKER_PREFIX).excluded\n"
            "print(json.dumps(mapping.to_cmd_args(user)))\n")
    out = subprocess.run([str(python), "-c", code], env={"SAGEMAKER_BASE_DIR": str(tmp_path)},
                         text=True, capture_output=True, check=True, timeout=60)
    assert json.loads(out.stdout.splitlines()[-1]) == toolkit_arguments(hyperparameters)
