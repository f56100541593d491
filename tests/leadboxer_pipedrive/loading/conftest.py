"""Loader tests: a Pipedrive sandbox, a ledger (SQLite, and PostgreSQL where one answers), and
activity frames built by the real frames/transforms from hand-written LeadBoxer records."""

from __future__ import annotations

import json

import pytest

from tests.support.ledgers import ledger_connection


@pytest.fixture
def pipedrive_conn(pipedrive_sandbox, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_PIPEDRIVE_LOADER_TEST", json.dumps({
        "conn_type": "pipedrive", "host": pipedrive_sandbox.url, "password": "sandbox-token",
        "extra": {"burst_limit": 100}}))
    return "pipedrive_loader_test"


@pytest.fixture(params=["sqlite"])
def ledger_conn(request, tmp_path, monkeypatch):
    """The ledger's connection id; parametrize indirectly with "postgres" for the PostgreSQL variant."""
    with ledger_connection(request.param, tmp_path) as conn:
        monkeypatch.setenv("AIRFLOW_CONN_LEDGER_LOADER_TEST", json.dumps(conn))
        yield "ledger_loader_test"
