"""Deployment settings: what every pipeline shares (bucket, role, region, images, connection).

What differs per model (DAG id, schedule, model package group, endpoint, S3 prefix, Param
defaults) is its pipeline spec (see ``specs.py``); per-run choices are DAG Params (``params.py``). Each setting here resolves, first hit wins:
1. the Airflow Variable ``mlops_<name>`` (this includes ``AIRFLOW_VAR_MLOPS_<NAME>``),
   consulted only inside running tasks, never while a DAG file is parsed;
2. the environment variable ``MLOPS_<NAME>``;
3. the documented default below.
Settings the DAG needs at parse time (deploy pool, polling) therefore come from the environment
only.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import Field, dataclass, fields
from pathlib import Path
from typing import Any


def _project_root() -> Path:
    """The folder holding ``include/``: the repository root (this package in ``plugins/``), or
    MWAA's DAGs folder, where ``./dev bundle mwaa`` puts this package beside ``include/``."""
    package_parent = Path(__file__).resolve().parents[1]
    if (package_parent / "include" / "training").is_dir():
        return package_parent
    return package_parent.parent


PROJECT_ROOT = _project_root()

# Account that publishes SageMaker's scikit-learn images, per region (SageMaker Python SDK
# image_uri_config/sklearn.json); other regions must set MLOPS_SKLEARN_IMAGE_URI.
SKLEARN_IMAGE_ACCOUNTS: dict[str, str] = {
    "us-east-1": "683313688378",
    "us-east-2": "257758044811",
    "us-west-1": "746614075791",
    "us-west-2": "246618743249",
    "ca-central-1": "341280168497",
    "eu-west-1": "141502667606",
    "eu-west-2": "764974769150",
    "eu-west-3": "659782779980",
    "eu-central-1": "492215442770",
    "eu-north-1": "662702820516",
    "ap-south-1": "720646828776",
    "ap-northeast-1": "354813040037",
    "ap-northeast-2": "366743142698",
    "ap-southeast-1": "121021644041",
    "ap-southeast-2": "783357654285",
    "sa-east-1": "737474898029",
}
SKLEARN_IMAGE_TAG = "1.4-2-cpu-py3"
# Below this a status poll is busy-waiting (offline runs use 0.2 s: the emulator answers in ~1 ms).
MIN_POLL_SECONDS = 0.1
# The account moto (and so the offline emulator) reports for every resource.
OFFLINE_ACCOUNT_ID = "123456789012"


def sklearn_image_uri(region: str) -> str:
    """Default training/processing/inference image: SageMaker's scikit-learn 1.4-2 container."""
    try:
        account = SKLEARN_IMAGE_ACCOUNTS[region]
    except KeyError:
        raise ValueError(
            f"no default scikit-learn image known for region {region!r}; "
            "set MLOPS_SKLEARN_IMAGE_URI (or the Airflow Variable mlops_sklearn_image_uri)"
        ) from None
    return f"{account}.dkr.ecr.{region}.amazonaws.com/sagemaker-scikit-learn:{SKLEARN_IMAGE_TAG}"


@dataclass(frozen=True)
class Settings:
    """Resolved settings; field name ``x`` is env var ``MLOPS_X`` and Variable ``mlops_x``."""

    aws_conn_id: str = "aws_default"
    region: str = ""  # empty: the region of the AWS connection
    bucket: str = "mlops-offline"
    role_arn: str = f"arn:aws:iam::{OFFLINE_ACCOUNT_ID}:role/SageMakerExecutionRole"
    sklearn_image_uri: str = ""  # empty: SageMaker's scikit-learn 1.4-2 image for the region
    alert_topic_arn: str = ""  # empty: arn:aws:sns:<region>:123456789012:mlops-alerts
    # empty: each pipeline spec's own schedule; "none": every pipeline manual only (dev stacks)
    schedule: str = ""
    deploy_pool: str = "deploy_serverless"
    poll_seconds: float = 30.0  # status polling of SageMaker jobs/endpoints; offline: 0.2
    # first wait before a transient failure is retried (then doubling, retry.py); offline: 2
    retry_delay_seconds: float = 30.0
    # wait for SageMaker jobs/endpoints in the triggerer instead of a worker slot; needs the
    # provider's aiobotocore extra and a running triggerer (dag.test() runs triggers inline)
    deferrable: bool = True
    processing_instance_type: str = "ml.m5.large"
    training_instance_type: str = "ml.m5.large"
    training_code_dir: str = str(PROJECT_ROOT / "include" / "training")
    # S3 endpoint the report links are signed for, when the connection's endpoint_url is a host
    # only workers resolve (compose: http://localhost:4566); empty: the connection's endpoint
    report_link_endpoint: str = ""
    # HTTP connection (api-server URL, a user's login) the run note is written with (run_note.py)
    run_note_conn_id: str = "airflow_api"

    def schedule_for(self, spec_schedule: str | None) -> str | None:
        """The schedule a pipeline DAG gets: its spec's, unless this setting says none."""
        if self.schedule.strip().lower() in {"none", "null"}:
            return None
        return spec_schedule

    @property
    def image_uri(self) -> str:
        return self.sklearn_image_uri or sklearn_image_uri(self.region)

    @property
    def topic_arn(self) -> str:
        return self.alert_topic_arn or f"arn:aws:sns:{self.region}:{OFFLINE_ACCOUNT_ID}:mlops-alerts"


