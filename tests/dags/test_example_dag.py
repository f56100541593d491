"""The reuse example: CSV rows pushed as Pipedrive activities with the hooks alone, run with dag.test()."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

DAG_ID = "leadboxer_pipedrive_example_push_rows"
CSV = Path(__file__).resolve().parents[2] / "include" / "examples" / "activities.csv"


def test_rows_become_activities_on_persons_found_by_email_and_a_rerun_pushes_nothing(
        run_dag, pipedrive_sandbox, connections):
    rows = list(csv.DictReader(CSV.open(encoding="utf-8")))
    emails = {row["email"].lower() for row in rows}
    # One person already exists: it must be found by email, not duplicated.
    from leadboxer_pipedrive.hooks.pipedrive import PipedriveHook

    existing = PipedriveHook("pipedrive_default").create_person(
        {"name": "Grace H.", "emails": [{"value": "grace.hopper@example.org", "primary": True, "label": "work"}]})

    assert run_dag(DAG_ID, "2026-11-20T06:00:00").state == "success"
    state = pipedrive_sandbox.state()
    persons = state["persons"]
    email_of = {p["id"]: {(e["value"] if isinstance(e, dict) else e).lower() for e in p["emails"]} for p in persons}
    assert set().union(*email_of.values()) == emails
    assert len(persons) == len(emails)  # one person per email, the existing one reused
    activities = state["activities"]
    assert sorted(a["subject"] for a in activities) == sorted(row["subject"] for row in rows)
    for activity in activities:
        row = next(r for r in rows if (r["subject"], r["due_date"], r["note"]) ==
                   (activity["subject"], activity["due_date"], activity.get("note") or ""))
        assert row["email"].lower() in email_of[activity["person_id"]]
    grace = [a for a in activities if a["person_id"] == existing["id"]]
    assert len(grace) == 1

    assert run_dag(DAG_ID, "2026-11-20T07:00:00").state == "success"
    again = pipedrive_sandbox.state()
    assert len(again["activities"]) == len(activities) and len(again["persons"]) == len(persons)
