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
