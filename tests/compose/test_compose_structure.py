"""Static checks of docker-compose.yaml, its AWS override, the Dockerfile and .env.example.

No Docker engine runs here, so these catch what `docker compose up` would otherwise find late:
a missing service or health check, a dependency on a service that cannot become healthy,
settings that point at the wrong host or port, secrets written into the file, variables a
user cannot discover from .env.example.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import fields
from urllib.parse import urlsplit

import pytest
from sagemaker_mlops.settings import Settings

from .compose_file import (
    AWS_OVERRIDE_FILE,
    COMPOSE_FILE,
    ENV_EXAMPLE,
    REPO,
    InterpolationError,
    as_argv,
    commented_keys,
    healthcheck_argv,
    interpolate,
    load,
    parse_port,
    parse_volume,
    read_env_file,
    variable_uses,
)

AIRFLOW_COMPONENTS = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
}
AIRFLOW_SERVICES = {*AIRFLOW_COMPONENTS, "airflow-init"}
EMULATOR = "local-sagemaker"
SEED = "local-sagemaker-seed"
ONE_SHOT = {"airflow-init", SEED}
ALL_SERVICES = {"postgres", EMULATOR, SEED, *AIRFLOW_SERVICES}
PROJECT_MOUNTS = {"dags", "plugins", "include", "local_sagemaker", "tools"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return load({})


@pytest.fixture(scope="module")
def services(compose: dict) -> dict:
    return compose["services"]


def _emulator_port(services: dict) -> int:
    command = as_argv(services[EMULATOR]["command"])
    return int(command[command.index("--port") + 1])


def test_services_are_the_official_localexecutor_set_plus_the_emulator(services: dict) -> None:
    assert set(services) == ALL_SERVICES
    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor", name
        assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "false", name


def test_airflow_services_and_emulator_share_one_image_built_from_the_dockerfile(
    services: dict,
) -> None:
    built = ALL_SERVICES - {"postgres"}
    images = {services[name]["image"] for name in built}
    assert len(images) == 1, f"one image for all Airflow services and the emulator, got {images}"
    for name in built:
        context = REPO / services[name]["build"]["context"]
        assert (context / services[name]["build"].get("dockerfile", "Dockerfile")).is_file(), name
    assert services["postgres"]["image"] == "postgres:16"


def test_dockerfile_extends_the_pinned_airflow_image_with_our_pinned_requirements() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.search(r"^FROM apache/airflow:3\.3\.2-python3\.11$", dockerfile, re.M)
    install = re.search(r"^RUN pip install .*?(?<!\\)$", dockerfile, re.M | re.S)
    assert install, "Dockerfile must pip install the requirements"
    command = install.group(0)
    assert '"apache-airflow==${AIRFLOW_VERSION}"' in command, "pin Airflow so pip cannot move it"
    for needed in ("-r /tmp/requirements/requirements.txt", "-c /tmp/requirements/constraints.txt"):
        assert needed in command
    copied = re.search(r"^COPY (?:--\S+ )*(.+) \S+/$", dockerfile, re.M).group(1).split()
    allowed = read_dockerignore_allowlist()
    for name in copied:
        assert (REPO / name).is_file(), f"Dockerfile copies {name}, which does not exist"
        assert name in allowed, f".dockerignore excludes {name}, which the Dockerfile copies"


def read_dockerignore_allowlist() -> set[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    assert "*" in lines, ".dockerignore should exclude everything but the requirements"
    return {line[1:] for line in lines if line.startswith("!")}


def test_commands_start_each_airflow_component_and_the_emulator(services: dict) -> None:
    for name, command in AIRFLOW_COMPONENTS.items():
        assert as_argv(services[name]["command"]) == [command], name
        assert "entrypoint" not in services[name], f"{name} must use the image's entrypoint"
    init = " ".join(as_argv(services["airflow-init"]["entrypoint"]) + as_argv(
        services["airflow-init"]["command"]))
    assert "airflow db migrate" in init
    assert "set -euo pipefail" in init, "the init script must fail on the first failing step"
    assert "ensure_pool" in init, "the deploy pool must exist or deploy_serverless never runs"
    argv = as_argv(services[EMULATOR]["entrypoint"]) + as_argv(services[EMULATOR]["command"])
    assert argv[:4] == ["python", "-m", "local_sagemaker", "serve"]
    assert argv[argv.index("--host") + 1] == "0.0.0.0", "other containers must reach it"
    data_dir = argv[argv.index("--data-dir") + 1]
    mounts = {parse_volume(v).target: parse_volume(v) for v in services[EMULATOR]["volumes"]}
    assert data_dir in mounts and not mounts[data_dir].is_bind, "emulator state needs a volume"


def test_inline_python_compiles_and_reuses_the_offline_runner(services: dict) -> None:
    import tools.run_offline as run_offline

    init_script = as_argv(services["airflow-init"]["command"])[-1]
    snippets = re.findall(r"python -c '(.*?)'", init_script, re.S)
    seed = as_argv(services[SEED]["entrypoint"]) + as_argv(services[SEED]["command"])
    assert seed[:2] == ["python", "-c"]
    snippets.append(seed[2])
    assert len(snippets) == 3, "init: secrets/login and pool; seed: bucket, topic, data"
    for number, snippet in enumerate(snippets):
        compile(snippet, f"<inline python {number}>", "exec")
        for name in re.findall(r"from tools\.run_offline import ([\w, ]+)", snippet):
            for function in name.split(","):
                assert hasattr(run_offline, function.strip()), function
    assert "bootstrap_aws" in seed[2]


def test_every_long_running_service_has_a_healthcheck_that_probes_itself(services: dict) -> None:
    kind, argv = healthcheck_argv(services["postgres"])
    assert argv[0] == "pg_isready"
    env = services["postgres"]["environment"]
    assert argv[argv.index("-U") + 1] == env["POSTGRES_USER"]
    assert argv[argv.index("-d") + 1] == env["POSTGRES_DB"]

    kind, argv = healthcheck_argv(services["airflow-apiserver"])
    url = urlsplit(argv[-1])
    container_ports = {parse_port(p).container_port for p in services["airflow-apiserver"]["ports"]}
    assert url.port in container_ports and url.path == "/api/v2/monitor/health"

    job_types = {
        "airflow-scheduler": "SchedulerJob",
        "airflow-dag-processor": "DagProcessorJob",
        "airflow-triggerer": "TriggererJob",
    }
    for name, job_type in job_types.items():
        kind, argv = healthcheck_argv(services[name])
        script = " ".join(argv)
        assert f"airflow jobs check --job-type {job_type}" in script, name
        assert "--local" in script, f"{name} must check its own job, not any host's"

    kind, argv = healthcheck_argv(services[EMULATOR])
    assert f"http://localhost:{_emulator_port(services)}/health" in " ".join(argv)
    for name, service in services.items():
        if name not in ONE_SHOT:
            assert service["healthcheck"]["retries"] >= 3, name


def test_depends_on_conditions_order_the_start_up(services: dict) -> None:
    for name in AIRFLOW_COMPONENTS:
        deps = services[name]["depends_on"]
        assert deps["postgres"]["condition"] == "service_healthy", name
        assert deps["airflow-init"]["condition"] == "service_completed_successfully", name
    assert services["airflow-init"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    scheduler = services["airflow-scheduler"]["depends_on"]
    assert scheduler[SEED]["condition"] == "service_completed_successfully", (
        "tasks need the bucket, topic and raw data in the emulator"
    )
    assert services[SEED]["depends_on"] == {EMULATOR: {"condition": "service_healthy"}}
    assert scheduler["airflow-apiserver"]["condition"] == "service_healthy", (
        "tasks call the Execution API as soon as the scheduler starts them"
    )
    assert not services[EMULATOR].get("depends_on")
    for name, service in services.items():
        for dep, spec in (service.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep}'s health check"
    _assert_acyclic(services)


def _assert_acyclic(services: dict) -> None:
    visiting: set[str] = set()
    done: set[str] = set()

    def visit(name: str) -> None:
        assert name not in visiting, f"depends_on cycle through {name}"
        if name in done:
            return
        visiting.add(name)
        for dep in services[name].get("depends_on") or {}:
            visit(dep)
        visiting.discard(name)
        done.add(name)

    for name in services:
        visit(name)


def test_project_code_is_mounted_and_state_lives_in_named_volumes(compose: dict) -> None:
    services = compose["services"]
    for name in AIRFLOW_SERVICES:
        volumes = [parse_volume(v) for v in services[name]["volumes"]]
        binds = {v.target: v.source for v in volumes if v.is_bind}
        for directory in PROJECT_MOUNTS:
            source = binds.get(f"/opt/airflow/{directory}")
            assert source, f"{name} must mount ./{directory} at /opt/airflow/{directory}"
            assert (REPO / source).resolve() == REPO / directory, f"{name}: {source}"
        named = {v.target: v.source for v in volumes if not v.is_bind}
        env = services[name]["environment"]
        assert named.get(env["AIRFLOW__LOGGING__BASE_LOG_FOLDER"]) == "airflow-logs", name
        secrets_dir = env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"].rsplit("/", 1)[0]
        assert named.get(secrets_dir) == "airflow-secrets", name
        assert env["AIRFLOW__CORE__DAGS_FOLDER"] in binds and env["AIRFLOW__CORE__PLUGINS_FOLDER"] in binds
    for service in services.values():
        for volume in map(parse_volume, service.get("volumes", [])):
            if not volume.is_bind:
                assert volume.source in compose["volumes"], f"undeclared volume {volume.source}"


def test_components_agree_on_database_execution_api_and_secrets(services: dict) -> None:
    postgres = services["postgres"]["environment"]
    expected_db = (
        f"postgresql+psycopg2://{postgres['POSTGRES_USER']}:{postgres['POSTGRES_PASSWORD']}"
        f"@postgres:5432/{postgres['POSTGRES_DB']}"
    )
    api_port = next(parse_port(p).container_port for p in services["airflow-apiserver"]["ports"])
    shared = {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": expected_db,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://airflow-apiserver:{api_port}/execution/",
    }
    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        for key, value in shared.items():
            assert env[key] == value, f"{name}: {key}"
    for key in (
        "AIRFLOW__API_AUTH__JWT_SECRET_CMD",
        "AIRFLOW__API__SECRET_KEY_CMD",
        "AIRFLOW__CORE__FERNET_KEY_CMD",
        "AIRFLOW__API_AUTH__JWT_ISSUER",
    ):
        values = {services[name]["environment"].get(key) for name in AIRFLOW_SERVICES}
        assert len(values) == 1 and None not in values, f"every component needs the same {key}"


def test_no_secret_is_written_into_the_compose_file(services: dict) -> None:
    for name, service in services.items():
        env = service.get("environment", {})
        for key in env:
            assert not re.search(r"JWT_SECRET$|SECRET_KEY$|FERNET_KEY$", key), (
                f"{name}: {key} must not be a literal; read it from the secrets volume (*_CMD)"
            )
        assert env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "false") == "false"
    init_env = services["airflow-init"]["environment"]
    assert init_env["_AIRFLOW_WWW_USER_PASSWORD"] == "", "the admin password comes from .env"
    raw = COMPOSE_FILE.read_text()
    assert "${_AIRFLOW_WWW_USER_PASSWORD:-}" in raw
    chosen = load({"_AIRFLOW_WWW_USER_PASSWORD": "s3cret-from-env"})
    assert chosen["services"]["airflow-init"]["environment"]["_AIRFLOW_WWW_USER_PASSWORD"] == (
        "s3cret-from-env"
    )


def test_aws_connection_points_at_the_emulator_service(services: dict) -> None:
    for name in AIRFLOW_SERVICES:
        conn = json.loads(services[name]["environment"]["AIRFLOW_CONN_AWS_DEFAULT"])
        assert conn["conn_type"] == "aws"
        endpoint = urlsplit(conn["extra"]["endpoint_url"])
        assert (endpoint.hostname, endpoint.port) == (EMULATOR, _emulator_port(services)), name
        assert conn["extra"]["region_name"] == services[name]["environment"]["AWS_DEFAULT_REGION"]
    emulator = as_argv(services[EMULATOR]["command"])
    assert emulator[emulator.index("--region") + 1] == conn["extra"]["region_name"], (
        "the emulator's ARNs must carry the connection's region"
    )


def test_pythonpath_makes_project_root_and_plugins_importable(services: dict) -> None:
    for name in (*AIRFLOW_SERVICES, EMULATOR):
        entries = services[name]["environment"]["PYTHONPATH"].split(":")
        assert {"/opt/airflow", "/opt/airflow/plugins"} <= set(entries), name


def test_pipeline_settings_use_settings_py_names_and_defaults(services: dict) -> None:
    defaults = {f"MLOPS_{f.name.upper()}": str(f.default) for f in fields(Settings)}
    env = services["airflow-scheduler"]["environment"]
    used = {key for key in env if key.startswith("MLOPS_")}
    assert used, "the compose file should show the main pipeline settings"
    assert used <= set(defaults), f"unknown settings {used - set(defaults)}"
    # the emulator answers at once: poll faster; report links name the port a browser reaches
    for key in used - {"MLOPS_POLL_SECONDS", "MLOPS_REPORT_LINK_ENDPOINT"}:
        assert env[key] == defaults[key], f"{key} default differs from settings.py"
    published = [parse_port(p).host_port for p in services[EMULATOR]["ports"]]
    assert env["MLOPS_REPORT_LINK_ENDPOINT"] == f"http://localhost:{published[0]}"
    documented = set(read_env_file(ENV_EXAMPLE)) | commented_keys(ENV_EXAMPLE)
    for key in documented:
        if key.startswith("MLOPS_"):
            assert key in defaults, f".env.example documents unknown setting {key}"


def test_ports_publish_the_ui_and_emulator_on_loopback_only(services: dict) -> None:
    api = [parse_port(p) for p in services["airflow-apiserver"]["ports"]]
    assert [(p.host_ip, p.host_port, p.container_port) for p in api] == [("127.0.0.1", 8080, 8080)]
    emulator = [parse_port(p) for p in services[EMULATOR]["ports"]]
    assert [p.container_port for p in emulator] == [_emulator_port(services)]
    assert all(p.host_ip == "127.0.0.1" for p in emulator)
    for name in ("postgres", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"):
        assert "ports" not in services[name], f"{name} needs no published port"


def test_every_variable_has_a_default_or_is_documented_in_env_example() -> None:
    example = read_env_file(ENV_EXAMPLE)
    documented = set(example) | commented_keys(ENV_EXAMPLE)
    for path in (COMPOSE_FILE, AWS_OVERRIDE_FILE):
        for use in variable_uses(path.read_text()):
            assert use.has_default or use.name in documented, (
                f"{path.name}: ${{{use.name}}} has no default and is not in .env.example"
            )
            if use.required:
                assert use.name in documented, f"{path.name}: required {use.name} undocumented"
    # The example itself must yield a working offline stack.
    model = load(example)
    assert set(model["services"]) == ALL_SERVICES


def test_env_file_is_optional_and_git_ignored(compose: dict) -> None:
    for name in AIRFLOW_SERVICES:
        assert compose["services"][name]["env_file"] == [{"path": ".env", "required": False}]
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", ".env"], cwd=REPO, check=False
    ).returncode
    assert ignored == 0, ".env holds credentials: it must be git-ignored"


AWS_ENV = {
    "MLOPS_BUCKET": "my-bucket",
    "MLOPS_ROLE_ARN": "arn:aws:iam::111122223333:role/sm",
    "MLOPS_ALERT_TOPIC_ARN": "arn:aws:sns:us-east-1:111122223333:alerts",
}


def test_aws_override_drops_the_endpoint_and_the_emulator() -> None:
    env = AWS_ENV
    model = load(env, COMPOSE_FILE, AWS_OVERRIDE_FILE)
    services = model["services"]
    for name in (EMULATOR, SEED):
        assert services[name]["profiles"] == ["emulator"], f"{name} must not start"
    for name in AIRFLOW_SERVICES:
        service_env = services[name]["environment"]
        conn = json.loads(service_env["AIRFLOW_CONN_AWS_DEFAULT"])
        assert "endpoint_url" not in conn["extra"], name
        assert service_env["MLOPS_BUCKET"] == "my-bucket"
        assert service_env["MLOPS_ROLE_ARN"] == env["MLOPS_ROLE_ARN"]
        assert service_env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor", "base settings kept"
        mounts = {parse_volume(v).target: parse_volume(v) for v in services[name]["volumes"]}
        assert "/opt/airflow/dags" in mounts
        assert mounts["/home/airflow/.aws"].read_only, "credentials are mounted read-only"
        assert service_env["AWS_CONFIG_FILE"].startswith("/home/airflow/.aws/")
        dep = (services[name].get("depends_on") or {}).get(EMULATOR)
        assert dep is None or dep.get("required") is False, f"{name} would wait for no emulator"


@pytest.mark.parametrize("missing", sorted(AWS_ENV))
def test_aws_override_refuses_to_start_without_bucket_role_and_topic(missing: str) -> None:
    env = {key: value for key, value in AWS_ENV.items() if key != missing}
    with pytest.raises(InterpolationError, match=missing):
        load(env, COMPOSE_FILE, AWS_OVERRIDE_FILE)


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("${A:-x}", {}, "x"),
        ("${A:-x}", {"A": ""}, "x"),
        ("${A-x}", {"A": ""}, ""),
        ("${A}", {"A": "v"}, "v"),
        ("$$HOME and $${B}", {}, "$HOME and ${B}"),
        ('{"u": "${A:-d}"}', {"A": "1"}, '{"u": "1"}'),
    ],
)
def test_interpolation_follows_compose_rules(text: str, env: dict, expected: str) -> None:
    assert interpolate(text, env) == expected


def test_image_builds_the_emulator_image_environments_and_the_emulator_may_isolate(
    services: dict,
) -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.search(r"^RUN cd /opt/airflow && python -m local_sagemaker\.images build$", dockerfile, re.M)
    assert "bubblewrap" in dockerfile
    for copied in ("local_sagemaker/images", "local_sagemaker/__init__.py"):
        assert f"COPY --chown=airflow:0 {copied} " in dockerfile
        assert copied in read_dockerignore_allowlist()
    emulator = services["local-sagemaker"]
    assert "SYS_ADMIN" in emulator["cap_add"], "bubblewrap needs CAP_SYS_ADMIN for a mount namespace"
    assert "seccomp=unconfined" in emulator["security_opt"]
