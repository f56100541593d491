"""The account index (``loading.account_index``) against the Pipedrive sandbox: records found without
searching, created in Pipedrive between runs (by a primary or a second email), deleted or merged; the
first read of a large account paced within what searching would cost; the plan priced as spent."""

from __future__ import annotations

import json

import pytest
import requests
from loader_frames import activity_frame

from leadboxer_pipedrive.hooks.ledger import LedgerHook
from leadboxer_pipedrive.hooks.pipedrive import PipedriveHook
from leadboxer_pipedrive.loading import ActivityLoader, LoadSettings
from leadboxer_pipedrive.loading.account_index import IndexState, choose_way
from leadboxer_pipedrive.loading.plan import plan_activity_load

ANN = {"use_id": "a", "email": "ann@acme.example", "organizationName": "Acme"}
BOB = {"use_id": "b", "email": "bob@beta.example", "organizationName": "Beta"}
COSTS = PipedriveHook.token_costs


def hook(conn_id):
    pipedrive = PipedriveHook(conn_id)
    pipedrive.backoff_base = 0.01
    return pipedrive


def load(conn_id, ledger, leads, run_id, events=2, pipeline_id=None):
    """One run of the real loader; returns (result, its hook: tokens spent, calls made)."""
    pipedrive = hook(conn_id)
    settings = LoadSettings(dataset_id="ds", dag_id="dag", run_id=run_id, workers=2, pipeline_id=pipeline_id)
    return ActivityLoader(pipedrive, ledger, settings).load(activity_frame(leads, events, prefix=run_id)), pipedrive


def add_person(sandbox, name, emails, **fields):
    response = requests.post(f"{sandbox.url}/api/v2/persons", headers={"x-api-token": "sandbox-token"},
                             json={"name": name, "emails": emails, **fields}, timeout=10)
    response.raise_for_status()
    return response.json()["data"]["id"]


def searches(pipedrive):
    return {call: n for call, n in pipedrive.requests_by_call().items() if call.endswith("/search")}


def test_new_leads_are_created_after_one_page_of_each_list_and_no_search(pipedrive_sandbox, pipedrive_conn,
                                                                         ledger_conn):
    result, pipedrive = load(pipedrive_conn, LedgerHook(ledger_conn), [ANN, BOB], "run-1")
    assert result.pushed == 4 and result.counts["account_index_pages"] == 2
    assert pipedrive.requests_by_call() == {
        "GET /api/v1/activityTypes": 1, "GET /api/v2/persons": 1, "GET /api/v2/organizations": 1,
        "POST /api/v2/organizations": 2, "POST /api/v2/persons": 2, "POST /api/v2/activities": 4}
    assert pipedrive.tokens_spent == 20 + 2 * 10 + 2 * 5 + 2 * 5 + 4 * 5


@pytest.mark.parametrize("second_email", [False, True], ids=["primary email", "second email"])
def test_a_person_created_in_pipedrive_between_two_runs_is_linked_not_duplicated(
        pipedrive_sandbox, pipedrive_conn, ledger_conn, second_email):
    ledger = LedgerHook(ledger_conn)
    load(pipedrive_conn, ledger, [ANN], "run-1")
    emails = [{"value": "carol@home.example", "primary": True}] if second_email else []
    someone_elses = add_person(pipedrive_sandbox, "Carol", [*emails, {"value": "Carol@Gamma.example",
                                                                      "primary": not second_email}])
    carol = {"use_id": "c", "email": "carol@gamma.example", "organizationName": "Acme"}
    result, pipedrive = load(pipedrive_conn, ledger, [carol, ANN], "run-2")
    state = pipedrive_sandbox.state()
    assert len(state["persons"]) == 2 and result.counts["persons_found"] == 1
    assert {a["participants"][0]["person_id"] for a in state["activities"]
            if "run-2-c" in a["note"]} == {someone_elses}
    assert result.pushed == 4 and searches(pipedrive) == {}


