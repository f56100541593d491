"""The ledger on SQLite always, and on PostgreSQL where a server answers on 127.0.0.1:5432."""

import json

import pytest

from leadboxer_pipedrive.hooks.ledger import LedgerHook
from tests.support.ledgers import ledger_connection


@pytest.fixture(params=["sqlite", "postgres"])
def ledger(request, tmp_path, monkeypatch):
    with ledger_connection(request.param, tmp_path) as conn:
        monkeypatch.setenv("AIRFLOW_CONN_TEST_LEDGER", json.dumps(conn))
        hook = LedgerHook("test_ledger")
        yield hook
        hook.get_conn().dispose()


def test_person_mapping_round_trips_and_upserts(ledger):
    ledger.remember_person("jane@acme.com", 11, None)
    ledger.remember_person("jane@acme.com", 11, 5)
    ledger.remember_person("joe@acme.com", 12, 5)
    assert ledger.persons_by_email(["jane@acme.com", "nobody@x.io"]) == {
        "jane@acme.com": {"email": "jane@acme.com", "person_id": 11, "org_id": 5}}


def test_pushed_events_are_found_in_large_batches(ledger):
    for index in range(3):
        ledger.record_pushed_event(dataset_id="ds", event_id=f"e{index}", use_id="u", activity_id=100 + index,
                                   person_id=1, org_id=None, deal_id=None, event_time=None, run_id="r1")
    asked = [f"e{index}" for index in range(2500)]  # more than one IN-chunk
    assert ledger.pushed_event_ids("ds", asked) == {"e0", "e1", "e2"}
    assert ledger.pushed_event_ids("other-dataset", asked) == set()


def test_recording_an_event_twice_keeps_the_first_activity(ledger):
    for activity_id in (1, 2):
        ledger.record_pushed_event(dataset_id="ds", event_id="e", use_id="u", activity_id=activity_id,
                                   person_id=1, org_id=None, deal_id=None, event_time=None, run_id="r")
    rows = ledger.fetch_in("pushed_event_ids", "event_ids", ["e"], dataset_id="ds")
    assert len(rows) == 1


def test_rejections_and_runs_are_kept(ledger):
    ledger.record_rejections([
        {"dag_id": "d", "run_id": "r", "entity": "event", "record_id": "e1", "use_id": "u", "outcome": "invalid",
         "reason": "bad", "record": None},
        {"dag_id": "d", "run_id": "r", "entity": "event", "record_id": "e1", "use_id": "u", "outcome": "invalid",
         "reason": "bad", "record": None},
    ])
    assert ledger.rejected_rows("d", "r") == [
        {"entity": "event", "record_id": "e1", "use_id": "u", "outcome": "invalid", "reason": "bad"}]
    ledger.record_run(dag_id="d", run_id="r", interval_start="a", interval_end="b", extracted=3, pushed=2,
                      already_pushed=0, rejected=1, tokens_spent=10, rate_limited=0, summary="{}")
    assert ledger.recent_runs()[0]["pushed"] == 2


def test_missing_connection_falls_back_to_a_sqlite_file_in_airflow_home(monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    hook = LedgerHook("no_such_connection_defined")
    hook.remember_organization("domain:acme.com", 3, "Acme")
    assert (tmp_path / LedgerHook.default_sqlite_name).exists()
    assert hook.organizations_by_key(["domain:acme.com"])["domain:acme.com"]["org_id"] == 3


@pytest.mark.parametrize("conn", [
    {"conn_type": "mysql", "host": "db.example.com"},  # a type whose provider is not installed
    {"conn_type": "http", "host": "https://example.com"},  # a hook that is not a SQL database's
])
def test_a_ledger_connection_of_another_type_fails_naming_the_supported_ones(conn, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_OTHER_LEDGER", json.dumps(conn))
    with pytest.raises(ValueError, match=rf"ledger connection 'other_ledger': conn_type '{conn['conn_type']}' is not "
                                         r"supported \(use sqlite or postgres\)"):
        LedgerHook("other_ledger").get_conn()


def test_the_engine_comes_from_the_connections_own_hook(monkeypatch, tmp_path):
    from airflow.providers.sqlite.hooks.sqlite import SqliteHook

    made = []
    original = SqliteHook.get_uri
    monkeypatch.setattr(SqliteHook, "get_uri", lambda self: made.append(self) or original(self))
    monkeypatch.setenv("AIRFLOW_CONN_FILE_LEDGER", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "l.db")}))
    hook = LedgerHook("file_ledger")
    hook.remember_person("jane@acme.com", 11, None)
    assert made and (tmp_path / "l.db").exists()
    hook.get_conn().dispose()


