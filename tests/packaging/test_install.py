"""Build the wheel, install it into a fresh virtual environment, and use it there as Airflow would.

The fresh environment has no pip and none of the repository on its path (cwd is a temporary folder,
PYTHONPATH unset, Airflow's dags and plugins folders empty): only the installed wheel provides
``leadboxer_pipedrive``. uv installs it with the pinned lock (requirements.txt), from uv's cache that
``make setup`` filled (a second or two; the package index only for what the cache lacks), so the
environment is a user's and not the project's ``.venv``, where the package is installed editable. About
20 s, most of it ``airflow db migrate``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
UV = Path(sys.executable).with_name("uv")  # installed by make setup


@dataclass
class Installed:
    wheel: Path
    python: Path
    site_packages: Path
    env: dict[str, str]
    cwd: Path

    def run(self, *args: str, env: dict[str, str] | None = None, check: bool = True,
            timeout: float = 180) -> subprocess.CompletedProcess:
        result = subprocess.run([str(self.python), *args], cwd=self.cwd, env={**self.env, **(env or {})},
                                capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            pytest.fail(f"{args} exited {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}")
        return result

    def airflow(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return self.run("-m", "airflow", *args, **kwargs)


def _build_wheel(out_dir: Path) -> Path:
    command = [str(UV), "build", "--wheel", "--out-dir", str(out_dir), str(ROOT)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"building the wheel failed:\n{result.stdout}\n{result.stderr}"
    (wheel,) = out_dir.glob("leadboxer_pipedrive-*.whl")
    return wheel


def _install_wheel(wheel: Path, python: Path) -> None:
    command = [str(UV), "pip", "install", "--python", str(python), "-r", str(ROOT / "requirements.txt"), str(wheel)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"installing the wheel failed:\n{result.stdout}\n{result.stderr}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installed:
    base = tmp_path_factory.mktemp("lbpd-install")
    wheel = _build_wheel(base / "dist")

    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site_packages = Path(subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True).stdout.strip())
    _install_wheel(wheel, python)

    home, empty, cwd = base / "airflow-home", base / "empty", base / "cwd"
    for folder in (home, empty, cwd):
        folder.mkdir()
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("AIRFLOW", "LEADBOXER_PIPEDRIVE_", "PYTHON", "VIRTUAL_ENV"))}
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(empty),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(empty),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "GX_ANALYTICS_ENABLED": "false",
    })
    return Installed(wheel=wheel, python=python, site_packages=site_packages, env=env, cwd=cwd)


@pytest.fixture(scope="module")
def migrated(installed) -> Installed:
    installed.airflow("db", "migrate")
    return installed


def _last_json(output: str):
    """The JSON document at the end of a command's output (log lines may come first)."""
    lines = output.strip().splitlines()
    for start in range(len(lines)):
        if lines[start].lstrip().startswith(("[", "{")):
            try:
                return json.loads("\n".join(lines[start:]))
            except ValueError:
                continue
    raise AssertionError(f"no JSON in:\n{output}")


