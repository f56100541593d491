"""The activity sync's ``custom_fields``: LeadBoxer facts written to person, organization and deal fields
of their type, updated only when the fact changes, resolved before any write; and the account-dependent
standard fields (job title with contact sync, industry options), refused updates, records gone."""

from __future__ import annotations

import pytest
from loader_frames import activity_frame

from leadboxer_pipedrive.exceptions import SyncConfigurationError
from leadboxer_pipedrive.hooks.ledger import LedgerHook
from leadboxer_pipedrive.hooks.pipedrive import PipedriveHook
from leadboxer_pipedrive.loading import ActivityLoader, LoadSettings
from leadboxer_pipedrive.loading.fields import Field
from leadboxer_pipedrive.loading.plan import plan_activity_load
from leadboxer_pipedrive.loading.resolver import update_entity
from sandbox.pipedrive.seeds import field_code

JANE = {"use_id": "u1", "email": "jane@acme.com", "firstName": "Jane", "lastName": "Doe", "esScore": "40",
        "first_channel": "organic", "leadcard_url": "https://app.leadboxer.com/card/u1"}
SCORE = {"deal": {"lead_score": "LeadBoxer lead score"}}


def settings(run_id, custom_fields, **kwargs):
    # Searching, as the plans below are priced: the account index's plan is tested in test_account_index.
    return LoadSettings(dataset_id="ds", dag_id="dag", run_id=run_id, pipeline_id=2, custom_fields=custom_fields,
                        account_index=False, **kwargs)


def load(pipedrive_conn, ledger, lead, run_id, custom_fields, prefix=None, **kwargs):
    """One load of two events of ``lead``; returns (hook, result, the plan's tokens)."""
    hook = PipedriveHook(pipedrive_conn)
    frame = activity_frame([lead], 2, prefix=prefix or run_id)
    planned = plan_activity_load(frame, ledger, "ds", 2, "per_event", None, custom_fields).tokens(hook.token_costs)
    result = ActivityLoader(hook, ledger, settings(run_id, custom_fields, **kwargs)).load(frame)
    return hook, result, planned


def calls(hook, call):
    return hook.requests_by_call().get(call, 0)


def only(rows):
    assert len(rows) == 1, rows
    return rows[0]


def test_a_mapped_score_on_the_deal_follows_the_lead_and_is_left_alone_while_it_stays(
        pipedrive_sandbox, pipedrive_conn, ledger_conn):
    ledger = LedgerHook(ledger_conn)
    score = field_code("LeadBoxer lead score")
    first, _, planned = load(pipedrive_conn, ledger, JANE, "run-1", SCORE)
    assert only(pipedrive_sandbox.state()["deals"])["custom_fields"][score] == 40.0  # created with it
    assert first.tokens_spent == planned
    hotter, result, planned = load(pipedrive_conn, ledger, {**JANE, "esScore": "75"}, "run-2", SCORE)
    assert only(pipedrive_sandbox.state()["deals"])["custom_fields"][score] == 75.0
    assert result.counts["deals_updated"] == 1 and calls(hotter, "PATCH /api/v2/deals/{id}") == 1
    assert hotter.tokens_spent == planned == 5 + 5 * 2  # the update (no read: the field is ours), two activities
    same, result, planned = load(pipedrive_conn, ledger, {**JANE, "esScore": "75"}, "run-3", SCORE)
    assert result.counts["deals_unchanged"] == 1 and calls(same, "PATCH /api/v2/deals/{id}") == 0
    assert same.tokens_spent == planned == 5 * 2
    assert pipedrive_sandbox.state()["counters"]["by_endpoint"]["PATCH /api/v2/deals/{id}"] == 1


def test_an_unknown_field_name_fails_the_run_before_any_write_naming_the_existing_fields(
        pipedrive_sandbox, pipedrive_conn, ledger_conn):
    with pytest.raises(SyncConfigurationError, match=r"no deal custom field named 'Score'; existing deal custom "
                                                     r"fields: \[.*'LeadBoxer lead score'"):
        load(pipedrive_conn, LedgerHook(ledger_conn), JANE, "run-1", {"deal": {"lead_score": "Score"}})
    with pytest.raises(SyncConfigurationError, match=r"custom_fields.person maps unknown LeadBoxer fact\(s\) "
                                                     r"\['shoe_size'\]; mappable: lead_score"):
        load(pipedrive_conn, LedgerHook(ledger_conn), JANE, "run-2", {"person": {"shoe_size": "Size"}})
    state = pipedrive_sandbox.state()
    assert state["persons"] == state["organizations"] == state["deals"] == state["activities"] == []
    assert not [call for call in state["counters"]["by_endpoint"] if not call.startswith("GET ")]


