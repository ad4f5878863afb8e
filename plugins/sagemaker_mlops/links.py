"""The evaluation report one click away: an operator extra link to ``report.html``.

Airflow 3 computes an operator's extra links in the worker when the task ends (the task runner's
``finalize`` calls ``get_link`` and stores the URL as the XCom ``_link_<LinkClass>``); the DAG
serializes only each link's name and XCom key, and the api-server shows the stored URL
(``airflow/serialization/serialized_objects.py``, ``XComOperatorLink``). So a link must be a class
attribute of the operator that runs, and needs no plugin registration to appear in the UI.

The URL is a presigned S3 GET, so a browser opens the report without AWS credentials: on AWS
signed by the Airflow identity (S3Hook), offline by the emulator's test credentials. A connection
whose ``endpoint_url`` only workers resolve (compose: ``http://local-sagemaker:4566``) is signed
for ``report_link_endpoint`` instead (``MLOPS_REPORT_LINK_ENDPOINT``, e.g.
``http://localhost:4566``), the address a browser reaches.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow.providers.standard.operators.python import BranchPythonOperator
from airflow.sdk import BaseOperatorLink

from sagemaker_mlops.naming import split_s3_uri
from sagemaker_mlops.sagemaker_jobs import ResumableProcessingOperator

REPORT_FILE = "report.html"
EVALUATION_OUTPUT = "evaluation"
# SigV4 presigned URLs live at most 7 days; temporary credentials (an assumed role, MWAA's
# execution role) end them earlier, when the session expires
MAX_EXPIRY_SECONDS = 7 * 24 * 3600


def report_uri(evaluation_uri: str) -> str:
    """``report.html`` beside ``evaluation.json`` in the run's evaluation folder."""
    return evaluation_uri.rstrip("/") + "/" + REPORT_FILE


def presigned_url(
    aws_conn_id: str | None, uri: str, *, expires_in: int = MAX_EXPIRY_SECONDS,
    endpoint: str = "",
) -> str:
    """A GET URL for an S3 object that works without credentials until it expires.

    ``endpoint``: sign for this S3 endpoint instead of the connection's (the host is part of
    the signature, so the URL must name the address the browser uses).
    """
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from botocore.config import Config

    bucket, key = split_s3_uri(uri)
    hook = S3Hook(aws_conn_id=aws_conn_id)
    # SigV4 explicitly: botocore may presign S3 with SigV2, which AWS no longer accepts everywhere
    config = (hook.config or Config()).merge(Config(signature_version="s3v4"))
    # the hook's session carries the connection's region; ``conn_region_name`` would build a client
    s3 = hook.get_session().client(
        "s3", endpoint_url=endpoint or hook.conn_config.endpoint_url, config=config,
    )
    return s3.generate_presigned_url(
        "get_object",
        Params={"Bucket": bucket, "Key": key, "ResponseContentType": "text/html"},
        ExpiresIn=min(int(expires_in), MAX_EXPIRY_SECONDS),
    )


def report_url(aws_conn_id: str | None, evaluation_uri: str, expires_in: int = MAX_EXPIRY_SECONDS) -> str:
    """The presigned URL of a run's report, for the browser (see the module docstring)."""
    from sagemaker_mlops.settings import runtime_setting

    endpoint = runtime_setting("report_link_endpoint")
    return presigned_url(aws_conn_id, report_uri(evaluation_uri), expires_in=expires_in,
                         endpoint=endpoint)


def evaluation_uri_of(operator: Any) -> str:
    """The run's evaluation folder, from the task's rendered arguments.

    The quality gate receives the run plan (``op_kwargs["plan"]``); the evaluate job's request
    names its ``evaluation`` Processing output.
    """
    plan = (getattr(operator, "op_kwargs", None) or {}).get("plan")
    if isinstance(plan, Mapping):
        return plan["layout"]["evaluation_uri"]
    config = getattr(operator, "config", None) or {}
    for output in config.get("ProcessingOutputConfig", {}).get("Outputs", []):
        if output.get("OutputName") == EVALUATION_OUTPUT:
            return output["S3Output"]["S3Uri"]
    raise ValueError(
        f"task {getattr(operator, 'task_id', operator)!r} has neither a run plan in op_kwargs nor "
        f"a Processing output named {EVALUATION_OUTPUT!r}: no report to link"
    )


def aws_conn_id_of(operator: Any) -> str | None:
    conn_id = getattr(operator, "aws_conn_id", None)
    return conn_id or (getattr(operator, "op_kwargs", None) or {}).get("aws_conn_id")


class ReportLink(BaseOperatorLink):
    """"Evaluation report": the run's report.html (presigned), on evaluate and quality_gate."""

    name = "Evaluation report"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        return report_url(aws_conn_id_of(operator), evaluation_uri_of(operator))


class QualityGateOperator(BranchPythonOperator):
    """The quality gate's branch task, carrying the link to the report it decided on."""

    operator_extra_links = (ReportLink(),)


class EvaluateOperator(ResumableProcessingOperator):
    """The evaluate job (resumable Processing), carrying the link to the report it writes."""

    operator_extra_links = (*ResumableProcessingOperator.operator_extra_links, ReportLink())
