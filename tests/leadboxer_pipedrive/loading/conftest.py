"""Loader tests: a Pipedrive sandbox, a ledger (SQLite, and PostgreSQL where one answers), and
activity frames built by the real frames/transforms from hand-written LeadBoxer records."""

from __future__ import annotations

import json
import uuid

import pytest

from leadboxer_pipedrive.frames import events_frame, leads_frame
from leadboxer_pipedrive.transforms import activity_payloads

START = 1_795_150_800_000  # 2026-11-20T05:00Z


def activity_frame(leads: list[dict], events_per_lead: int = 2, prefix: str = "e"):
    """``leads``: LeadBoxer lead records (use_id, email, organizationName...); events are generated."""
    records = [{"segments": [1], **lead} for lead in leads]
    events = [{"event_id": f"{prefix}-{lead['use_id']}-{n}", "_lead_id": lead["use_id"],
               "eventUnixTimestamp": str(START + 60_000 * (n + 1)), "event_type": "pageview",
               "title": f"Page {n}", "original_url": f"https://example.com/p{n}"}
              for lead in records for n in range(events_per_lead)]
    frame = leads_frame(records, 1)
    return activity_payloads(events_frame(events, frame, "ds"), "task")


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