def test_wheel_carries_the_sql_and_the_entry_point(installed):
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
        entry_points = next(wheel.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt"))
    for sql_file in sorted((ROOT / "include" / "sql").glob("*.sql")):
        assert f"leadboxer_pipedrive/include/sql/{sql_file.name}" in names
    assert "leadboxer_pipedrive/get_provider_info.py" in names
    assert "[apache_airflow_provider]" in entry_points
    assert "provider_info = leadboxer_pipedrive.get_provider_info:get_provider_info" in entry_points
    assert "[airflow.plugins]" in entry_points
    assert "leadboxer_pipedrive = leadboxer_pipedrive.plugin:LeadBoxerPipedrivePlugin" in entry_points
    assert not any(name.startswith(("tests/", "sandbox/", "dags/", "scripts/")) for name in names)


def test_package_comes_from_the_wheel_and_finds_its_sql(installed):
    script = textwrap.dedent("""
        import json, sys
        from importlib.metadata import distribution, version
        from packaging.requirements import Requirement
        import leadboxer_pipedrive, leadboxer_pipedrive.sql as s
        unmet = []
        for text in distribution("leadboxer-pipedrive").requires or []:
            req = Requirement(text)
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue
            if not req.specifier.contains(version(req.name), prereleases=True):
                unmet.append(f"{req} (installed {version(req.name)})")
        print(json.dumps({"package": leadboxer_pipedrive.__file__, "sql_dir": str(s.sql_dir()),
                          "statements": len(s.load_script("ledger_schema.sql")),
                          "queries": sorted(s.load_named_queries("ledger_queries.sql")),
                          "unmet": unmet, "path": sys.path}))
    """)
    result = _last_json(installed.run("-c", script).stdout)
    site = str(installed.site_packages.resolve())
    assert result["package"].startswith(site), result
    assert result["sql_dir"] == str(installed.site_packages.resolve() / "leadboxer_pipedrive" / "include" / "sql")
    assert (Path(result["sql_dir"]) / "ledger_schema.sql").is_file()
    assert result["statements"] > 0 and result["queries"]
    assert {str(ROOT), str(ROOT / "plugins")}.isdisjoint(result["path"]), result["path"]
    assert result["unmet"] == [], "the declared dependency ranges reject the installed lock"


def test_airflow_lists_the_provider(installed):
    providers = _last_json(installed.airflow("providers", "list", "--output", "json").stdout)
    ours = [p for p in providers if p["package_name"] == "leadboxer-pipedrive"]
    assert ours, [p["package_name"] for p in providers]
    assert ours[0]["version"] == "0.1.0"
    installed.airflow("providers", "get", "leadboxer-pipedrive")
    hooks = _last_json(installed.airflow("providers", "hooks", "--output", "json").stdout)
    by_type = {hook["connection_type"]: hook for hook in hooks}
    assert by_type["pipedrive"]["class"] == "leadboxer_pipedrive.hooks.pipedrive.PipedriveHook"
    assert by_type["leadboxer"]["class"] == "leadboxer_pipedrive.hooks.leadboxer.LeadBoxerHook"
    assert by_type["pipedrive"]["package_name"] == "leadboxer-pipedrive"


def test_airflow_loads_the_plugin_once_without_import_errors(installed):
    """From the entry point; the repository's plugins folder (plugins/.airflowignore) does not register it again."""
    plugins = _last_json(installed.airflow("plugins", "--output", "json").stdout)
    ours = [p for p in plugins if p["name"] == "leadboxer_pipedrive"]
    assert len(ours) == 1, plugins
    assert "/leadboxer-pipedrive" in json.dumps(ours[0]["fastapi_apps"])


def test_cli_creates_a_pipedrive_connection(migrated):
    added = migrated.airflow("connections", "add", "pipedrive_x", "--conn-type", "pipedrive",
                             "--conn-host", "https://x.pipedrive.com", "--conn-password", "t")
    # An unknown type is replaced by "generic" with a warning: the type must be known.
    assert "invalid" not in (added.stdout + added.stderr).lower()
    (conn,) = _last_json(migrated.airflow("connections", "get", "pipedrive_x", "--output", "json").stdout)
    assert conn["conn_type"] == "pipedrive"
    assert conn["host"] == "https://x.pipedrive.com"


def test_ui_metadata_and_hooks_resolve_in_the_installed_airflow(migrated, tmp_path):
    """What the connection form receives, get_hook(), and the ledger schema from the packaged SQL."""
    script = textwrap.dedent("""
        import json
        from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService
        from airflow.models.connection import Connection
        from sqlalchemy import inspect
        from leadboxer_pipedrive.hooks.ledger import LedgerHook

        meta = {m.connection_type: m.model_dump(mode="json") for m in HookMetaService.hook_meta_data()}
        hook = Connection(conn_id="pipedrive_y", conn_type="pipedrive", host="https://y.pipedrive.com",
                          password="t").get_hook()
        ledger = LedgerHook()
        ledger.ensure_schema()
        print(json.dumps({"meta": {k: meta[k] for k in ("pipedrive", "leadboxer")},
                          "hook": type(hook).__module__ + "." + type(hook).__name__,
                          "tables": sorted(inspect(ledger.get_conn()).get_table_names())}))
    """)
    ledger_conn = json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "ledger.sqlite")})
    result = _last_json(migrated.run("-c", script, env={"AIRFLOW_CONN_LEADBOXER_PIPEDRIVE_LEDGER": ledger_conn}
                                     ).stdout)
    pipedrive = result["meta"]["pipedrive"]
    assert pipedrive["standard_fields"]["password"]["title"] == "API token (or OAuth client secret)"
    assert pipedrive["standard_fields"]["login"]["hidden"] is True
    assert pipedrive["extra_fields"]["burst_limit"]["schema"]["type"] == "integer"
    assert pipedrive["extra_fields"]["burst_limit"]["value"] == 20
    leadboxer = result["meta"]["leadboxer"]
    assert leadboxer["standard_fields"]["password"]["title"] == "API key"
    assert set(leadboxer["extra_fields"]) == {"page_size", "max_concurrency", "requests_per_second", "dataset_id",
                                              "timeout", "verify"}
    assert result["hook"] == "leadboxer_pipedrive.hooks.pipedrive.PipedriveHook"
    assert "lbpd_person" in result["tables"]

