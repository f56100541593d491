"""Test-wide setup. Airflow reads its configuration at import, so the environment is set here,
before any test module imports Airflow: a throw-away AIRFLOW_HOME, our dags and plugins folders, no
examples, and quiet great-expectations."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_HOME = Path(tempfile.mkdtemp(prefix="lbpd-airflow-"))
os.environ.update({
    "AIRFLOW_HOME": str(_HOME),
    "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
    "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
    "GX_ANALYTICS_ENABLED": "false",
    "LEADBOXER_PIPEDRIVE_STAGING_URL": f"file://{_HOME / 'staging'}",
})
for name in list(os.environ):
    if name.startswith("AIRFLOW_CONN_"):  # never let a developer's real connections into tests
        del os.environ[name]


# Sandboxes with their default settings, in threads of the test process (a folder's conftest may
# override them, e.g. with other credentials).
@pytest.fixture
def pipedrive_sandbox():
    from sandbox.pipedrive import PipedriveSandbox

    with PipedriveSandbox() as sandbox:
        yield sandbox


@pytest.fixture
def leadboxer_sandbox():
    from sandbox.leadboxer import LeadBoxerSandbox

    with LeadBoxerSandbox() as sandbox:
        yield sandbox


@pytest.fixture
def airflow_home(tmp_path):
    """AIRFLOW_HOME of the tests that run Airflow components as processes."""
    home = tmp_path / "airflow"
    home.mkdir()
    return home
