"""Endpoint lifecycle: one model server per production variant, deployed in the background.

Creating goes to InService, or Failed with the model's load error. Updating starts the new
servers beside the old ones and switches only when all are healthy; when they are not, the
endpoint returns to InService on the OLD EndpointConfigName with FailureReason set, which is
SageMaker's silent rollback that the DAG's deploy step must detect.
"""

from __future__ import annotations

import logging
import random
import threading
import uuid
from dataclasses import dataclass
from typing import Any

from local_sagemaker import s3util
from local_sagemaker.iam import EXECUTION_ACCESS_KEY
from local_sagemaker.protocol import AwsError
from local_sagemaker.runner.logs import LogStreamer
from local_sagemaker.serving import ModelLoadError, ModelServer
from local_sagemaker.settings import Settings
from local_sagemaker.state import Store, now

log = logging.getLogger(__name__)

IN_PROGRESS = ("Creating", "Updating", "SystemUpdating")
RESTART_NOTE = ("while restarting the endpoint after the emulator restarted; S3 content survives "
                "only a clean stop of the emulator, so upload the model artifacts again and "
                "update the endpoint")


@dataclass
class Variant:
    name: str
    weight: float
    server: ModelServer


class EndpointManager:
    """Owns the live model servers of every endpoint and moves endpoint records through their
    statuses as SageMaker does."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self._settings = settings
        self._store = store
        self._live: dict[str, list[Variant]] = {}
        self._starting: set[ModelServer] = set()  # stopped on shutdown so deploys end at once
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._closed = False

    @property
    def settings(self) -> Settings:
        return self._settings

    # -- lifecycle -----------------------------------------------------------------------------
    def deploy(self, name: str, config: dict[str, Any], *, restoring: bool = False) -> None:
        """Bring ``config`` up for endpoint ``name`` in the background (create, update or restore)."""
        thread = threading.Thread(target=self._deploy, args=(name, config, restoring),
                                  name=f"endpoint-{name}", daemon=True)
        with self._lock:
            if self._closed:
                raise RuntimeError("the emulator is shutting down")
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def restore(self) -> None:
        """Restart the servers of endpoints a previous emulator process had up."""
        for record in self._store.values("endpoints"):
            if record["EndpointStatus"] not in ("InService", *IN_PROGRESS):
                continue
            config = self._store.get("endpoint_configs", record["EndpointConfigName"])
            name = record["EndpointName"]
            with self._store.edit("endpoints", name) as live:
                live["EndpointStatus"] = "SystemUpdating"
                live["LastModifiedTime"] = now()
            if config is None:
                self._fail(name, f"Endpoint configuration {record['EndpointConfigName']} no longer "
                                 "exists, so the endpoint cannot be restarted")
                continue
            self.deploy(name, config, restoring=True)

    def _deploy(self, name: str, config: dict[str, Any], restoring: bool) -> None:
        try:
            variants = self._start_variants(name, config)
        except Exception as exc:
            if self._closed:  # shutdown stopped the new servers: keep the status for a restart
                return
            reason = str(exc) or type(exc).__name__
            if not isinstance(exc, ModelLoadError):
                log.exception("deploying endpoint %s crashed in the emulator", name)
            self._rollback_or_fail(name, f"{reason} ({RESTART_NOTE})" if restoring else reason)
            return
        with self._store.edit("endpoints", name) as record:
            gone = record is None or self._closed
            if not gone:
                record.update(EndpointStatus="InService", LastModifiedTime=now(),
                              EndpointConfigName=config["EndpointConfigName"],
                              ProductionVariants=_variant_summaries(config))
                record.pop("FailureReason", None)
        if gone:
            _stop_all(variants)
            return
        with self._lock:
            old = self._live.get(name, [])
            self._live[name] = variants
        _stop_all(old)

    def _start_variants(self, name: str, config: dict[str, Any]) -> list[Variant]:
        variants: list[Variant] = []
        try:
            for spec in config["ProductionVariants"]:
                model = self._store.get("models", spec["ModelName"])
                if model is None:
                    raise ModelLoadError(
                        f"Could not find model \"{self._settings.arn('model', spec['ModelName'])}\".")
                serverless = spec.get("ServerlessConfig") or {}
                instance = uuid.uuid4().hex[:8]
                server = ModelServer(
                    containers=model["_containers"], endpoint_url=self._settings.endpoint_url,
                    region=self._settings.region,
                    work_dir=self._settings.work_dir / "endpoints" / name / f"{spec['VariantName']}-{instance}",
                    memory_mb=serverless.get("MemorySizeInMB"),
                    max_concurrency=serverless.get("MaxConcurrency"), variant=spec["VariantName"],
                    log_sink=self._log_sink(name, spec["VariantName"], instance))
                variants.append(Variant(spec["VariantName"], float(spec.get("InitialVariantWeight", 1.0)), server))
                with self._lock:
                    if self._closed:
                        raise ModelLoadError("the emulator is shutting down")
                    self._starting.add(server)
                server.start()
            for variant in variants:
                variant.server.wait_ready()
        except BaseException:
            _stop_all(variants)
            raise
        finally:
            with self._lock:
                self._starting.difference_update(v.server for v in variants)
        return variants

    def _log_sink(self, name: str, variant: str, instance: str) -> LogStreamer | None:
        """The containers' output goes to CloudWatch Logs as SageMaker sends it: group
        ``/aws/sagemaker/Endpoints/<endpoint>``, stream ``<variant>/<instance id>``."""
        try:
            client = s3util.aws_client("logs", self._settings.endpoint_url, self._settings.region,
                                       EXECUTION_ACCESS_KEY)
            return LogStreamer(client, f"/aws/sagemaker/Endpoints/{name}", f"{variant}/i-{instance}")
        except Exception:  # logs are a convenience: the server's log file has everything
            log.warning("endpoint %s: cannot send the model server's output to CloudWatch Logs",
                        name, exc_info=True)
            return None

    def _rollback_or_fail(self, name: str, reason: str) -> None:
        with self._lock:
            serving_old = bool(self._live.get(name))
        if serving_old:  # a failed update: the old fleet keeps serving
            with self._store.edit("endpoints", name) as record:
                if record is not None:
                    record.update(EndpointStatus="InService", FailureReason=reason[:1024],
                                  LastModifiedTime=now())
        else:
            self._fail(name, reason)

    def _fail(self, name: str, reason: str) -> None:
        with self._store.edit("endpoints", name) as record:
            if record is not None:
                record.update(EndpointStatus="Failed", FailureReason=reason[:1024],
                              LastModifiedTime=now())

    def remove(self, name: str) -> None:
        with self._lock:
            variants = self._live.pop(name, [])
        _stop_all(variants)

    # -- serving -------------------------------------------------------------------------------
    def invoke(self, name: str, body: bytes, content_type: str, accept: str | None,
               target_variant: str | None = None) -> tuple[bytes, str, str]:
        """Send one request to the endpoint; returns (body, content type, variant name)."""
        with self._lock:
            variants = self._live.get(name)
        if not variants:
            raise AwsError("ValidationError",
                           f"Endpoint {name} of account {self._settings.account_id} not found.")
        if target_variant is not None:
            chosen = next((v for v in variants if v.name == target_variant), None)
            if chosen is None:
                raise AwsError("ValidationError",
                               f"Target variant {target_variant} not found for endpoint {name}.")
        elif len(variants) == 1:
            chosen = variants[0]
        else:
            chosen = random.choices(variants, weights=[v.weight for v in variants])[0]
        out, out_type = chosen.server.invoke(body, content_type, accept)
        return out, out_type, chosen.name

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
            threads, starting = list(self._threads), list(self._starting)
        for server in starting:  # their wait_ready() then fails at once
            server.stop()
        for thread in threads:
            thread.join(timeout=30)
        with self._lock:
            live, self._live = self._live, {}
        for variants in live.values():
            _stop_all(variants)


def _variant_summaries(config: dict[str, Any]) -> list[dict[str, Any]]:
    summaries = []
    for spec in config["ProductionVariants"]:
        summary: dict[str, Any] = {"VariantName": spec["VariantName"],
                                   "CurrentWeight": spec.get("InitialVariantWeight", 1.0),
                                   "DesiredWeight": spec.get("InitialVariantWeight", 1.0)}
        if spec.get("ServerlessConfig"):
            summary["CurrentServerlessConfig"] = spec["ServerlessConfig"]
            summary["DesiredServerlessConfig"] = spec["ServerlessConfig"]
        else:
            summary["CurrentInstanceCount"] = spec.get("InitialInstanceCount", 1)
            summary["DesiredInstanceCount"] = spec.get("InitialInstanceCount", 1)
        summaries.append(summary)
    return summaries


def _stop_all(variants: list[Variant]) -> None:
    for variant in variants:
        try:
            variant.server.stop()
        except Exception:  # stopping is best effort; one bad server must not keep others alive
            log.exception("stopping the model server of variant %s failed", variant.name)
