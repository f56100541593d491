"""The activity sync DAG, run for real with dag.test() against both sandboxes."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter

import pytest

from leadboxer_pipedrive.transforms import event_ids_in_note
from sandbox.leadboxer import synced_events

pytestmark = pytest.mark.integration

DAG_ID = "leadboxer_pipedrive_activities"


def ledger_runs(path):
    with sqlite3.connect(path) as db:
        return [json.loads(row[0]) for row in db.execute("SELECT summary FROM lbpd_run ORDER BY rowid")]


def pushed_events(path):
    with sqlite3.connect(path) as db:
        return dict(db.execute("SELECT event_id, activity_id FROM lbpd_pushed_event"))


def expected_valid_events(data, start_ms, end_ms):
    """From the sandbox's own dataset: event id → email of the events the window must push."""
    return {event["event_id"]: lead["email"].strip().lower()
            for lead, event in synced_events(data, start_ms, end_ms)}


def test_one_hour_lands_as_one_activity_per_valid_event(run_dag, pipedrive_sandbox, leadboxer_sandbox, connections):
    dag_run = run_dag(DAG_ID, "2026-11-20T06:00:00", {"pipeline_id": 2})
    assert dag_run.state == "success"
    start_ms, end_ms = 1795150800000, 1795154400000  # [05:00, 06:00)
    expected = expected_valid_events(leadboxer_sandbox.data, start_ms, end_ms)
    assert expected, "the generated hour should hold events"
    state = pipedrive_sandbox.state()
    activities = state["activities"]
    assert len(activities) == len(expected)
    pushed = pushed_events(connections)
    assert set(pushed) == set(expected)
    persons = {p["id"]: p for p in state["persons"]}
    email_of_person = {pid: {(e["value"] if isinstance(e, dict) else e).lower() for e in p["emails"]}
                       for pid, p in persons.items()}
    activity_by_id = {a["id"]: a for a in activities}
    for event_id, activity_id in pushed.items():
        activity = activity_by_id[activity_id]
        assert expected[event_id] in email_of_person[activity["person_id"]]
        assert event_id in event_ids_in_note(activity["note"])
        person = persons[activity["person_id"]]
        assert activity.get("org_id") == person.get("org_id")
        assert activity.get("deal_id") is not None
    emails = Counter(e for es in email_of_person.values() for e in es)
    assert all(count == 1 for count in emails.values())
    deals = state["deals"]
    assert all(d["pipeline_id"] == 2 for d in deals)
    assert len({d["person_id"] for d in deals}) == len(deals)

    summary = ledger_runs(connections)[-1]
    assert summary["extracted"] == summary["pushed"] + summary["already_pushed"] + summary["rejected"]
    assert summary["pushed"] == len(expected)


def test_the_same_hour_twice_creates_nothing_new(run_dag, pipedrive_sandbox, connections):
    run_dag(DAG_ID, "2026-11-20T06:00:00")
    before = pipedrive_sandbox.state()
    second = run_dag(DAG_ID, "2026-11-20T06:00:00")
    assert second.state == "success"
    after = pipedrive_sandbox.state()
    for entity in ("persons", "organizations", "deals", "activities"):
        assert len(after[entity]) == len(before[entity]), entity
    first_summary, second_summary = ledger_runs(connections)[-2:]
    assert second_summary["pushed"] == 0
    assert second_summary["already_pushed"] == first_summary["pushed"]
    assert second_summary["extracted"] == first_summary["extracted"]


@pytest.mark.parametrize("domain_field", [None, "Domain"])
def test_a_dry_run_changes_nothing_and_its_estimate_matches_the_real_spend(
        run_dag, pipedrive_sandbox, connections, domain_field):
    params = {"pipeline_id": 2, "organization_domain_field": domain_field}
    # The hour before, for real: the account index has been read once (a never-read index is priced at
    # its most, what searching would cost), as it has in every run but an installation's first.
    assert run_dag(DAG_ID, "2026-11-20T05:00:00", params).state == "success"
    earlier = pipedrive_sandbox.state()
    before = earlier["counters"]["tokens_spent"]
    dry = run_dag(DAG_ID, "2026-11-20T06:00:00", {**params, "dry_run": True})
    assert dry.state == "success"
    state = pipedrive_sandbox.state()
    for entity in ("persons", "organizations", "deals", "activities", "leads"):
        assert state[entity] == earlier[entity], entity
    plan_summary = ledger_runs(connections)[-1]
    assert plan_summary["dry_run"] is True
    plan = plan_summary["plan"]
    assert plan["would_create"]["activities"] == plan_summary["extracted"] - plan_summary["rejected"]
    assert plan["would_create"]["persons"] > 0 and plan["samples"]["activities"]
    # A dry run writes nothing, and reads nothing but the preflight's checks, which its summary counts.
    assert state["counters"]["tokens_spent"] - before == plan_summary["tokens_spent"] > 0
    assert list(plan_summary["tokens_spent_on"]) == ["preflight"]
    assert "on GET /api/v1/users/me (1 request)" in plan_summary["tokens_spent_on"]["preflight"]

    assert run_dag(DAG_ID, "2026-11-20T06:00:00", params).state == "success"
    real = ledger_runs(connections)[-1]
    preflight = real["preflight_tokens"]
    assert abs(real["tokens_spent"] - preflight - plan["estimated_tokens"]) <= 0.10 * real["tokens_spent"], (
        real["tokens_spent"], plan["estimated_tokens"], json.dumps(real)[:600])
    organizations = pipedrive_sandbox.state()["organizations"]
    assert organizations and all(bool(o["custom_fields"]) == bool(domain_field) for o in organizations)