def test_an_organization_created_in_pipedrive_between_two_runs_is_used(pipedrive_sandbox, pipedrive_conn,
                                                                       ledger_conn):
    ledger = LedgerHook(ledger_conn)
    load(pipedrive_conn, ledger, [ANN], "run-1")
    response = requests.post(f"{pipedrive_sandbox.url}/api/v2/organizations",
                             headers={"x-api-token": "sandbox-token"}, json={"name": " BETA "}, timeout=10)
    beta = response.json()["data"]["id"]
    result, pipedrive = load(pipedrive_conn, ledger, [BOB], "run-2")
    state = pipedrive_sandbox.state()
    assert [o["id"] for o in state["organizations"] if o["name"].strip().casefold() == "beta"] == [beta]
    assert next(p for p in state["persons"] if p["name"] == "bob")["org_id"] == beta
    assert result.counts["organizations_found"] == 1 and searches(pipedrive) == {}


def test_a_merged_person_is_re_resolved_to_the_survivor(pipedrive_sandbox, pipedrive_conn, ledger_conn):
    ledger = LedgerHook(ledger_conn)
    load(pipedrive_conn, ledger, [ANN], "run-1")
    store = pipedrive_sandbox.app.store
    ann = next(p["id"] for p in pipedrive_sandbox.state()["persons"])
    survivor = add_person(pipedrive_sandbox, "Ann Smith", [{"value": "ann@home.example", "primary": True}])
    # Merged in Pipedrive: the survivor takes Ann's email, Ann's record is gone.
    requests.patch(f"{pipedrive_sandbox.url}/api/v2/persons/{survivor}", headers={"x-api-token": "sandbox-token"},
                   json={"emails": [{"value": "ann@home.example", "primary": True},
                                    {"value": "ann@acme.example", "primary": False}]}, timeout=10).raise_for_status()
    del store.persons.rows[ann]
    result, _ = load(pipedrive_conn, ledger, [ANN], "run-2")
    state = pipedrive_sandbox.state()
    assert result.pushed == 2 and result.counts["stale_ids_reresolved"] >= 1
    assert [p["id"] for p in state["persons"]] == [survivor]
    assert {a["participants"][0]["person_id"] for a in state["activities"] if "run-2" in a["note"]} == {survivor}
    assert ledger.indexed("person", ["ann@acme.example"])["ann@acme.example"]["record_id"] == survivor


def test_a_deleted_person_is_created_again_once(pipedrive_sandbox, pipedrive_conn, ledger_conn):
    ledger = LedgerHook(ledger_conn)
    load(pipedrive_conn, ledger, [ANN], "run-1")
    ann = next(p["id"] for p in pipedrive_sandbox.state()["persons"])
    del pipedrive_sandbox.app.store.persons.rows[ann]
    result, _ = load(pipedrive_conn, ledger, [ANN], "run-2")
    persons = pipedrive_sandbox.state()["persons"]
    assert result.pushed == 2 and len(persons) == 1 and persons[0]["id"] != ann
    assert ledger.indexed("person", ["ann@acme.example"])["ann@acme.example"]["record_id"] == persons[0]["id"]


def test_the_plan_prices_a_run_on_the_index_as_spent(pipedrive_sandbox, pipedrive_conn, ledger_conn):
    ledger = LedgerHook(ledger_conn)
    load(pipedrive_conn, ledger, [ANN, {"use_id": "c", "email": "carol@gamma.example"}], "run-1", pipeline_id=2)
    # Known (Ann), known without the organization LeadBoxer now names (Carol), new (Bob, Dan); what others
    # create in Pipedrive between runs a plan cannot know: it reads the ledger alone.
    leads = [ANN, BOB, {"use_id": "c", "email": "carol@gamma.example", "organizationName": "Acme"},
             {"use_id": "d", "email": "dan@delta.example", "organizationName": "Delta"}]
    frame = activity_frame(leads, 2, prefix="run-2")
    plan = plan_activity_load(frame, ledger, "ds", 2, "per_event", account_index_costs=COSTS)
    assert plan.ways["person"]["way"] == "index" and plan.ways["organization"]["way"] == "index"
    pipedrive = hook(pipedrive_conn)
    settings = LoadSettings(dataset_id="ds", dag_id="dag", run_id="run-2", workers=2, pipeline_id=2)
    result = ActivityLoader(pipedrive, ledger, settings).load(frame)
    assert result.pushed == 8 and searches(pipedrive) == {}
    assert pipedrive.tokens_spent == plan.tokens(COSTS), (sorted(plan.calls.items()), pipedrive.requests_by_call())