def test_record_fields_round_trip_and_upsert(ledger):
    ledger.remember_record_fields([
        {"entity": "person", "record_id": 7, "field_key": "name", "value": '"Jane"', "outcome": "written"},
        {"entity": "person", "record_id": 7, "field_key": "phones", "value": "[]", "outcome": "kept"},
        {"entity": "organization", "record_id": 7, "field_key": "website", "value": '"x"', "outcome": "kept"}])
    ledger.remember_record_fields([
        {"entity": "person", "record_id": 7, "field_key": "name", "value": '"Jane Doe"', "outcome": "written"}])
    fields = ledger.record_fields("person", [7, 8])
    assert set(fields) == {7} and set(fields[7]) == {"name", "phones"}
    assert (fields[7]["name"]["value"], fields[7]["name"]["outcome"]) == ('"Jane Doe"', "written")
    assert ledger.record_fields("organization", [7])[7]["website"]["outcome"] == "kept"


# -- what the dashboard reads and writes ------------------------------------------------------------------
def rejection(run_id, record_id, reason, entity="event", email=None, outcome="invalid"):
    return {"dag_id": "d", "run_id": run_id, "entity": entity, "record_id": record_id, "use_id": "u",
            "email": email, "outcome": outcome, "reason": reason, "record": None}


def test_rejected_rows_of_a_dag_filter_by_run_reason_entity_and_email(ledger):
    ledger.record_rejections([rejection("r1", "e1", "no email"), rejection("r1", "e2", "bad time", email=" Jo@X.io"),
                              rejection("r2", "e3", "bad time", email="jo@x.io"),
                              rejection("r2", "u9", "lead id missing", entity="lead")])
    ledger.record_rejections([{**rejection("r1", "e1", "other"), "dag_id": "another dag"}])
    assert ledger.rejected_rows_of_dag("d")[0] == 4
    assert ledger.rejected_rows_of_dag("d", run_id="r1")[0] == 2
    assert ledger.rejected_rows_of_dag("d", reason="bad time")[0] == 2
    assert ledger.rejected_rows_of_dag("d", entity="lead")[0] == 1
    matching, rows = ledger.rejected_rows_of_dag("d", email="jo@x.io", run_id="r2")
    assert matching == 1 and [(r["record_id"], r["email"]) for r in rows] == [("e3", "jo@x.io")]
    assert ledger.rejected_rows_of_dag("d", email="jo@x.io")[0] == 2  # kept lower-case and trimmed
    matching, page = ledger.rejected_rows_of_dag("d", limit=3, offset=3)
    assert matching == 4 and len(page) == 1
    assert {(k["entity"], k["reason"]): k["row_count"] for k in ledger.rejection_kinds("d")} == {
        ("event", "no email"): 1, ("event", "bad time"): 2, ("lead", "lead id missing"): 1}


