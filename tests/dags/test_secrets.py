"""Neither the Pipedrive token nor the LeadBoxer key appears in task logs, XCom, rendered template fields,
exception messages, staged frames or the ledger.

Both sandboxes run with distinctive credentials; both DAGs run for real (a successful run with
transient 500s and a dropped connection so the hooks log their retries, the leads sync, and an activity
run whose Pipedrive token is wrong, so Pipedrive answers 401 and the run fails). Afterwards every place
a secret could leak is searched: stdout/stderr, log records, every file under AIRFLOW_HOME, every table
of the metadata database (xcom and rendered_task_instance_fields checked to be non-empty), the staged
Parquet files and the ledger.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

PD_TOKEN = "pd-SECRET-4f8a1c9e7b2d6a30"
PD_WRONG_TOKEN = "pd-SECRET-wrong-77e1b0c4d9"
LB_KEY = "lb-SECRET-9d3e5a7c1f08b2e4"
SECRETS = (PD_TOKEN, PD_WRONG_TOKEN, LB_KEY)
SITE = "secrets-test-dataset"
HOUR_5 = 1_795_150_800_000  # 2026-11-20T05:00Z
RUN_END = datetime(2026, 11, 20, 6, tzinfo=timezone.utc)
ACTIVITIES, LEADS = "leadboxer_pipedrive_activities", "leadboxer_pipedrive_leads"


def dataset() -> dict:
    leads = []
    for n, (email, org) in enumerate([("ann@acme.example", "Acme BV"), ("bob@globex.example", "Globex"),
                                      ("cy@initech.example", None)]):
        at = HOUR_5 + (n + 1) * 600_000
        use_id, sid = f"secret-lead-{n}", f"secret-session-{n}"
        lead = {"use_id": use_id, "email": email, "fullName": email.split("@")[0].title(), "esScore": "60",
                "segments": [1], "lastEvent": at, "eventEsTimestamp": str(at),
                "leadcard_url": f"https://app.leadboxer.com/?q={use_id}",
                "sessions": [{"session_id": sid, "use_id": use_id, "session_unix_timestamp": str(at),
                              "duration": "120", "events": [
                                  {"event_id": f"secret-ev-{n}-{k}", "session_id": sid, "use_id": use_id,
                                   "eventUnixTimestamp": str(at + k * 1000), "event_type": "pageview",
                                   "title": f"Page {k}", "original_url": f"https://example.com/{k}"}
                                  for k in range(2)]}]}
        if org:
            lead["organizationName"] = org
        leads.append(lead)
    return {"site": SITE, "segments": [{"segmentId": 1, "name": "Secrets", "datasetId": SITE}], "leads": leads}


@pytest.fixture
def sandboxes():
    from sandbox.leadboxer import LeadBoxerSandbox
    from sandbox.pipedrive import PipedriveSandbox

    with PipedriveSandbox(token=PD_TOKEN, search_burst_limit=100) as pipedrive, \
            LeadBoxerSandbox(dataset(), api_key=LB_KEY) as leadboxer:
        yield pipedrive, leadboxer


@pytest.fixture
def secret_connections(sandboxes, tmp_path, monkeypatch):
    pipedrive, leadboxer = sandboxes

    def use_pipedrive_token(token: str) -> None:
        monkeypatch.setenv("AIRFLOW_CONN_PIPEDRIVE_DEFAULT", json.dumps({
            "conn_type": "pipedrive", "host": pipedrive.url, "password": token,
            "extra": {"burst_limit": 100, "search_burst_limit": 100}}))

    use_pipedrive_token(PD_TOKEN)
    monkeypatch.setenv("AIRFLOW_CONN_LEADBOXER_DEFAULT", json.dumps({
        "conn_type": "leadboxer", "host": leadboxer.url, "password": LB_KEY}))
    monkeypatch.setenv("AIRFLOW_CONN_LEADBOXER_PIPEDRIVE_LEDGER",
                       json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "ledger.sqlite")}))
    monkeypatch.setenv("LEADBOXER_PIPEDRIVE_STAGING_URL", f"file://{tmp_path / 'staging'}")
    return use_pipedrive_token


# -- fast checks on the hooks ---------------------------------------------------------------------------
def test_tls_verification_is_on_by_default(secret_connections):
    from leadboxer_pipedrive.hooks.leadboxer import LeadBoxerHook
    from leadboxer_pipedrive.hooks.pipedrive import PipedriveHook

    for hook in (PipedriveHook(), LeadBoxerHook()):
        assert hook.get_conn().verify is True
        hook.close()


def test_hook_errors_never_carry_the_secret(secret_connections, sandboxes):
    import traceback

    from leadboxer_pipedrive.exceptions import ApiError
    from leadboxer_pipedrive.hooks.leadboxer import LeadBoxerHook
    from leadboxer_pipedrive.hooks.pipedrive import PipedriveHook

    pipedrive, leadboxer = sandboxes
    secret_connections(PD_WRONG_TOKEN)
    failures = []
    with pytest.raises(ApiError) as unauthorized:
        PipedriveHook().get_current_user()
    failures.append(unauthorized)
    secret_connections(PD_TOKEN)
    pipedrive.add_fault({"kind": "drop"})
    leadboxer.add_fault({"kind": "drop"})
    for hook, call in ((PipedriveHook(max_attempts=2), lambda h: h.get_current_user()),
                       (LeadBoxerHook(max_attempts=2), lambda h: h.list_segments(SITE))):
        hook.backoff_base = 0.01
        with pytest.raises(ApiError) as dropped:
            call(hook)
        failures.append(dropped)
    for info in failures:
        text = "".join(traceback.format_exception(info.value)) + repr(info.value) + repr(vars(info.value))
        assert not [s for s in SECRETS if s in text], text


# -- the DAG runs ---------------------------------------------------------------------------------------
def _airflow_home() -> Path:
    return Path(os.environ["AIRFLOW_HOME"])


def _files_with(root: Path, needles: tuple[str, ...]) -> dict[str, list[str]]:
    hits: dict[str, list[str]] = {}
    for path in root.rglob("*"):
        if path.is_file():
            try:
                content = path.read_bytes()
            except OSError:
                continue
            found = [n for n in needles if n.encode() in content]
            if found:
                hits[str(path)] = found
    return hits


def _sqlite_tables_with(path: Path, needles: tuple[str, ...]) -> tuple[dict[str, int], dict[str, list[str]]]:
    """(rows per table, table -> secrets found in any of its values)."""
    counts, hits = {}, {}
    with sqlite3.connect(path) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            rows = db.execute(f'SELECT * FROM "{table}"').fetchall()
            counts[table] = len(rows)
            text = "\n".join(repr(row) for row in rows)
            found = [n for n in needles if n in text]
            if found:
                hits[table] = found
    return counts, hits


def _run(dagbag, dag_id: str, conf: dict):
    return dagbag.get_dag(dag_id).test(logical_date=RUN_END, run_conf=conf)


def test_no_secret_in_logs_xcom_rendered_fields_staging_or_ledger(
        airflow_db, dagbag, sandboxes, secret_connections, tmp_path, capfd, caplog, monkeypatch):
    import pandas as pd

    pipedrive, leadboxer = sandboxes
    caplog.set_level(logging.DEBUG)  # every record, whatever its level, is searched
    caplog.set_level(logging.INFO, logger="great_expectations")  # its DEBUG chatter holds no secrets, only noise
    conf = {"dataset_id": SITE, "segment_id": 1}

    # 1. a wrong Pipedrive token: 401, the run fails (Airflow retries off: they would only wait)
    for task in dagbag.get_dag(ACTIVITIES).tasks:
        monkeypatch.setattr(task, "retries", 0)
    secret_connections(PD_WRONG_TOKEN)
    failed = _run(dagbag, ACTIVITIES, {**conf, "pipeline_id": 2})
    assert failed.state == "failed"
    assert pipedrive.state()["counters"]["responses_by_status"].get("401", 0) >= 1
    assert pipedrive.state()["activities"] == []

    # 2. the right token, with transient faults on both sides: the hooks retry and log it
    secret_connections(PD_TOKEN)
    pipedrive.add_fault({"kind": "status", "status": 500, "count": 2, "path": "^/api/v2/persons$", "method": "GET"})
    leadboxer.add_fault({"kind": "status", "status": 500, "count": 1, "path": "^/v1/leads/sessions"})
    leadboxer.add_fault({"kind": "drop", "count": 1, "path": "^/v1/leads/events"})
    ok = _run(dagbag, ACTIVITIES, {**conf, "pipeline_id": 2})
    assert ok.state == "success"
    assert len(pipedrive.state()["activities"]) == 6
    assert pipedrive.state()["counters"]["responses_by_status"].get("500", 0) == 2

    # 3. the leads sync
    assert _run(dagbag, LEADS, {**conf, "link_to": "both"}).state == "success"
    assert len(pipedrive.state()["leads"]) == 3

    captured = capfd.readouterr()
    logged = caplog.text + "\n".join(str(r.__dict__) for r in caplog.records)
    home = _airflow_home()
    # the searches below must have looked at something real
    everything = captured.out + captured.err + logged
    log_files = "".join(p.read_text(errors="replace") for p in home.rglob("*.log") if p.is_file())
    assert "retrying" in (everything + log_files), "the hooks' retry warnings were not captured"
    assert "401" in (everything + log_files), "the 401 failure was not captured"

    leaks = {}
    for name, text in (("stdout", captured.out), ("stderr", captured.err), ("log records", logged)):
        found = [s for s in SECRETS if s in text]
        if found:
            leaks[name] = found
    leaks.update({f"file {k}": v for k, v in _files_with(home, SECRETS).items()})
    leaks.update({f"file {k}": v for k, v in _files_with(tmp_path, SECRETS).items()})  # staging, ledger

    metadata_db = home / "airflow.db"
    counts, hits = _sqlite_tables_with(metadata_db, SECRETS)
    assert counts.get("xcom", 0) > 0 and counts.get("rendered_task_instance_fields", 0) > 0, counts
    leaks.update({f"metadata table {t}": v for t, v in hits.items()})
    ledger_counts, ledger_hits = _sqlite_tables_with(tmp_path / "ledger.sqlite", SECRETS)
    assert ledger_counts["lbpd_pushed_event"] == 6 and ledger_counts["lbpd_run"] == 2
    leaks.update({f"ledger table {t}": v for t, v in ledger_hits.items()})

    staged = list((tmp_path / "staging").rglob("*.parquet"))
    assert staged
    for path in staged:
        text = pd.read_parquet(path).to_json()
        found = [s for s in SECRETS if s in text]
        if found:
            leaks[f"parquet {path}"] = found
    assert not leaks, leaks