_TYPES = {"str": str, "float": float, "bool": bool}


def _convert(name: str, raw: str, target: type) -> object:
    if target is bool:
        lowered = raw.strip().lower()
        if lowered not in {"true", "false", "1", "0", "yes", "no"}:
            raise ValueError(f"setting {name}: expected true/false, got {raw!r}")
        return lowered in {"true", "1", "yes"}
    if target is float:
        try:
            seconds = float(raw)
        except ValueError:
            raise ValueError(f"setting {name}: expected a number of seconds, got {raw!r}") from None
        if not seconds >= MIN_POLL_SECONDS:  # also rejects nan
            raise ValueError(f"setting {name}: must be >= {MIN_POLL_SECONDS}, got {raw!r}")
        return seconds
    return raw.strip()


def _resolved(
    field: Field, environ: Mapping[str, str], variable: Callable[[str], str | None] | None
) -> object | None:
    """One setting from its Variable (when ``variable`` is given), then the environment; None
    when neither sets it."""
    raw = variable(f"mlops_{field.name}") if variable else None
    if raw is None:
        raw = environ.get(f"MLOPS_{field.name.upper()}")
    return None if raw is None else _convert(field.name, str(raw), _TYPES[str(field.type)])


def _variable(name: str) -> str | None:
    """An Airflow Variable inside a running task (a round trip to the API server)."""
    from airflow.sdk import Variable

    return Variable.get(name, default=None)


def load_settings(
    environ: Mapping[str, str] | None = None,
    variable: Callable[[str], str | None] | None = None,
    region_of_connection: Callable[[str], str | None] | None = None,
) -> Settings:
    """Resolve every setting (Variable, then env, then default).

    ``variable`` looks up an Airflow Variable by name (None: not consulted, as at parse time);
    ``region_of_connection`` gives the region configured on the AWS connection.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for field in fields(Settings):
        value = _resolved(field, environ, variable)
        if value is not None:
            values[field.name] = value
    settings = Settings(**values)  # type: ignore[arg-type]
    if not settings.region:
        region = region_of_connection(settings.aws_conn_id) if region_of_connection else None
        region = region or environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        settings = Settings(**{**values, "region": region})  # type: ignore[arg-type]
    if not settings.role_arn.startswith("arn:"):
        raise ValueError(
            f"setting role_arn must be a full IAM role ARN (arn:aws:iam::<account>:role/<name>), "
            f"got {settings.role_arn!r}"
        )
    return settings


def parse_time_settings() -> Settings:
    """Settings for DAG construction: environment only, so parsing never touches the DB."""
    return load_settings()


def runtime_settings() -> Settings:
    """Settings inside a running task: Variables, environment, and the connection's region."""
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    def region_of_connection(conn_id: str) -> str | None:
        # the session's region (connection, then AWS config), without building a client
        return AwsBaseHook(aws_conn_id=conn_id, client_type="sagemaker").get_session().region_name

    return load_settings(variable=_variable, region_of_connection=region_of_connection)


def runtime_setting(name: str) -> Any:
    """One setting inside a running task (Variable, environment, default) without the others.

    Every Variable lookup is a round trip to the API server, so a task that needs one setting
    (a run note's connection, a link's endpoint) should not pay for all of them.
    """
    field = {f.name: f for f in fields(Settings)}[name]
    value = _resolved(field, os.environ, _variable)
    return field.default if value is None else value
