"""CreateTrainingJob, executed: script mode as the SageMaker scikit-learn image runs it."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import s3util
from .context import JobContext, JobFailure, JobResult
from .job import JobRun, first_failure
from .reasons import algorithm_error, read_reason_file, user_script_error
from .sandbox import Sandbox, interpreter, resource_config, write_json
from .staging import InputSpec, fetch_source_dir, stage_inputs, upload_dir, upload_file

TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"


def decode_hyperparameter(raw: Any) -> Any:
    """HyperParameters are strings, JSON-quoted by the SageMaker SDK (``"\\"train.py\\""``) or plain."""
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def cli_value(value: Any) -> str:
    """How the training toolkit writes a hyperparameter on the command line."""
    if isinstance(value, str):
        return value
    return json.dumps(value) if isinstance(value, dict | list) else str(value)


def run_training_job(request: dict, ctx: JobContext) -> JobResult:
    """Run a validated CreateTrainingJob request to its end; script failures return Failed."""
    started = datetime.now(UTC)
    name = request["TrainingJobName"]
    ctx.on_secondary_status("Starting", "Preparing the instances for training")
    count = int(request.get("ResourceConfig", {}).get("InstanceCount", 1))
    algo = request.get("AlgorithmSpecification", {})
    try:
        run = JobRun(name, count, ctx, TRAINING_LOG_GROUP, algo.get("MetricDefinitions"))
    except JobFailure as exc:
        ctx.on_secondary_status("Failed", "Training job failed")
        return JobResult("Failed", str(exc), None, [], None, 0.0, started, datetime.now(UTC))
    try:
        return _train(request, ctx, run)
    except JobFailure as exc:
        ctx.on_secondary_status("Failed", "Training job failed")
        return run.result("Failed", str(exc))
    finally:
        run.close()


def _train(request: dict, ctx: JobContext, run: JobRun) -> JobResult:
    algo = request.get("AlgorithmSpecification", {})
    hps = {k: decode_hyperparameter(v) for k, v in (request.get("HyperParameters") or {}).items()}
    program, submit = hps.get("sagemaker_program"), hps.get("sagemaker_submit_directory")
    if not program and not algo.get("ContainerEntrypoint"):
        raise JobFailure(
            "ClientError: the local emulator runs script-mode training only: set the "
            "hyperparameters sagemaker_program and sagemaker_submit_directory, or "
            "AlgorithmSpecification.ContainerEntrypoint"
        )
    channels = request.get("InputDataConfig") or []
    for box in run.boxes:
        _write_config(box, run.boxes, request, channels)

    ctx.on_secondary_status("Downloading", "Downloading input data")
    stage_inputs(run.s3, ctx.region, _channel_specs(channels), run.boxes)
    commands = []
    for box in run.boxes:
        if program:
            argv, cwd = _script_command(run, box, str(program), submit, hps)
        else:
            argv = [interpreter(box.remap(algo["ContainerEntrypoint"][0]))]
            argv += [box.remap(a) for a in algo["ContainerEntrypoint"][1:]]
            argv += [box.remap(a) for a in algo.get("ContainerArguments") or []]
            cwd = box.root
        commands.append((argv, cwd, _training_env(run, box, request, hps, channels)))
    if ctx.stop_event.is_set():
        ctx.on_secondary_status("Stopped", "Training job stopped")
        return run.result("Stopped")

    ctx.on_secondary_status("Training", "Training image download completed. Training in progress.")
    outcome = run.execute(commands)
    failed = first_failure(outcome)
    if failed is not None and not outcome.stopped:
        proc, box = outcome.processes[failed], run.boxes[failed]
        reason_file = read_reason_file(box.opt_ml / "output" / "failure")
        if reason_file or not program:
            reason = algorithm_error(reason_file, proc.output_tail, proc.exit_code)
        else:
            reason = user_script_error(proc.output_tail, proc.exit_code, commands[failed][0])
        ctx.on_secondary_status("Failed", "Training job failed")
        return run.result("Failed", reason)

    ctx.on_secondary_status("Uploading", "Uploading generated training model")
    artifact = _upload_outputs(run, request)
    if outcome.stopped:
        ctx.on_secondary_status("Stopped", "Training job stopped")
        return run.result("Stopped", model_artifact=artifact)
    ctx.on_secondary_status("Completed", "Training job completed")
    return run.result("Completed", model_artifact=artifact)


def _channel_specs(channels: list[dict]) -> list[InputSpec]:
    specs = []
    for channel in channels:
        name = channel["ChannelName"]
        source = channel.get("DataSource", {}).get("S3DataSource")
        if source is None:
            raise JobFailure(
                f"ClientError: channel {name!r}: only S3DataSource inputs are supported by the "
                "local emulator"
            )
        specs.append(
            InputSpec(
                name=name,
                uri=source["S3Uri"],
                target=lambda box, n=name: box.opt_ml / "input" / "data" / n,
                distribution=source.get("S3DataDistributionType", "FullyReplicated"),
                data_type=source.get("S3DataType", "S3Prefix"),
            )
        )
    return specs


def _write_config(box: Sandbox, boxes: list[Sandbox], request: dict, channels: list[dict]) -> None:
    opt = box.opt_ml
    for sub in ("model", "output/data", "code", "input/data"):
        (opt / sub).mkdir(parents=True, exist_ok=True)
    resources = resource_config(box, boxes)
    write_json(
        opt / "input" / "config" / "hyperparameters.json", request.get("HyperParameters") or {}
    )
    write_json(opt / "input" / "config" / "resourceconfig.json", resources)
    write_json(opt / "config" / "resourceconfig.json", resources)
    write_json(
        opt / "input" / "config" / "inputdataconfig.json", _input_data_config(request, channels)
    )


def _input_data_config(request: dict, channels: list[dict]) -> dict:
    mode = request.get("AlgorithmSpecification", {}).get("TrainingInputMode", "File")
    config = {}
    for channel in channels:
        source = channel.get("DataSource", {}).get("S3DataSource", {})
        config[channel["ChannelName"]] = {
            "TrainingInputMode": channel.get("InputMode", mode),
            "S3DistributionType": source.get("S3DataDistributionType", "FullyReplicated"),
            "RecordWrapperType": channel.get("RecordWrapperType", "None"),
        }
    return config


def _script_command(
    run: JobRun, box: Sandbox, program: str, submit: str | None, hps: dict
) -> tuple[list[str], Path]:
    code_dir = box.opt_ml / "code"
    if submit:
        fetch_source_dir(run.s3, str(submit), code_dir)
    if not (code_dir / program).is_file():
        where = f"sagemaker_submit_directory {submit}" if submit else "an empty code directory"
        raise JobFailure(
            f"AlgorithmError: sagemaker_program {program!r} was not found in {where}, exit code: 2"
        )
    args = []
    for key, value in hps.items():
        if not key.startswith("sagemaker_"):
            args += [f"--{key}", cli_value(value)]
    launcher = ["/bin/sh"] if program.endswith(".sh") else [sys.executable]
    return [*launcher, program, *args], code_dir


def _training_env(
    run: JobRun, box: Sandbox, request: dict, hps: dict, channels: list[dict]
) -> dict[str, str]:
    """SM_* variables as the SageMaker training toolkit sets them."""
    opt = box.opt_ml
    user_hps = {k: v for k, v in hps.items() if not k.startswith("sagemaker_")}
    names = [c["ChannelName"] for c in channels]
    channel_dirs = {n: str(opt / "input" / "data" / n) for n in names}
    hosts = [b.host for b in run.boxes]
    program = str(hps.get("sagemaker_program") or "")
    module_name = program[:-3] if program.endswith(".py") else program
    user_args = [a for k, v in user_hps.items() for a in (f"--{k}", cli_value(v))]
    resources = resource_config(box, run.boxes)
    input_config = _input_data_config(request, channels)
    training_env = {
        "job_name": run.job_name,
        "current_host": box.host,
        "hosts": hosts,
        "master_hostname": hosts[0],
        "is_master": box.host == hosts[0],
        "channel_input_dirs": channel_dirs,
        "hyperparameters": user_hps,
        "input_data_config": input_config,
        "resource_config": resources,
        "input_dir": str(opt / "input"),
        "input_config_dir": str(opt / "input" / "config"),
        "model_dir": str(opt / "model"),
        "output_dir": str(opt / "output"),
        "output_data_dir": str(opt / "output" / "data"),
        "output_intermediate_dir": str(opt / "output" / "intermediate"),
        "module_dir": str(hps.get("sagemaker_submit_directory") or ""),
        "module_name": module_name,
        "user_entry_point": program,
        "num_cpus": run.num_cpus(box),
        "num_gpus": 0,
        "log_level": 20,
        "network_interface_name": "eth0",
    }
    env = run.base_env(box, request.get("Environment"))
    env.update(
        TRAINING_JOB_NAME=run.job_name,
        SM_MODEL_DIR=training_env["model_dir"],
        SM_INPUT_DIR=training_env["input_dir"],
        SM_INPUT_CONFIG_DIR=training_env["input_config_dir"],
        SM_OUTPUT_DIR=training_env["output_dir"],
        SM_OUTPUT_DATA_DIR=training_env["output_data_dir"],
        SM_OUTPUT_INTERMEDIATE_DIR=training_env["output_intermediate_dir"],
        SM_CHANNELS=json.dumps(names),
        SM_HPS=json.dumps(user_hps),
        SM_HOSTS=json.dumps(hosts),
        SM_CURRENT_HOST=box.host,
        SM_MASTER_ADDR=hosts[0],
        SM_IS_MASTER=str(box.host == hosts[0]).lower(),
        SM_NUM_CPUS=str(training_env["num_cpus"]),
        SM_NUM_GPUS="0",
        SM_MODULE_NAME=module_name,
        SM_MODULE_DIR=training_env["module_dir"],
        SM_USER_ENTRY_POINT=program,
        SM_USER_ARGS=json.dumps(user_args),
        SM_FRAMEWORK_PARAMS="{}",
        SM_RESOURCE_CONFIG=json.dumps(resources),
        SM_INPUT_DATA_CONFIG=json.dumps(input_config),
        SM_TRAINING_ENV=json.dumps(training_env),
        SM_LOG_LEVEL="20",
        SM_NETWORK_INTERFACE_NAME="eth0",
    )
    env.update({f"SM_CHANNEL_{n.upper()}": d for n, d in channel_dirs.items()})
    env.update({f"SM_HP_{k.upper()}": cli_value(v) for k, v in user_hps.items()})
    return env


def _upload_outputs(run: JobRun, request: dict) -> str:
    """model/ (of algo-1) to <S3OutputPath>/<job>/output/model.tar.gz, output/data to output.tar.gz."""
    output = request["OutputDataConfig"]
    base = s3util.join_s3_uri(output["S3OutputPath"], run.job_name, "output")
    box = run.boxes[0]
    model_dir = box.opt_ml / "model"
    if output.get("CompressionType") == "NONE":
        upload_dir(run.s3, model_dir, base + "/model")
        artifact = base + "/model/"
    else:
        artifact = base + "/model.tar.gz"
        upload_file(run.s3, s3util.make_tarball(model_dir, box.root / "model.tar.gz"), artifact)
    data_dir = box.opt_ml / "output" / "data"
    if any(data_dir.iterdir()):
        tarball = s3util.make_tarball(data_dir, box.root / "output.tar.gz")
        upload_file(run.s3, tarball, base + "/output.tar.gz")
    return artifact