SCORE_ON_DEALS = {"deal": {"lead_score": "LeadBoxer lead score"}}
MAPPED = {"deal": {"lead_score": "LeadBoxer lead score", "last_visit": "LeadBoxer last visit"},
          "person": {"first_channel": "LeadBoxer first channel", "lead_score": "LeadBoxer lead score"}}


def test_with_records_to_keep_current_the_dry_runs_estimate_is_the_real_spend(run_dag, pipedrive_sandbox,
                                                                               connections):
    first = run_dag(DAG_ID, "2026-11-20T11:00:00", {"pipeline_id": 2, "custom_fields": SCORE_ON_DEALS})
    assert first.state == "success"
    # The next hour, with more fields mapped: seven leads of [10:00, 11:00) come back, and their persons and
    # deals get the new fields; eight leads are new.
    params = {"pipeline_id": 2, "custom_fields": MAPPED}
    assert run_dag(DAG_ID, "2026-11-20T12:00:00", {**params, "dry_run": True}).state == "success"
    plan = ledger_runs(connections)[-1]["plan"]
    assert plan["would_update"]["deals"] > 0 and plan["would_update"]["persons"] > 0, plan
    assert run_dag(DAG_ID, "2026-11-20T12:00:00", params).state == "success"
    real = ledger_runs(connections)[-1]
    loaded = real["loaded"]
    assert loaded["deals_updated"] == plan["would_update"]["deals"]
    assert loaded["persons_updated"] == plan["would_update"]["persons"]
    assert real["tokens_spent"] - real["preflight_tokens"] == plan["estimated_tokens"], json.dumps(real)[:800]
    state = pipedrive_sandbox.state()
    last_visit = next(f["field_code"] for f in state["deal_fields"] if f["field_name"] == "LeadBoxer last visit")
    # The returning leads' deals got the new field, the new leads' deals were created with it.
    assert sum(deal["custom_fields"].get(last_visit) == "2026-11-20" for deal in state["deals"]) == (
        loaded["deals_updated"] + loaded["deals_created"])


def test_max_leads_limits_a_run_to_the_first_n_leads(run_dag, pipedrive_sandbox, connections):
    assert run_dag(DAG_ID, "2026-11-20T06:00:00", {"max_leads": 2}).state == "success"
    summary = ledger_runs(connections)[-1]
    assert summary["leads"] == 2
    assert len({a["person_id"] for a in pipedrive_sandbox.state()["activities"]}) <= 2


def test_an_hour_that_fails_after_its_retries_is_restored_by_clear_and_rerun(
        run_dag, pipedrive_sandbox, leadboxer_sandbox, connections, monkeypatch):
    """The documented choice: a failed hour stays failed (loudly: failure callback, red run) until it is
    cleared and re-run; the re-run pushes what is missing and nothing twice."""
    monkeypatch.setenv("AIRFLOW_CONN_PIPEDRIVE_DEFAULT", json.dumps({
        "conn_type": "pipedrive", "host": pipedrive_sandbox.url, "password": "sandbox-token",
        "extra": {"burst_limit": 100, "max_attempts": 2, "backoff_base": 0.05}}))
    # Pipedrive goes down after the first few creates of the hour, and stays down through every retry.
    pipedrive_sandbox.add_fault({"kind": "status", "status": 503, "after": 10, "path": "/api/v2/activities$"})
    failed = run_dag(DAG_ID, "2026-11-20T06:00:00", {"pipeline_id": 2})
    assert failed.state == "failed"
    partly = len(pipedrive_sandbox.state()["activities"])
    assert 0 < partly

    pipedrive_sandbox.clear_faults()
    assert run_dag(DAG_ID, "2026-11-20T06:00:00", {"pipeline_id": 2}).state == "success"
    start_ms, end_ms = 1795150800000, 1795154400000
    expected = expected_valid_events(leadboxer_sandbox.data, start_ms, end_ms)
    activities = pipedrive_sandbox.state()["activities"]
    markers = Counter(e for a in activities for e in set(event_ids_in_note(a["note"])) & set(expected))
    assert set(markers) == set(expected) and set(markers.values()) == {1}
    assert len(activities) == len(expected)