def test_mapped_values_are_sent_as_their_fields_types_and_the_plan_prices_them(
        pipedrive_sandbox, pipedrive_conn, ledger_conn):
    mapping = {"person": {"lead_score": "LeadBoxer lead score", "last_visit": "LeadBoxer last visit",
                          "first_channel": "LeadBoxer first channel", "leadcard_url": "LeadBoxer lead card"}}
    ledger = LedgerHook(ledger_conn)
    load(pipedrive_conn, ledger, JANE, "run-1", {})  # Jane, known before the fields are mapped
    hook, result, planned = load(pipedrive_conn, ledger, JANE, "run-2", mapping)
    held = only(pipedrive_sandbox.state()["persons"])["custom_fields"]
    assert held == {field_code("LeadBoxer lead score"): 40.0, field_code("LeadBoxer last visit"): "2026-11-20",
                    field_code("LeadBoxer first channel"): 2,  # the option "organic"
                    field_code("LeadBoxer lead card"): "https://app.leadboxer.com/card/u1"}
    assert result.counts["persons_updated"] == 1
    assert hook.tokens_spent == planned == 10 + 5 + 5 * 2  # the person fields list, the update, two activities


@pytest.mark.parametrize("field, fact, sent", [
    (Field("Score", "s", "double", True), "41.5", 41.5),
    (Field("Visits", "v", "int", True), "3.0", 3),
    (Field("Score", "s", "double", True), "n/a", None),
    (Field("Seen", "d", "date", True), "2026-11-20T23:59:00Z", "2026-11-20"),
    (Field("At", "t", "time", True), "2026-11-20T06:07:08Z", "06:07:08"),
    (Field("Channel", "c", "enum", True, (("organic", 2),)), "Organic", 2),
    (Field("Channel", "c", "enum", True, (("organic", 2),)), "carrier pigeon", None),
    (Field("Channels", "c", "set", True, (("organic", 2),)), "organic", [2]),
    (Field("Card", "k", "varchar", True), "x" * 300, "x" * 255),
])
def test_a_fact_is_sent_as_its_field_takes_it_or_not_at_all(field, fact, sent):
    assert field.value(fact) == sent


def test_job_title_is_filled_where_the_account_has_the_field(pipedrive_sandbox, pipedrive_conn, ledger_conn):
    ledger = LedgerHook(ledger_conn)
    load(pipedrive_conn, ledger, JANE, "run-1", {})  # Jane, before LeadBoxer knew her job title
    hook, result, planned = load(pipedrive_conn, ledger, {**JANE, "title": "Head of Growth"}, "run-2", {})
    # The person fields list (10 tokens, then a day in the ledger), a read, the update, two activities.
    assert hook.tokens_spent == planned == 10 + 1 + 5 + 5 * 2
    assert only(pipedrive_sandbox.state()["persons"])["job_title"] == "Head of Growth"


def test_without_contact_sync_job_title_is_never_sent(tmp_path, monkeypatch, ledger_conn):
    import json

    from sandbox.pipedrive import PipedriveSandbox

    with PipedriveSandbox(contact_sync=False) as sandbox:
        monkeypatch.setenv("AIRFLOW_CONN_PIPEDRIVE_NO_SYNC", json.dumps({
            "conn_type": "pipedrive", "host": sandbox.url, "password": "sandbox-token"}))
        hook, result, _ = load("pipedrive_no_sync", LedgerHook(ledger_conn), {**JANE, "title": "CEO"}, "run-1", {})
        assert result.pushed == 2 and result.refused == 0
        assert "job_title" not in only(sandbox.state()["persons"])


