"""Loader tests: a Pipedrive sandbox, a ledger (SQLite, and PostgreSQL where one answers), and
activity frames built by the real frames/transforms from hand-written LeadBoxer records."""

from __future__ import annotations

import json
import uuid

import pytest


@pytest.fixture
def pipedrive_sandbox():
    from sandbox.pipedrive import PipedriveSandbox

    with PipedriveSandbox() as sandbox:
        yield sandbox


@pytest.fixture
def pipedrive_conn(pipedrive_sandbox, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_PIPEDRIVE_LOADER_TEST", json.dumps({
        "conn_type": "pipedrive", "host": pipedrive_sandbox.url, "password": "sandbox-token",
        "extra": {"burst_limit": 100}}))
    return "pipedrive_loader_test"


def _postgres_conn():
    psycopg2 = pytest.importorskip("psycopg2")
    try:
        admin = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres", connect_timeout=3)
    except psycopg2.OperationalError:
        pytest.skip("no PostgreSQL on 127.0.0.1:5432")
    admin.autocommit = True
    name = f"lbpd_test_{uuid.uuid4().hex[:8]}"
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name}")

    def drop():
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE {name} WITH (FORCE)")
        admin.close()
    return {"conn_type": "postgres", "host": "127.0.0.1", "port": 5432, "login": "postgres", "schema": name}, drop


@pytest.fixture(params=["sqlite"])
def ledger_conn(request, tmp_path, monkeypatch):
    """The ledger's connection id; parametrize indirectly with "postgres" for the PostgreSQL variant."""
    drop = None
    if request.param == "postgres":
        conn, drop = _postgres_conn()
    else:
        conn = {"conn_type": "sqlite", "host": str(tmp_path / "ledger.sqlite")}
    monkeypatch.setenv("AIRFLOW_CONN_LEDGER_LOADER_TEST", json.dumps(conn))
    yield "ledger_loader_test"
    if drop:
        drop()