def test_redrive_puts_quarantined_rows_back_and_records_who_and_when(ledger):
    ledger.queue_retries([
        {"dataset_id": "ds", "entity": "event", "record_id": "e1", "payload": "{}", "attempts": 3,
         "last_error": "refused", "status": "quarantined"},
        {"dataset_id": "ds", "entity": "event", "record_id": "e2", "payload": "{}", "attempts": 1,
         "last_error": "refused", "status": "pending"}])
    keys = [{"dataset_id": "ds", "entity": "event", "record_id": record_id} for record_id in ("e1", "e2", "e3")]
    assert ledger.redrive(keys, "d", "eddie") == 1  # only the quarantined row
    assert [r["record_id"] for r in ledger.retries("ds", "event")] == ["e1", "e2"]
    (recorded,) = ledger.redrives("d")
    assert (recorded["record_id"], recorded["redriven_by"], recorded["attempts"], recorded["last_error"]) == (
        "e1", "eddie", 3, "refused")
    assert ledger.redrive(keys, "d", "eddie") == 0 and len(ledger.redrives("d")) == 1
    assert {(r["record_id"], r["status"]) for r in ledger.retries_of(["ds"], ["event", "lead"])} == {
        ("e1", "pending"), ("e2", "pending")}
    assert ledger.retries_of(["other"], ["event"]) == [] and ledger.retries_of([], ["event"]) == []


def test_tokens_are_summed_by_day(ledger):
    for run_id, tokens in (("r1", 10), ("r2", 32)):
        ledger.record_run(dag_id="d", run_id=run_id, interval_start=None, interval_end=None, extracted=0, pushed=0,
                          already_pushed=0, rejected=0, tokens_spent=tokens, rate_limited=0, summary="{}")
    from datetime import datetime, timezone

    today = datetime.now(timezone.utc).date().isoformat()
    assert ledger.tokens_by_day(today) == {today: 42}


def test_a_ledger_from_before_the_email_column_gets_it(tmp_path, monkeypatch):
    import sqlite3

    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE lbpd_rejected_row (dag_id TEXT NOT NULL, run_id TEXT NOT NULL, "
                   "entity TEXT NOT NULL, record_id TEXT NOT NULL, use_id TEXT, "
                   "outcome TEXT NOT NULL DEFAULT 'invalid', reason TEXT NOT NULL, record TEXT, "
                   "rejected_at TEXT NOT NULL, PRIMARY KEY (dag_id, run_id, entity, record_id, reason))")
        db.execute("INSERT INTO lbpd_rejected_row VALUES ('d', 'r0', 'event', 'e0', 'u', 'invalid', 'old', NULL, "
                   "'2026-01-01T00:00:00+00:00')")
    monkeypatch.setenv("AIRFLOW_CONN_OLD_LEDGER", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    hook = LedgerHook("old_ledger")
    hook.record_rejections([rejection("r1", "e1", "new", email="a@b.io")])
    assert [(r["record_id"], r["email"]) for r in hook.rejected_rows_of_dag("d")[1]] == [("e1", "a@b.io"), ("e0", None)]
    hook.get_conn().dispose()


def test_the_account_index_answers_the_lowest_id_and_replaces_what_a_record_held(ledger):
    ledger.index_records("person", [7, 3], [{"index_key": "ann@x.io", "record_id": 7, "org_id": 1},
                                            {"index_key": "ann@home.io", "record_id": 7, "org_id": 1},
                                            {"index_key": "ann@x.io", "record_id": 3, "org_id": None}])
    assert ledger.indexed("person", ["ann@x.io", "ann@home.io", "nobody@x.io"]) == {
        "ann@x.io": {"index_key": "ann@x.io", "record_id": 3, "org_id": None},
        "ann@home.io": {"index_key": "ann@home.io", "record_id": 7, "org_id": 1}}
    ledger.index_records("person", [3], [{"index_key": "other@x.io", "record_id": 3, "org_id": 2}])  # changed
    assert ledger.indexed("person", ["ann@x.io"])["ann@x.io"]["record_id"] == 7
    ledger.unindex("person", 7)  # deleted or merged
    assert ledger.indexed("person", ["ann@x.io", "ann@home.io"]) == {}
    ledger.index_records("organization", [5], [{"index_key": "name:acme", "record_id": 5},
                                               {"index_key": "domain:abc:acme.com", "record_id": 5}])
    assert set(ledger.indexed("organization", ["name:acme", "domain:abc:acme.com"])) == {
        "name:acme", "domain:abc:acme.com"}
