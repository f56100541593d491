"""Fixtures for DAG integration tests: a migrated Airflow database and the connections pointing at the
sandboxes (tests/conftest.py). Each test gets fresh sandboxes and a fresh ledger."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def airflow_db():
    """``airflow db migrate`` once per session, in the AIRFLOW_HOME set by tests/conftest.py."""
    airflow = Path(sys.executable).parent / "airflow"
    done = subprocess.run([str(airflow), "db", "migrate"], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": f"{ROOT / 'plugins'}:{ROOT}"})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


@pytest.fixture
def connections(pipedrive_sandbox, leadboxer_sandbox, tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_PIPEDRIVE_DEFAULT", json.dumps({
        "conn_type": "pipedrive", "host": pipedrive_sandbox.url, "password": "sandbox-token",
        "extra": {"burst_limit": 100}}))
    monkeypatch.setenv("AIRFLOW_CONN_LEADBOXER_DEFAULT", json.dumps({
        "conn_type": "leadboxer", "host": leadboxer_sandbox.url, "password": "sandbox-key"}))
    ledger_path = tmp_path / "ledger.sqlite"
    monkeypatch.setenv("AIRFLOW_CONN_LEADBOXER_PIPEDRIVE_LEDGER",
                       json.dumps({"conn_type": "sqlite", "host": str(ledger_path)}))
    monkeypatch.setenv("LEADBOXER_PIPEDRIVE_STAGING_URL", f"file://{tmp_path / 'staging'}")
    return ledger_path


@pytest.fixture(scope="session")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert not bag.import_errors, bag.import_errors
    return bag


def hour(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


@pytest.fixture
def run_dag(airflow_db, connections, dagbag):
    """Run a DAG for the interval ending at ``logical_date`` (a manual run's date is its interval's end).

    Each run parses the DAG afresh: dag.test() renders templates into the operator objects in place, so
    a reused DAG object would carry one run's rendered Params into the next (a real worker parses anew).
    """
    from airflow.dag_processing.dagbag import DagBag

    def run(dag_id: str, logical_date: str, conf: dict | None = None):
        dag = DagBag(dag_folder=str(ROOT / "dags")).get_dag(dag_id)
        for task in dag.tasks:  # keep Airflow's retries, without their production waits
            task.retry_delay = timedelta(seconds=1)
            task.max_retry_delay = timedelta(seconds=2)
        return dag.test(logical_date=hour(logical_date), run_conf=conf or {})
    return run
