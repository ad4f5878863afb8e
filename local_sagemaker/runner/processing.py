"""CreateProcessingJob, executed: inputs in, ContainerEntrypoint run per instance, outputs out.

The entrypoint runs in the job's image environment (``python3`` is the image's Python; nothing is
installed, as on SageMaker) with the instance's sandbox at ``/opt/ml``. As AWS documents
(byoc-metadata), ``/opt/ml/output/message`` becomes ``ExitMessage`` in every terminal status (the
instances' messages concatenated, cut to 1 KB; not UTF-8: the job fails with ClientError), and a
failed entrypoint's ``FailureReason`` is ``AlgorithmError: See job logs for more information``
(what real jobs show, e.g. aws/sagemaker-spark-container's test_sagemaker_spark_errors.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from .container import image_for
from .context import JobContext, JobFailure, JobResult
from .job import JobRun, first_failure
from .reasons import MAX_REASON
from .sandbox import Sandbox, resource_config, write_json
from .staging import InputSpec, stage_inputs, upload_dir
from .volume import check_inputs, check_outputs, ran_out_of_space, volume_bytes

PROCESSING_LOG_GROUP = "/aws/sagemaker/ProcessingJobs"
PROCESSING_ROOT = "/opt/ml/processing"
ALGORITHM_ERROR = "AlgorithmError: See job logs for more information"


def run_processing_job(request: dict, ctx: JobContext) -> JobResult:
    """Run a validated CreateProcessingJob request to its end; script failures return Failed."""
    started = datetime.now(UTC)
    name = request["ProcessingJobName"]
    app = request.get("AppSpecification", {})
    cluster = request.get("ProcessingResources", {}).get("ClusterConfig", {})
    try:
        image = image_for(app.get("ImageUri"), "AppSpecification.ImageUri")
        run = JobRun(name, int(cluster.get("InstanceCount", 1)), ctx, PROCESSING_LOG_GROUP, image)
    except JobFailure as exc:
        return JobResult("Failed", str(exc), None, [], None, 0.0, started, datetime.now(UTC))
    try:
        return _process(request, ctx, run)
    except JobFailure as exc:
        return run.result("Failed", str(exc))
    finally:
        run.close()


def _process(request: dict, ctx: JobContext, run: JobRun) -> JobResult:
    app = request.get("AppSpecification", {})
    entrypoint = app.get("ContainerEntrypoint")
    if not entrypoint:
        raise JobFailure(
            "ClientError: the local emulator does not run an image's default entrypoint for "
            'processing: AppSpecification.ContainerEntrypoint is required (e.g. ["python3", '
            '"/opt/ml/processing/input/code/script.py"])'
        )
    inputs = _input_specs(request, run.boxes[0])
    outputs = _outputs(request, run.boxes[0])
    for box in run.boxes:
        write_json(box.opt_ml / "config" / "resourceconfig.json", resource_config(box, run.boxes))
        write_json(box.opt_ml / "config" / "processingjobconfig.json", request)
        (box.opt_ml / "output").mkdir(parents=True, exist_ok=True)
        for local, _uri in outputs:
            _local_path(box, local, "ProcessingOutput LocalPath").mkdir(parents=True, exist_ok=True)
    stage_inputs(run.s3, ctx.region, inputs, run.boxes)
    cluster = request.get("ProcessingResources", {}).get("ClusterConfig", {})
    volume = volume_bytes(cluster.get("InstanceType"), cluster.get("VolumeSizeInGB"))
    check_inputs(run.boxes, volume)

    argv = [*entrypoint, *(app.get("ContainerArguments") or [])]
    commands = [
        (c.command(argv), c.box.root, run.environ(c, request.get("Environment")))
        for c in run.containers
    ]
    if ctx.stop_event.is_set():
        return run.result("Stopped")

    outcome = run.execute(commands)
    failed = first_failure(outcome)
    exit_message = _exit_message(run.boxes)
    if outcome.stopped:
        return run.result("Stopped", exit_message=exit_message)
    if failed is not None:
        return run.result("Failed", _failure_reason(outcome.processes[failed].output_tail),
                          exit_message=exit_message)
    check_outputs(run.boxes, volume)
    for box in run.boxes:
        for local, uri in outputs:
            upload_dir(run.s3, _local_path(box, local, "ProcessingOutput LocalPath"), uri)
    return run.result("Completed", exit_message=exit_message)


def _failure_reason(tail: list[str]) -> str:
    """SageMaker's reason for a failed entrypoint; when the script ran out of disk space the
    emulator adds the line saying so, which the job logs alone would otherwise hold."""
    no_space = ran_out_of_space(tail)
    if no_space is None:
        return ALGORITHM_ERROR
    return f"{ALGORITHM_ERROR}. The instance ran out of disk space: {no_space}"[:MAX_REASON]


def _exit_message(boxes: list[Sandbox]) -> str | None:
    """Every instance's ``/opt/ml/output/message``, concatenated and cut to 1 KB."""
    parts = []
    for box in boxes:
        path = box.opt_ml / "output" / "message"
        if not path.is_file():
            continue
        try:
            parts.append(path.read_bytes().decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise JobFailure(
                f"ClientError: /opt/ml/output/message of {box.host} is not UTF-8 encoded text "
                f"({exc.reason} at byte {exc.start})"
            ) from exc
    message = "".join(parts)
    return message[:MAX_REASON] or None


def _local_path(box: Sandbox, local: str, what: str) -> Path:
    return box.container_path(local, PROCESSING_ROOT, what)


def _input_specs(request: dict, first: Sandbox) -> list[InputSpec]:
    specs = []
    for item in request.get("ProcessingInputs") or []:
        name = item.get("InputName", "?")
        if item.get("AppManaged"):
            continue
        source = item.get("S3Input")
        if source is None:
            raise JobFailure(
                f"ClientError: ProcessingInput {name!r}: only S3Input is supported by the local "
                "emulator (DatasetDefinition needs Athena or Redshift)"
            )
        if source.get("S3InputMode", "File") != "File":
            raise JobFailure(
                f"ClientError: ProcessingInput {name!r}: S3InputMode {source['S3InputMode']!r} "
                "is not supported by the local emulator (use File)"
            )
        local = source["LocalPath"]
        _local_path(first, local, f"ProcessingInput {name!r} LocalPath")  # fail before any download
        specs.append(
            InputSpec(
                name=name,
                uri=source["S3Uri"],
                target=lambda box, p=local, n=name: _local_path(
                    box, p, f"ProcessingInput {n!r} LocalPath"
                ),
                distribution=source.get("S3DataDistributionType", "FullyReplicated"),
                data_type=source.get("S3DataType", "S3Prefix"),
            )
        )
    return specs


def _outputs(request: dict, first: Sandbox) -> list[tuple[str, str]]:
    """``(LocalPath, S3Uri)`` per output; S3UploadMode Continuous is uploaded at the end too."""
    outputs = []
    for item in (request.get("ProcessingOutputConfig") or {}).get("Outputs") or []:
        name = item.get("OutputName", "?")
        if item.get("AppManaged"):
            continue
        target = item.get("S3Output")
        if target is None:
            raise JobFailure(
                f"ClientError: ProcessingOutput {name!r}: only S3Output is supported by the local "
                "emulator"
            )
        _local_path(first, target["LocalPath"], f"ProcessingOutput {name!r} LocalPath")
        outputs.append((target["LocalPath"], target["S3Uri"]))
    return outputs
