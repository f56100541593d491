"""Existing persons kept current with what LeadBoxer learns: an empty name or phone is filled, a value
someone typed in Pipedrive is kept, nothing is read or written while the facts stay the same, and the
plan prices exactly what the load spends."""

from __future__ import annotations

import pytest
from loader_frames import activity_frame

from leadboxer_pipedrive.hooks.ledger import LedgerHook
from leadboxer_pipedrive.hooks.pipedrive import PipedriveHook
from leadboxer_pipedrive.loading import ActivityLoader, LoadSettings
from leadboxer_pipedrive.loading.plan import plan_activity_load
from leadboxer_pipedrive.loading.updates import changed, free_fields, person_fields, person_held

JANE = {"use_id": "u1", "email": "jane@acme.com", "firstName": "Jane", "lastName": "Doe",
        "phoneNumber": "+31 20 555 0101"}


def settings(run_id):
    return LoadSettings(dataset_id="ds", dag_id="dag", run_id=run_id, pipeline_id=2)


def load(pipedrive_conn, ledger, lead, run_id, prefix):
    """One load of two events of ``lead``; returns (hook, result, plan's tokens)."""
    hook = PipedriveHook(pipedrive_conn)
    frame = activity_frame([lead], 2, prefix=prefix)
    planned = plan_activity_load(frame, ledger, "ds", 2, "per_event").tokens(hook.token_costs)
    result = ActivityLoader(hook, ledger, settings(run_id)).load(frame)
    return hook, result, planned


def person_of(sandbox, email):
    return next(p for p in sandbox.state()["persons"] if email in [e["value"] for e in p["emails"]])


def calls(hook, call):
    return hook.requests_by_call().get(call, 0)


def test_a_person_found_with_only_an_email_gets_its_name_and_phone(pipedrive_sandbox, pipedrive_conn, ledger_conn):
    PipedriveHook(pipedrive_conn).create_person({"name": "jane@acme.com",
                                                 "emails": [{"value": "jane@acme.com", "primary": True}]})
    hook, result, _ = load(pipedrive_conn, LedgerHook(ledger_conn), JANE, "run-1", "a")
    person = person_of(pipedrive_sandbox, "jane@acme.com")
    assert person["name"] == "Jane Doe" and [p["value"] for p in person["phones"]] == ["+31 20 555 0101"]
    assert result.counts["persons_updated"] == 1 and calls(hook, "PATCH /api/v2/persons/{id}") == 1


def test_a_phone_someone_typed_is_kept_and_not_looked_at_again_until_the_fact_changes(
        pipedrive_sandbox, pipedrive_conn, ledger_conn):
    PipedriveHook(pipedrive_conn).create_person({"name": "Jane D.", "emails": [{"value": "jane@acme.com"}],
                                                 "phones": [{"value": "+1 555 0199", "primary": True}]})
    ledger = LedgerHook(ledger_conn)
    hook, result, _ = load(pipedrive_conn, ledger, JANE, "run-1", "a")
    person = person_of(pipedrive_sandbox, "jane@acme.com")
    assert person["name"] == "Jane D." and [p["value"] for p in person["phones"]] == ["+1 555 0199"]
    assert result.counts["persons_kept"] == 1 and calls(hook, "PATCH /api/v2/persons/{id}") == 0
    # The same facts again: no read, no write: five tokens an activity.
    again, result, planned = load(pipedrive_conn, ledger, JANE, "run-2", "b")
    assert result.counts["persons_unchanged"] == 1 and again.tokens_spent == planned == 5 * 2
    # A new phone in LeadBoxer: looked at again, and still kept.
    later, result, _ = load(pipedrive_conn, ledger, {**JANE, "phoneNumber": "+31 6 1234 5678"}, "run-3", "c")
    assert calls(later, "GET /api/v2/persons/{id}") == 1 and calls(later, "PATCH /api/v2/persons/{id}") == 0
    assert [p["value"] for p in person_of(pipedrive_sandbox, "jane@acme.com")["phones"]] == ["+1 555 0199"]


def test_a_phone_the_sync_wrote_follows_leadboxer_and_the_plan_prices_it_exactly(
        pipedrive_sandbox, pipedrive_conn, ledger_conn):
    ledger = LedgerHook(ledger_conn)
    first, _, _ = load(pipedrive_conn, ledger, JANE, "run-1", "a")  # creates Jane with her phone
    assert calls(first, "PATCH /api/v2/persons/{id}") == 0
    moved = {**JANE, "phoneNumber": "+31 6 1234 5678"}
    hook, result, planned = load(pipedrive_conn, ledger, moved, "run-2", "b")
    assert [p["value"] for p in person_of(pipedrive_sandbox, "jane@acme.com")["phones"]] == ["+31 6 1234 5678"]
    assert result.counts["persons_updated"] == 1
    assert hook.tokens_spent == planned == 1 + 5 + 5 * 2  # read, update, two activities


