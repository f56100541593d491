"""The dashboard's figures and page, from ledger rows (no Airflow, no database)."""

from __future__ import annotations

import json
from datetime import date

from leadboxer_pipedrive.dashboard import (
    budget_figures,
    next_run_estimate,
    render_dashboard,
    retry_figures,
    run_figures,
    stands_out,
    synced_datasets,
    with_airflow_states,
)


def ledger_row(run_id, extracted, pushed, already, rejected, finished_at="2026-11-20T06:00:05+00:00", **summary):
    return {"run_id": run_id, "interval_start": "2026-11-20T05:00:00+00:00",
            "interval_end": "2026-11-20T06:00:00+00:00",
            "extracted": extracted, "pushed": pushed, "already_pushed": already, "rejected": rejected,
            "tokens_spent": 5 * pushed, "rate_limited": 0, "finished_at": finished_at, "summary": json.dumps(summary)}


def test_a_runs_rejections_split_into_invalid_and_refused_and_its_figures_are_checked():
    run = run_figures("d", ledger_row("r", 12, 5, 2, 4, rejected_invalid=3, deferred=1, dataset_id="ds",
                                      entity="event"))
    assert (run["invalid"], run["refused"], run["deferred"], run["adds_up"]) == (3, 1, 1, True)
    assert run_figures("d", ledger_row("r", 12, 5, 2, 4))["adds_up"] is False
    assert stands_out(run) is None and stands_out({**run, "state": "failed"}) == "failed"


def test_airflow_runs_missing_from_the_ledger_are_listed_unless_older_than_what_is_shown():
    runs = [run_figures("d", ledger_row("r6", 1, 1, 0, 0))]
    merged = with_airflow_states("d", runs, [
        {"run_id": "r7", "state": "failed", "end_date": "2026-11-20T07:00:09+00:00"},
        {"run_id": "r6", "state": "success", "end_date": "2026-11-20T06:00:06+00:00"},
        {"run_id": "r1", "state": "failed", "end_date": "2026-11-20T01:00:00+00:00"}])
    assert [(r["run_id"], r["state"], r["adds_up"]) for r in merged] == [("r7", "failed", None),
                                                                          ("r6", "success", True)]


def test_the_budget_counts_today_against_the_daily_budget_and_estimates_from_real_runs():
    runs = [{"tokens_spent": 100}, {"tokens_spent": 900, "dry_run": True}, {"tokens_spent": 40},
            {"tokens_spent": 60}, {"run_id": "failed before its load"}]
    assert next_run_estimate(runs) == 60 and next_run_estimate([]) is None
    budget = budget_figures({"2026-11-19": 500, "2026-11-20": 120}, 1000, 0.25, date(2026, 11, 20), 60, days=3)
    assert budget["days"] == [{"day": "2026-11-18", "tokens": 0}, {"day": "2026-11-19", "tokens": 500},
                              {"day": "2026-11-20", "tokens": 120}]
    assert (budget["spent_today"], budget["left_today"], budget["run_allowance"]) == (120, 880, 250)
    assert budget_figures({}, None, 1.0, date(2026, 11, 20), None)["left_today"] is None


def test_the_queue_shown_is_that_of_the_datasets_and_entities_the_dag_syncs():
    assert synced_datasets([{"dataset_id": "ds", "entity": "event"}, {"dataset_id": "ds2", "entity": "event"}, {}]) == (
        ["ds", "ds2"], ["deal_update", "event", "organization_update", "person_update"])
    row = {"dataset_id": "ds", "entity": "event", "record_id": "e1", "status": "quarantined", "attempts": 3,
           "last_error": "no", "updated_at": "t", "payload": json.dumps({"email": "jo@x.io", "note": "secret"})}
    assert retry_figures(row) == {"dataset_id": "ds", "entity": "event", "record_id": "e1", "status": "quarantined",
                                  "attempts": 3, "last_error": "no", "updated_at": "t", "email": "jo@x.io"}


def test_the_page_escapes_what_it_shows_and_fetches_nothing():
    runs = [run_figures("d", ledger_row("r<1>", 3, 1, 0, 2, rejected_invalid=2))]
    rejected = {"matching": 1, "offset": 0, "limit": 50, "filters": {"run_id": None},
                "kinds": [{"entity": "event", "reason": "<script>alert(1)</script>", "row_count": 1}],
                "rows": [{"run_id": "r<1>", "entity": "event", "record_id": "e1", "email": "jo@x.io",
                          "reason": "<script>alert(1)</script>", "outcome": "invalid"}]}
    page = render_dashboard("d", runs=runs, budget=budget_figures({}, None, 1.0, date(2026, 11, 20), None),
                            rejected=rejected, retries=[], redrives=[], can_edit=False, base_path="/lb")
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page and "r&lt;1&gt;" in page
    assert 'id="runs-chart"' in page and 'id="budget-chart"' in page and "jo@x.io" in page
    assert "src=" not in page and "https://" not in page  # styles, charts and script are inline
