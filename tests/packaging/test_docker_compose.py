"""docker-compose.yaml, Dockerfile and .env.example, read as data (no Docker engine needed)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path, PurePosixPath

import pytest
import yaml

from leadboxer_pipedrive.hooks.leadboxer import LeadBoxerHook
from leadboxer_pipedrive.hooks.ledger import LedgerHook
from leadboxer_pipedrive.hooks.pipedrive import PipedriveHook

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW_SERVICES = ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer",
                    "airflow-worker")
CONNECTION_VARS = {
    "pipedrive": "AIRFLOW_CONN_PIPEDRIVE_DEFAULT",
    "leadboxer": "AIRFLOW_CONN_LEADBOXER_DEFAULT",
    "ledger": "AIRFLOW_CONN_LEADBOXER_PIPEDRIVE_LEDGER",
}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yaml").read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = shlex.split(value)[0] if value.strip() else ""
    return values


def env_of(service: dict) -> dict[str, str]:
    return {key: str(value) for key, value in (service.get("environment") or {}).items()}


def mounts_of(service: dict) -> dict[str, str]:
    """host path (with ${AIRFLOW_PROJ_DIR:-.} resolved to .) -> container path"""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target = volume.replace("${AIRFLOW_PROJ_DIR:-.}", ".").split(":")[:2]
        mounts[source] = target
    return mounts


def referenced_variable(value: str) -> str | None:
    match = re.fullmatch(r"\$\{(\w+)(?::?[-?][^}]*)?\}", value)
    return match[1] if match else None


def test_services(services):
    assert {"postgres", "redis", "airflow-init", *AIRFLOW_SERVICES} <= set(services)
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["redis"]["image"].startswith("redis:")
    assert services["airflow-apiserver"]["command"] == "api-server"
    assert services["airflow-scheduler"]["command"] == "scheduler"
    assert services["airflow-dag-processor"]["command"] == "dag-processor"
    assert services["airflow-triggerer"]["command"] == "triggerer"
    assert services["airflow-worker"]["command"] == "celery worker"
    assert "8080:8080" in services["airflow-apiserver"]["ports"]


def test_airflow_services_use_the_image_built_here(services):
    for name in (*AIRFLOW_SERVICES, "airflow-init"):
        assert services[name]["build"] == ".", name
        assert services[name]["image"], name


def test_celery_executor_on_postgres_and_redis(services):
    for name in (*AIRFLOW_SERVICES, "airflow-init"):
        env = env_of(services[name])
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://"), name
        assert "@postgres/" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://") and "@redis:6379" in env[
            "AIRFLOW__CELERY__BROKER_URL"]
        assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://")
        assert "@postgres/" in env["AIRFLOW__CELERY__RESULT_BACKEND"]
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
        assert env["AIRFLOW__CORE__LOAD_EXAMPLES"].lower() == "false"
    # The worker keeps the common environment and adds the warm-shutdown switch.
    assert env_of(services["airflow-worker"])["DUMB_INIT_SETSID"] == "0"


def test_project_folders_are_mounted(services):
    for name in (*AIRFLOW_SERVICES, "airflow-init"):
        mounts = mounts_of(services[name])
        for folder in ("dags", "plugins", "include", "logs"):
            assert mounts.get(f"./{folder}") == f"/opt/airflow/{folder}", (name, folder)
            assert folder == "logs" or (ROOT / folder).is_dir()


def test_mounted_plugins_and_their_sql_are_used(services):
    env = env_of(services["airflow-worker"])
    mounts = mounts_of(services["airflow-worker"])
    plugins = PurePosixPath(env["PYTHONPATH"])
    assert str(plugins) == mounts["./plugins"]
    # leadboxer_pipedrive.sql.sql_dir() looks for include/sql beside plugins/ first.
    assert str(plugins.parent / "include") == mounts["./include"]


def test_staging_is_a_volume_shared_by_the_workers(compose, services):
    env = env_of(services["airflow-worker"])
    staging = env["LEADBOXER_PIPEDRIVE_STAGING_URL"]
    assert staging.startswith("file://")
    path = staging.removeprefix("file://")
    named = {target: source for source, target in mounts_of(services["airflow-worker"]).items()}
    assert path in named and named[path] in compose["volumes"]


def test_connections_come_from_env_file(services, env_example):
    for name in (*AIRFLOW_SERVICES, "airflow-init"):
        env = env_of(services[name])
        for variable in CONNECTION_VARS.values():
            assert referenced_variable(env[variable]) == variable, (name, variable)
            assert variable in env_example


def test_connection_examples_use_the_hooks_conn_types(env_example):
    pipedrive = json.loads(env_example[CONNECTION_VARS["pipedrive"]])
    leadboxer = json.loads(env_example[CONNECTION_VARS["leadboxer"]])
    assert pipedrive["conn_type"] == PipedriveHook.conn_type
    assert pipedrive["host"].startswith("https://")
    assert leadboxer["conn_type"] == LeadBoxerHook.conn_type
    assert leadboxer["host"].startswith("https://")
    # The connection ids the hooks use by default are the ones the variables define.
    assert CONNECTION_VARS["pipedrive"] == f"AIRFLOW_CONN_{PipedriveHook.default_conn_name.upper()}"
    assert CONNECTION_VARS["leadboxer"] == f"AIRFLOW_CONN_{LeadBoxerHook.default_conn_name.upper()}"
    assert CONNECTION_VARS["ledger"] == f"AIRFLOW_CONN_{LedgerHook.default_conn_name.upper()}"


def test_ledger_connection_is_the_postgres_ledger_service(services, env_example):
    ledger = json.loads(env_example[CONNECTION_VARS["ledger"]])
    assert ledger["conn_type"] == "postgres"
    db = services[ledger["host"]]
    assert db["image"].startswith("postgres:")
    db_env = env_of(db)
    assert ledger["login"] == db_env["POSTGRES_USER"]
    assert ledger["schema"] == db_env["POSTGRES_DB"]  # LedgerHook reads the database name from schema
    assert ledger["port"] == 5432
    assert referenced_variable(db_env["POSTGRES_PASSWORD"]) == "LEDGER_DB_PASSWORD"
    assert ledger["password"] == env_example["LEDGER_DB_PASSWORD"]
    for name in (*AIRFLOW_SERVICES, "airflow-init"):
        assert services[name]["depends_on"][ledger["host"]]["condition"] == "service_healthy"


def test_healthchecks(services):
    for name in ("postgres", "redis", "ledger-db", *AIRFLOW_SERVICES):
        test = services[name].get("healthcheck", {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL"), name
    assert any("8974/health" in part for part in services["airflow-scheduler"]["healthcheck"]["test"])
    assert any("celery" in part for part in services["airflow-worker"]["healthcheck"]["test"])


def test_start_order(services):
    for name in AIRFLOW_SERVICES:
        depends = services[name]["depends_on"]
        assert depends["airflow-init"]["condition"] == "service_completed_successfully", name
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name
    assert services["airflow-worker"]["depends_on"]["airflow-apiserver"]["condition"] == "service_healthy"
    init = services["airflow-init"]
    assert env_of(init)["_AIRFLOW_DB_MIGRATE"] == "true"
    assert "airflow-init" not in init["depends_on"]
    assert "leadboxer-pipedrive" in "\n".join(init["command"])  # init fails if the provider is missing


# -- Dockerfile ---------------------------------------------------------------------------------------

def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    return [tuple(line.split(None, 1)) for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_dockerfile_base_image_matches_the_lock():
    froms = [arg for instruction, arg in dockerfile_instructions() if instruction == "FROM"]
    assert len(froms) == 1
    match = re.fullmatch(r"apache/airflow:(\S+)-python(\d+\.\d+)", froms[0].strip())
    assert match, froms[0]
    pin = re.search(r"^apache-airflow==(\S+)$", (ROOT / "requirements.txt").read_text(), re.MULTILINE)[1]
    assert match[1] == pin
    lock_python = re.search(r"--python-version (\d+\.\d+)", (ROOT / "requirements.txt").read_text())[1]
    assert match[2] == lock_python


def test_dockerfile_installs_the_lock_then_the_package():
    runs = [arg for instruction, arg in dockerfile_instructions() if instruction == "RUN"]
    lock_install = next(i for i, run in enumerate(runs) if "-r /opt/airflow/requirements.txt" in run)
    assert '"apache-airflow==${AIRFLOW_VERSION}"' in runs[lock_install]
    package_install = next(i for i, run in enumerate(runs) if "/opt/airflow/src/leadboxer-pipedrive" in run)
    assert package_install > lock_install
    assert "-c /opt/airflow/requirements.txt" in runs[package_install]


def test_dockerfile_copies_only_what_the_context_has():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    copies = [arg for instruction, arg in dockerfile_instructions() if instruction == "COPY"]
    sources = [src for arg in copies for src in arg.split()[:-1] if not src.startswith("--")]
    assert {"requirements.txt", "pyproject.toml", "README.md", "include/sql", "plugins/leadboxer_pipedrive",
            "dags"} <= set(sources)
    for source in sources:
        assert (ROOT / source).exists(), source
        assert source.split("/")[0] not in ignored, source
    assert {".env", ".venv", ".git"} <= ignored