@pytest.mark.parametrize("current, free", [
    ({"name": "jane@acme.com", "emails": [{"value": "jane@acme.com"}], "phones": []}, {"name", "phones"}),
    ({"name": "jane", "emails": [{"value": "jane@acme.com"}], "phones": [{"value": ""}]}, {"name", "phones"}),
    ({"name": "Jane D.", "emails": [{"value": "jane@acme.com"}], "phones": [{"value": "+1 555"}]}, set()),
])
def test_only_empty_fields_are_free(current, free):
    facts = activity_frame([JANE]).iloc[0]
    todo = changed(person_fields(facts, "jane@acme.com"), {})
    assert set(free_fields(todo, person_held(current), {})) == free


def test_a_name_standing_in_for_a_missing_one_is_never_sent():
    nameless = activity_frame([{"use_id": "u9", "email": "max@acme.com"}]).iloc[0]
    assert person_fields(nameless, "max@acme.com") == {}


ACME = {"organizationName": "Acme", "organizationDomain": "acme.com", "organizationCity": "Utrecht",
        "organizationCountry": "Netherlands", "organizationLinkedInUrl": "https://www.linkedin.com/company/acme"}


def org_named(sandbox, name):
    return next(o for o in sandbox.state()["organizations"] if o["name"] == name)


def test_an_organization_found_by_name_gets_its_address_website_and_linkedin_once_for_all_colleagues(
        pipedrive_sandbox, pipedrive_conn, ledger_conn):
    PipedriveHook(pipedrive_conn).create_organization({"name": "Acme"})
    hook = PipedriveHook(pipedrive_conn)
    colleagues = [{**JANE, **ACME}, {"use_id": "u2", "email": "joe@acme.com", **ACME,
                                      "organizationCity": "Amsterdam"}]
    result = ActivityLoader(hook, LedgerHook(ledger_conn), settings("run-1")).load(activity_frame(colleagues, 1))
    acme = org_named(pipedrive_sandbox, "Acme")
    assert (acme["address"]["value"], acme["website"], acme["linkedin"]) == (
        "Utrecht, Netherlands", "https://acme.com", "https://www.linkedin.com/company/acme")  # jane@ comes first
    assert result.counts["organizations_updated"] == 1 and calls(hook, "PATCH /api/v2/organizations/{id}") == 1


def test_a_website_someone_typed_is_kept_and_a_changed_city_is_priced_exactly(
        pipedrive_sandbox, pipedrive_conn, ledger_conn):
    PipedriveHook(pipedrive_conn).create_organization({"name": "Acme", "website": "https://acme.example"})
    ledger = LedgerHook(ledger_conn)
    load(pipedrive_conn, ledger, {**JANE, **ACME}, "run-1", "a")
    acme = org_named(pipedrive_sandbox, "Acme")
    assert acme["website"] == "https://acme.example" and acme["address"]["value"] == "Utrecht, Netherlands"
    hook, result, planned = load(pipedrive_conn, ledger, {**JANE, **ACME, "organizationCity": "Delft"}, "run-2", "b")
    assert org_named(pipedrive_sandbox, "Acme")["address"]["value"] == "Delft, Netherlands"
    assert result.counts["organizations_updated"] == 1 and result.counts["persons_unchanged"] == 1
    assert hook.tokens_spent == planned == 1 + 5 + 5 * 2  # read, update, two activities


def test_the_run_summary_says_what_was_kept_current_on_a_line_of_its_own():
    from leadboxer_pipedrive.operators.common import format_summary

    loaded = {"received": 2, "pushed": 2, "already_pushed": 0, "refused": 0, "activities_created": 2,
              "persons_updated": 1, "persons_kept": 1, "organizations_unchanged": 1}
    summary = {"interval_start": "a", "interval_end": "b", "entity": "event", "extracted": 2, "leads": 1,
               "pushed": 2, "already_pushed": 0, "rejected": 0, "rejected_invalid": 0, "rejected_by_pipedrive": 0,
               "rejected_by_reason": {}, "loaded": loaded, "tokens_spent": 16, "requests": 4, "rate_limited": 0}
    lines = format_summary(summary).splitlines()
    assert "resolved        activities_created=2" in lines
    assert "kept current    persons_updated=1, persons_kept=1, organizations_unchanged=1" in lines


def test_the_run_summary_names_leads_without_an_id_and_whole_segment_runs():
    from leadboxer_pipedrive.operators.common import format_summary

    base = {"interval_start": "a", "interval_end": "b", "pushed": 2, "already_pushed": 0, "rejected": 1,
            "rejected_invalid": 1, "rejected_by_pipedrive": 0, "rejected_by_reason": {"lead id (use_id) missing": 1},
            "loaded": {}, "tokens_spent": 10, "requests": 2, "rate_limited": 0}
    events = format_summary({**base, "entity": "event", "extracted": 3, "leads": 1, "leads_without_id": 1})
    assert "extracted       3 records: 2 events of 1 leads, and 1 without an id" in events.splitlines()
    segment = format_summary({**base, "entity": "lead", "extracted": 5, "leads": 5, "scope": "segment",
                              "deferred": 2, "segment_id": "14119",
                              "segment_progress": "2 of 5 members in Pipedrive; 2 left for the next runs (about 20 "
                                                  "tokens)"}).splitlines()
    assert "extracted       5 leads (the whole segment)" in segment
    assert ("deferred        2 (left for the next runs: the token budget, or the account index's first read)"
            in segment)
    assert ("segment         14119: 2 of 5 members in Pipedrive; 2 left for the next runs (about 20 tokens)"
            in segment)