def test_an_organization_gets_the_industry_option_of_its_leadboxer_industry(pipedrive_sandbox, pipedrive_conn,
                                                                           ledger_conn):
    ledger = LedgerHook(ledger_conn)
    lead = {**JANE, "organizationName": "Acme"}
    load(pipedrive_conn, ledger, lead, "run-1", {})
    lead["organizationIndustryName"] = "Software Development"
    hook, result, planned = load(pipedrive_conn, ledger, lead, "run-2", {})
    acme = only(pipedrive_sandbox.state()["organizations"])
    options = {o["label"]: o["id"] for o in next(f for f in pipedrive_sandbox.state()["organization_fields"]
                                                 if f["field_code"] == "industry")["options"]}
    assert acme["industry"] == options["Software Development"]
    assert hook.tokens_spent == planned == 10 + 1 + 5 + 5 * 2  # organization fields, read, update, activities


def test_a_refused_update_is_queued_with_pipedrives_message_and_sent_again_by_the_next_run(
        pipedrive_sandbox, pipedrive_conn, ledger_conn):
    ledger = LedgerHook(ledger_conn)
    score = field_code("LeadBoxer lead score")
    load(pipedrive_conn, ledger, JANE, "run-1", SCORE)
    pipedrive_sandbox.add_fault({"kind": "status", "status": 400, "count": 1, "method": "PATCH",
                                 "path": "^/api/v2/deals/"})
    _, refused, _ = load(pipedrive_conn, ledger, {**JANE, "esScore": "75"}, "run-2", SCORE)
    assert refused.counts["deal_updates_refused"] == 1 and refused.pushed == 2  # the activities still go
    queued = only(ledger.retries("ds", update_entity("deal")))
    assert queued["last_error"].startswith("Pipedrive refused the update") and queued["attempts"] == 1
    # The next hour, the lead is not active: the queued update is sent again, priced, and leaves the queue.
    hook = PipedriveHook(pipedrive_conn)
    empty = activity_frame([JANE], 0)
    planned = plan_activity_load(empty, ledger, "ds", 2, "per_event", None, SCORE).tokens(hook.token_costs)
    retried = ActivityLoader(hook, ledger, settings("run-3", SCORE)).load(empty)
    assert retried.counts["deals_updated"] == 1 and hook.tokens_spent == planned == 5
    assert only(pipedrive_sandbox.state()["deals"])["custom_fields"][score] == 75.0
    assert ledger.retries("ds", update_entity("deal")) == []


def test_a_deal_gone_from_pipedrive_is_resolved_again_not_updated_blindly(
        pipedrive_sandbox, pipedrive_conn, ledger_conn):
    ledger = LedgerHook(ledger_conn)
    load(pipedrive_conn, ledger, JANE, "run-1", SCORE)
    person_id = only(pipedrive_sandbox.state()["persons"])["id"]
    gone = only(pipedrive_sandbox.state()["deals"])["id"]
    PipedriveHook(pipedrive_conn).update_deal(gone, {"is_deleted": True})
    _, result, _ = load(pipedrive_conn, ledger, {**JANE, "esScore": "75"}, "run-2", SCORE)
    assert result.pushed == 2 and result.counts["stale_ids_reresolved"] == 1
    deal = ledger.deals_by_person([person_id])[person_id]
    assert deal["deal_id"] != gone
    live = [d for d in pipedrive_sandbox.state()["deals"] if d["id"] == deal["deal_id"]]
    assert only(live)["custom_fields"][field_code("LeadBoxer lead score")] == 75.0


def test_a_person_gone_from_pipedrive_is_resolved_again_by_the_update_not_refused(
        pipedrive_sandbox, pipedrive_conn, ledger_conn):
    ledger = LedgerHook(ledger_conn)
    ledger.remember_person("jane@acme.com", 999_999, None)  # merged into another, or deleted, since
    hook, result, _ = load(pipedrive_conn, ledger, {**JANE, "phoneNumber": "+31 20 555 0101"}, "run-1", {})
    assert (result.pushed, result.refused) == (2, 0)
    assert result.counts["stale_ids_reresolved"] == 1 and calls(hook, "GET /api/v2/persons/{id}") == 1
    # Resolved again at once (no update refused and queued, no activity create refused first).
    assert "person_updates_refused" not in result.counts and ledger.retries("ds", update_entity("person")) == []
    assert calls(hook, "POST /api/v2/activities") == 2
    jane = only(pipedrive_sandbox.state()["persons"])
    assert ledger.persons_by_email(["jane@acme.com"])["jane@acme.com"]["person_id"] == jane["id"]
    assert [p["value"] for p in jane["phones"]] == ["+31 20 555 0101"]
