"""CreateTrainingJob, executed: the platform's part around the image's own ``train``.

SageMaker starts the image with ``train``: in the scikit-learn image that is the sagemaker-training
toolkit's console script, which reads ``/opt/ml/input/config``, downloads
``sagemaker_submit_directory``, pip-installs its ``requirements.txt``, maps hyperparameters to
arguments (``-C`` for one-letter names, JSON-decoded values), sets ``SM_*`` and writes
``/opt/ml/output/failure``. The emulator runs that same toolkit from the image environment and only
does what the platform does: the config files, channel staging, statuses, logs, metrics, the model
and output uploads, and ``FailureReason`` = ``AlgorithmError: <failure file>, exit code: N``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from .. import isolation, s3util
from .container import Container, image_for
from .context import JobContext, JobFailure, JobResult
from .job import JobRun, first_failure
from .reasons import algorithm_error, read_reason_file
from .sandbox import Sandbox, write_json
from .staging import InputSpec, stage_inputs, upload_dir, upload_file
from .volume import check_inputs, check_outputs, pack, volume_bytes

TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
INSTANCE_GROUP = "homogeneousCluster"


def run_training_job(request: dict, ctx: JobContext) -> JobResult:
    """Run a validated CreateTrainingJob request to its end; script failures return Failed."""
    started = datetime.now(UTC)
    name = request["TrainingJobName"]
    ctx.on_secondary_status("Starting", "Preparing the instances for training")
    count = int(request.get("ResourceConfig", {}).get("InstanceCount", 1))
    algo = request.get("AlgorithmSpecification", {})
    try:
        image = image_for(algo.get("TrainingImage"), "AlgorithmSpecification.TrainingImage")
        run = JobRun(name, count, ctx, TRAINING_LOG_GROUP, image, algo.get("MetricDefinitions"))
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
    channels = request.get("InputDataConfig") or []
    for box in run.boxes:
        _write_config(box, run.boxes, request, channels)

    ctx.on_secondary_status("Downloading", "Downloading input data")
    stage_inputs(run.s3, ctx.region, _channel_specs(channels), run.boxes)
    resources = request.get("ResourceConfig", {})
    volume = volume_bytes(resources.get("InstanceType"), resources.get("VolumeSizeInGB"))
    check_inputs(run.boxes, volume)
    commands = [
        (c.command(_entrypoint(c, request)), c.box.root, _environ(run, c, request))
        for c in run.containers
    ]
    if ctx.stop_event.is_set():
        ctx.on_secondary_status("Stopped", "Training job stopped")
        return run.result("Stopped")

    ctx.on_secondary_status("Training", "Training image download completed. Training in progress.")
    outcome = run.execute(commands)
    failed = first_failure(outcome)
    if failed is not None and not outcome.stopped:
        proc, box = outcome.processes[failed], run.boxes[failed]
        failure = read_reason_file(box.opt_ml / "output" / "failure")
        ctx.on_secondary_status("Failed", "Training job failed")
        return run.result("Failed", algorithm_error(failure, proc.output_tail, proc.exit_code))

    ctx.on_secondary_status("Uploading", "Uploading generated training model")
    check_outputs(run.boxes, volume)
    artifact = _upload_outputs(run, request)
    if outcome.stopped:
        ctx.on_secondary_status("Stopped", "Training job stopped")
        return run.result("Stopped", model_artifact=artifact)
    ctx.on_secondary_status("Completed", "Training job completed")
    return run.result("Completed", model_artifact=artifact)


def _entrypoint(container: Container, request: dict) -> list[str]:
    """ContainerEntrypoint + ContainerArguments, else the image started as SageMaker starts it:
    ``train`` (the toolkit, which runs SAGEMAKER_TRAINING_MODULE)."""
    algo = request.get("AlgorithmSpecification", {})
    entrypoint = algo.get("ContainerEntrypoint") or [container.image.program("train")]
    return [*entrypoint, *(algo.get("ContainerArguments") or [])]


def _environ(run: JobRun, container: Container, request: dict) -> dict[str, str]:
    platform = {"TRAINING_JOB_NAME": run.job_name}
    if isolation.mode() != "namespace":
        # No private /etc/hosts to make algo-N resolvable: the toolkit's own switch skips its wait
        # for host name resolution (which would otherwise retry for 15 minutes).
        platform["SM_STUDIO_LOCAL_MODE"] = "True"
    return run.environ(container, request.get("Environment"), **platform)


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
    """What SageMaker writes into /opt/ml before the container starts."""
    opt = box.opt_ml
    for sub in ("model", "output/data", "code", "input/data"):
        (opt / sub).mkdir(parents=True, exist_ok=True)
    config = opt / "input" / "config"
    write_json(config / "hyperparameters.json", request.get("HyperParameters") or {})
    write_json(config / "resourceconfig.json", _resource_config(box, boxes, request))
    write_json(config / "inputdataconfig.json", _input_data_config(request, channels))


def _resource_config(box: Sandbox, boxes: list[Sandbox], request: dict) -> dict:
    """resourceconfig.json as SageMaker writes it for a homogeneous cluster."""
    instance_type = request.get("ResourceConfig", {}).get("InstanceType", "local")
    hosts = [b.host for b in boxes]
    return {
        "current_host": box.host,
        "current_instance_type": instance_type,
        "current_group_name": INSTANCE_GROUP,
        "hosts": hosts,
        "instance_groups": [
            {"instance_group_name": INSTANCE_GROUP, "instance_type": instance_type, "hosts": hosts}
        ],
        "network_interface_name": "eth0",
    }


def _input_data_config(request: dict, channels: list[dict]) -> dict:
    mode = request.get("AlgorithmSpecification", {}).get("TrainingInputMode", "File")
    config = {}
    for channel in channels:
        source = channel.get("DataSource", {}).get("S3DataSource", {})
        entry = {
            "TrainingInputMode": channel.get("InputMode", mode),
            "S3DistributionType": source.get("S3DataDistributionType", "FullyReplicated"),
            "RecordWrapperType": channel.get("RecordWrapperType", "None"),
        }
        if channel.get("ContentType"):
            entry["ContentType"] = channel["ContentType"]
        config[channel["ChannelName"]] = entry
    return config


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
        upload_file(run.s3, pack(box, model_dir, "model.tar.gz"), artifact)
    data_dir = box.opt_ml / "output" / "data"
    if any(data_dir.iterdir()):
        upload_file(run.s3, pack(box, data_dir, "output.tar.gz"), base + "/output.tar.gz")
    return artifact
