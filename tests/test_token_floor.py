"""Token arithmetic of the activity sync on the search path (``account_index=False``; the account
index's is in ``tests/leadboxer_pipedrive/loading/test_account_index.py``), read from the Pipedrive
sandbox's own counters.

Prices (``x-token-cost``): search 20, create 5, activity 5, deals list 10, activity types 20.

* A known lead's event costs exactly 5 tokens (one ``POST /activities``): persons, organizations,
  deals and the activity-type check all come from the ledger. The activity-type check
  (``GET /activityTypes``, 20) is cached in the ledger for a day, so it is a once-a-day cost, not a
  per-run one. When no pipeline is configured and the person has no open deal, each run looks for one
  (``GET /deals``, 10 per person and run): that is the only identifiable per-run overhead.
* A new lead costs exactly person search + create (20 + 5), organization search + create when its
  organization is new (20 + 5), and its activities (5 each).
* Digest mode costs 5 per lead, whatever its number of events.
"""

from __future__ import annotations

import json

import pytest

DATASET = "ds"
START = 1_795_150_800_000  # 2026-11-20T05:00Z


def _frame(leads: list[dict], events_per_lead: int, prefix: str):
    from leadboxer_pipedrive.frames import events_frame, leads_frame
    from leadboxer_pipedrive.transforms import activity_payloads

    records = [{"segments": [1], **lead} for lead in leads]
    events = [{"event_id": f"{prefix}-{lead['use_id']}-{n}", "_lead_id": lead["use_id"],
               "eventUnixTimestamp": str(START + 60_000 * (n + 1)), "event_type": "pageview",
               "title": f"Page {n}", "original_url": f"https://example.com/p{n}"}
              for lead in records for n in range(events_per_lead)]
    return activity_payloads(events_frame(events, leads_frame(records, 1), DATASET), "task")


LEAD_A = {"use_id": "a", "email": "ann@acme.example", "firstName": "Ann", "organizationName": "Acme",
          "organizationDomain": "acme.example"}
LEAD_B = {"use_id": "b", "email": "bob@acme.example", "firstName": "Bob", "organizationName": "Acme",
          "organizationDomain": "acme.example"}


@pytest.fixture
def sync(tmp_path, monkeypatch):
    """``run(frame, pipeline_id=..., mode=...)`` loads through the real ActivityLoader and returns the
    tokens the sandbox charged for that run, and the calls it served."""
    from sandbox.pipedrive import PipedriveSandbox

    with PipedriveSandbox() as sandbox:
        monkeypatch.setenv("AIRFLOW_CONN_PIPEDRIVE_DEFAULT", json.dumps({
            "conn_type": "pipedrive", "host": sandbox.url, "password": "sandbox-token",
            "extra": {"burst_limit": 100}}))
        monkeypatch.setenv("AIRFLOW_CONN_LEADBOXER_PIPEDRIVE_LEDGER", json.dumps({
            "conn_type": "sqlite", "host": str(tmp_path / "ledger.sqlite")}))
        runs = []

        def run(frame, pipeline_id=None, mode="per_event", account_index=False):
            from leadboxer_pipedrive.hooks import LedgerHook, PipedriveHook
            from leadboxer_pipedrive.loading import ActivityLoader, LoadSettings

            before = sandbox.app.counters()
            settings = LoadSettings(dataset_id=DATASET, dag_id="token_floor", run_id=f"run-{len(runs)}",
                                    pipeline_id=pipeline_id, workers=2, activity_mode=mode,
                                    account_index=account_index)
            result = ActivityLoader(PipedriveHook(), LedgerHook(), settings).load(frame)
            after = sandbox.app.counters()
            calls = {k: v - before["by_endpoint"].get(k, 0) for k, v in after["by_endpoint"].items()
                     if v - before["by_endpoint"].get(k, 0)}
            runs.append(result)
            return after["tokens_spent"] - before["tokens_spent"], calls, result
        yield run


def test_known_leads_event_costs_exactly_five_tokens(sync):
    sync(_frame([LEAD_A, LEAD_B], 2, "first"), pipeline_id=2)
    tokens, calls, result = sync(_frame([LEAD_A, LEAD_B], 3, "second"), pipeline_id=2)
    assert result.pushed == 6
    assert calls == {"POST /api/v2/activities": 6}
    assert tokens == 5 * 6


def test_without_a_pipeline_the_only_per_run_overhead_is_the_deal_lookup(sync):
    sync(_frame([LEAD_A], 1, "first"))
    tokens, calls, result = sync(_frame([LEAD_A], 4, "second"))
    assert result.pushed == 4
    assert calls == {"POST /api/v2/activities": 4, "GET /api/v2/deals": 1}
    assert tokens == 5 * 4 + 10  # the person has no open deal: looked for once per run


def test_new_lead_costs_search_and_create_person_and_organization_plus_activities(sync):
    tokens, calls, result = sync(_frame([LEAD_A], 3, "first"))
    assert result.pushed == 3
    assert calls == {"GET /api/v1/activityTypes": 1, "GET /api/v2/organizations/search": 1,
                     "POST /api/v2/organizations": 1, "GET /api/v2/persons/search": 1,
                     "POST /api/v2/persons": 1, "POST /api/v2/activities": 3}
    assert tokens == 20 + (20 + 5) + (20 + 5) + 5 * 3  # once-a-day type check + org + person + activities
    # The next run: a new lead of the same (now known) organization, the type check cached.
    tokens, calls, _ = sync(_frame([LEAD_B], 2, "second"))
    assert calls == {"GET /api/v2/persons/search": 1, "POST /api/v2/persons": 1, "POST /api/v2/activities": 2}
    assert tokens == (20 + 5) + 5 * 2


def test_digest_mode_costs_five_tokens_per_lead(sync):
    sync(_frame([LEAD_A, LEAD_B], 1, "first"), pipeline_id=2)
    tokens, calls, result = sync(_frame([LEAD_A, LEAD_B], 4, "second"), pipeline_id=2, mode="digest")
    assert result.pushed == 8
    assert calls == {"POST /api/v2/activities": 2}
    assert tokens == 5 * 2