def test_the_first_read_of_a_large_account_is_paced_and_its_rows_wait_instead_of_duplicating(
        pipedrive_conn, ledger_conn, monkeypatch):
    from sandbox.pipedrive import PipedriveSandbox

    # 1,200 persons: three pages. The newest (updated last) holds the lead's email.
    with PipedriveSandbox(existing_persons=1200) as sandbox:
        monkeypatch.setenv("AIRFLOW_CONN_PIPEDRIVE_LOADER_TEST", json.dumps({
            "conn_type": "pipedrive", "host": sandbox.url, "password": "sandbox-token",
            "extra": {"burst_limit": 100}}))
        newest = max(sandbox.state()["persons"], key=lambda p: p["update_time"])
        lead = {"use_id": "n", "email": newest["emails"][0]["value"]}
        ledger = LedgerHook(ledger_conn)
        first, pipedrive = load(pipedrive_conn, ledger, [lead], "run-1")
        # One email: searching would cost 20 tokens, so the read takes 2 pages (10 each), not 3.
        assert pipedrive.requests_by_call().get("GET /api/v2/persons") == 2 and searches(pipedrive) == {}
        assert first.pushed == 0 and first.counts["deferred"] == 2
        assert len(ledger.retries("ds", "event")) == 2  # queued, pending
        assert IndexState.of(ledger, "person").current is False

        second, pipedrive = load(pipedrive_conn, ledger, [], "run-2")
        assert second.counts["retries_pushed"] == 2 and searches(pipedrive) == {}
        state = sandbox.state()
        assert len(state["persons"]) == 1200  # found, not created
        assert {a["participants"][0]["person_id"] for a in state["activities"]} == {newest["id"]}
        assert IndexState.of(ledger, "person").current is True and ledger.retries("ds", "event") == []


def test_the_cheaper_way_is_taken_from_what_the_last_read_took():
    busy = IndexState(mark="2026-12-08T01:00:00Z", current=True, last_records=4600)  # 10 pages a run
    way = choose_way("person", busy, 2, COSTS)
    assert way.kind == "search" and "100 tokens" in way.why and "searching 2 key(s) 40" in way.why
    assert choose_way("person", busy, 5, COSTS).kind == "index"  # 100 tokens of reading against 100 of searching
    organizations = choose_way("organization", IndexState(mark="2026-12-08T00:00:00Z", last_records=1200), 4, COSTS)
    assert (organizations.kind, organizations.expected_pages, organizations.max_pages) == ("index", 3, 8)
    never_read = choose_way("person", IndexState(), 3, COSTS)
    assert (never_read.kind, never_read.expected_pages, never_read.max_pages) == ("index", 6, 6)  # at its most
    assert choose_way("person", IndexState(), 0, COSTS).kind == "none"


def test_the_organizations_are_read_again_when_the_domain_field_changes(tmp_path, monkeypatch, ledger_conn):
    ledger = LedgerHook(ledger_conn)
    IndexState(mark="2026-12-08T00:00:00Z", current=True, domain_field="abc").save(ledger, "organization")
    assert IndexState.of(ledger, "organization", "abc").mark == "2026-12-08T00:00:00Z"
    assert IndexState.of(ledger, "organization", "def").mark is None
    assert IndexState.of(ledger, "organization", None).mark is None
