"""The leads sync's whole-segment runs, with dag.test() against both sandboxes: the first run pushes
every member of the segment, hourly runs then push what changed, a member who joined without activity
is pushed by the next whole-segment run, a small token budget spreads the first sync over runs, a crash
resumes without duplicates, and the dry run prices a whole-segment run exactly."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from test_leads_dag import DAG_ID, HOUR, HOUR_5, dataset, lead, summaries

pytestmark = pytest.mark.integration

DAYS_AGO = HOUR_5 - 5 * 24 * HOUR  # members last seen days before the synced hour


def members(count: int, active: int, *, score: str = "55") -> list[dict]:
    """``count`` members of segment 1 with an organization (ten organizations between them); the first
    ``active`` were seen in [05:00, 06:00), the others days before."""
    return [lead(f"m{n:03d}", org=f"Org {n % 10}", domain=f"org{n % 10}.example", score=score,
                 at=HOUR_5 + 60_000 * (n + 1) if n < active else DAYS_AGO + 60_000 * n) for n in range(count)]


def conf(**extra):
    return {"dataset_id": "leads-test-dataset", "segment_id": 1, "link_to": "organization", **extra}


def origins(pipedrive_sandbox) -> Counter:
    return Counter(lead["origin_id"] for lead in pipedrive_sandbox.state()["leads"])


def test_the_first_run_pushes_the_whole_segment_then_hourly_runs_push_what_changed(
        run_dag, leadboxer_sandbox, pipedrive_sandbox, connections):
    segment = members(300, 20)
    leadboxer_sandbox.load(dataset(*segment))
    assert run_dag(DAG_ID, "2026-11-20T06:00:00", conf()).state == "success"
    first = summaries(connections)[-1]
    assert (first["scope"], first["extracted"], first["pushed"]) == ("segment", 300, 300)
    assert first["segment_progress"] == "300 of 300 members in Pipedrive; complete"
    assert len(origins(pipedrive_sandbox)) == 300 and set(origins(pipedrive_sandbox).values()) == {1}

    # The next hour: the twenty active members come back, five of them with a new score.
    later = [lead(m["use_id"], org=m["organizationName"], domain=m["organizationDomain"],
                  score="90" if n < 5 else "55", at=HOUR_5 + HOUR + 60_000 * (n + 1))
             for n, m in enumerate(segment[:20])]
    leadboxer_sandbox.load(dataset(*later, *segment[20:]))
    assert run_dag(DAG_ID, "2026-11-20T07:00:00", conf()).state == "success"
    hourly = summaries(connections)[-1]
    assert (hourly["scope"], hourly["extracted"], hourly["already_pushed"]) == ("hour", 20, 15)
    assert hourly["loaded"]["leads_updated"] == 5 and "leads_created" not in hourly["loaded"]
    assert len(origins(pipedrive_sandbox)) == 300


def test_a_member_who_joined_without_activity_is_pushed_by_the_next_whole_segment_run(
        run_dag, leadboxer_sandbox, pipedrive_sandbox, connections):
    segment = members(30, 5)
    leadboxer_sandbox.load(dataset(*segment))
    assert run_dag(DAG_ID, "2026-11-20T06:00:00", conf()).state == "success"
    joined = lead("late", org="Org 1", domain="org1.example", at=DAYS_AGO)  # moved into the segment, no visit
    leadboxer_sandbox.load(dataset(*segment, joined))
    assert run_dag(DAG_ID, "2026-11-20T07:00:00", conf()).state == "success"  # an hourly run: not active
    assert summaries(connections)[-1]["scope"] == "hour" and len(origins(pipedrive_sandbox)) == 30
    # segment_sync_hours has passed (here: at once): the next run reads the whole segment again.
    assert run_dag(DAG_ID, "2026-11-20T08:00:00", conf(segment_sync_hours=0.0001)).state == "success"
    again = summaries(connections)[-1]
    assert (again["scope"], again["pushed"], again["already_pushed"]) == ("segment", 1, 30)
    assert len(origins(pipedrive_sandbox)) == 31
    # and on demand, whatever the schedule:
    assert run_dag(DAG_ID, "2026-11-20T09:00:00", conf(scope="segment", segment_sync_hours=0)).state == "success"
    assert summaries(connections)[-1]["already_pushed"] == 31


def test_a_budget_too_small_spreads_the_first_sync_over_runs_each_member_pushed_once(
        run_dag, leadboxer_sandbox, pipedrive_sandbox, connections, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_PIPEDRIVE_DEFAULT", json.dumps({
        "conn_type": "pipedrive", "host": pipedrive_sandbox.url, "password": "sandbox-token",
        "extra": {"burst_limit": 100, "daily_token_budget": 100_000, "max_run_budget_share": 0.003}}))
    leadboxer_sandbox.load(dataset(*members(60, 5)))
    runs = []
    for hour in ("06", "07", "08", "09", "10", "11"):
        assert run_dag(DAG_ID, f"2026-11-20T{hour}:00:00", conf()).state == "success"
        runs.append(summaries(connections)[-1])
        if "complete" in runs[-1]["segment_progress"]:
            break
    assert len(runs) >= 3, [r["segment_progress"] for r in runs]  # 300 tokens a run for about 760
    assert all(r["tokens_spent"] - r["preflight_tokens"] <= 300 for r in runs)
    assert all(r["extracted"] == r["pushed"] + r["already_pushed"] + r["rejected"] + r["deferred"] for r in runs)
    assert runs[0]["deferred"] > 0 and "left for the next runs (about" in runs[0]["segment_progress"]
    assert sum(r["pushed"] for r in runs) == 60
    assert len(origins(pipedrive_sandbox)) == 60 and set(origins(pipedrive_sandbox).values()) == {1}


def test_a_crash_in_the_middle_resumes_without_duplicates(run_dag, leadboxer_sandbox, pipedrive_sandbox,
                                                          connections):
    leadboxer_sandbox.load(dataset(*members(40, 5)))
    # Pipedrive takes the token away after 15 leads: the load fails at once (not retried).
    pipedrive_sandbox.add_fault({"kind": "status", "status": 401, "method": "POST", "path": "^/api/v1/leads$",
                                 "after": 15})
    assert run_dag(DAG_ID, "2026-11-20T06:00:00", conf()).state == "failed"
    assert len(origins(pipedrive_sandbox)) == 15
    pipedrive_sandbox.clear_faults()
    assert run_dag(DAG_ID, "2026-11-20T06:00:00", conf()).state == "success"
    resumed = summaries(connections)[-1]
    assert (resumed["scope"], resumed["pushed"], resumed["already_pushed"]) == ("segment", 25, 15)
    assert len(origins(pipedrive_sandbox)) == 40 and set(origins(pipedrive_sandbox).values()) == {1}


def test_the_dry_run_prices_a_whole_segment_run_exactly(run_dag, leadboxer_sandbox, pipedrive_sandbox, connections):
    leadboxer_sandbox.load(dataset(*members(50, 5)))
    assert run_dag(DAG_ID, "2026-11-20T06:00:00", conf(dry_run=True)).state == "success"
    plan = summaries(connections)[-1]
    assert plan["scope"] == "segment" and plan["plan"]["would_create"]["leads"] == 50
    assert pipedrive_sandbox.state()["leads"] == []
    assert run_dag(DAG_ID, "2026-11-20T06:00:00", conf()).state == "success"
    real = summaries(connections)[-1]
    assert real["pushed"] == 50
    assert real["tokens_spent"] - real["preflight_tokens"] == plan["plan"]["estimated_tokens"]
