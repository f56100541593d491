"""One paginator for every paged read: each page in order, and a read that cannot reach its end (a
repeated cursor, an empty page claiming more, a body that is not a page) is an error naming the
endpoint, never an endless loop or a silent end. Against the sandboxes, each paginated endpoint the
hooks read is served with a repeating cursor."""

from datetime import UTC, datetime

import pytest

from leadboxer_pipedrive.hooks.leadboxer import LeadBoxerHook
from leadboxer_pipedrive.hooks.pagination import CURSOR, NEXT_TOKEN, OFFSET, SEARCH, PaginationError, read_pages
from leadboxer_pipedrive.hooks.pipedrive import PipedriveHook
from sandbox.leadboxer import DEFAULT_SEGMENT_ID, DEFAULT_SITE


def read(bodies, paginator, asked=None):
    """Every page read from ``bodies`` in turn; ``asked`` collects each request's params."""
    bodies, asked = iter(bodies), [] if asked is None else asked

    def get(page_params):
        asked.append(page_params)
        return next(bodies)
    return list(read_pages(get, "API", "/items", {}, paginator))


def v2(rows, cursor=None):
    return {"success": True, "data": rows, "additional_data": {"next_cursor": cursor}}


def v1(rows, more, next_start=None):
    return {"success": True, "data": rows,
            "additional_data": {"pagination": {"more_items_in_collection": more, "next_start": next_start}}}


def test_each_paginator_reads_every_page_in_order():
    asked = []
    assert read([v2([1], "a"), v2([2], "b"), v2([3])], CURSOR, asked) == [[1], [2], [3]]
    assert [p.get("cursor") for p in asked] == [None, "a", "b"]
    asked = []
    assert read([{"data": [1], "nextToken": "t"}, {"data": None}], NEXT_TOKEN, asked) == [[1], []]
    assert asked[1]["nextToken"] == "t"
    search = {"data": {"items": [{"item": {"id": 1}}]}, "additional_data": {"next_cursor": None}}
    assert read([search], SEARCH) == [[{"id": 1}]]
    # v1: next_start as given, else start + rows read; the first request starts at 0.
    asked = []
    assert read([v1([1, 2], True, 2), v1([3], True), v1([4], False)], OFFSET, asked) == [[1, 2], [3], [4]]
    assert [p["start"] for p in asked] == [0, 2, 3]


@pytest.mark.parametrize("paginator, bodies", [
    (CURSOR, [v2([1], "a"), v2([2], "b"), v2([3], "a")]),
    (NEXT_TOKEN, [{"data": [1], "nextToken": "t"}, {"data": [2], "nextToken": "t"}]),
    (OFFSET, [v1([1], True, 1), v1([2], True, 1)]),
    (SEARCH, [{"data": {"items": [{"item": {"id": 1}}]}, "additional_data": {"next_cursor": "c"}}] * 2),
])
def test_a_repeated_cursor_is_an_error_naming_the_endpoint(paginator, bodies):
    with pytest.raises(PaginationError, match=r"^API GET /items -> 200: page \d: next-page cursor .* is repeated"):
        read(bodies, paginator)


@pytest.mark.parametrize("paginator, body", [
    (CURSOR, v2([], "more")),
    (NEXT_TOKEN, {"data": [], "nextToken": "more"}),
    (OFFSET, v1([], True, 500)),
])
def test_an_empty_page_that_claims_more_is_an_error(paginator, body):
    with pytest.raises(PaginationError, match="page 1: the page is empty but says there are more"):
        read([body], paginator)


@pytest.mark.parametrize("paginator, body", [
    (CURSOR, {"data": {"id": 1}}),
    (NEXT_TOKEN, {"data": "rows"}),
    (SEARCH, {"data": {"items": [{"id": 1}]}}),  # no "item": never read as "nothing found"
    (SEARCH, {"data": None}),
])
def test_a_body_that_is_not_a_page_is_an_error(paginator, body):
    with pytest.raises(PaginationError, match="API GET /items"):
        read([body], paginator)


# -- every paginated endpoint the hooks read, served with a repeating cursor --------------------------

SINCE = datetime(2026, 11, 20, tzinfo=UTC)

PIPEDRIVE_READS = {
    "/api/v2/persons": lambda hook: hook.list_persons(),
    "/api/v2/organizations": lambda hook: hook.list_organizations(),
    "/api/v2/organizationFields": lambda hook: hook.list_fields("organization"),
    "/api/v2/deals": lambda hook: hook.list_deals(),
    "/api/v2/pipelines": lambda hook: hook.list_pipelines(),
    "/api/v2/stages": lambda hook: hook.list_stages(1),
    "/api/v2/activities": lambda hook: hook.list_activities(),
    "/api/v2/dealFields": lambda hook: hook.list_fields("deal"),
    "/api/v2/persons/search": lambda hook: hook.search_persons_by_email("jane@acme.com"),
    "/api/v2/organizations/search": lambda hook: hook.search_organizations_by_name("Acme"),
    "/api/v1/leads": lambda hook: hook.list_leads(),
}


@pytest.mark.parametrize("path", PIPEDRIVE_READS)
def test_a_pipedrive_list_whose_cursor_repeats_fails_naming_it(path, pipedrive_sandbox, pipedrive_conn):
    hook = PipedriveHook(pipedrive_conn())
    # One record of each kind, so that every list has a first page to repeat.
    person = hook.create_person({"name": "Jane", "emails": [{"value": "jane@acme.com", "primary": True}]})
    hook.create_organization({"name": "Acme"})
    deal = hook.create_deal({"title": "Acme deal", "person_id": person["id"]})
    participants = [{"person_id": person["id"], "primary": True}]
    hook.create_activity({"subject": "Call", "type": "task", "participants": participants, "deal_id": deal["id"]})
    hook.create_lead({"title": "Acme lead", "person_id": person["id"]})
    hook.requests_sent = 0
    pipedrive_sandbox.add_fault({"kind": "repeat_cursor", "path": f"^{path}$"})
    repeated = rf"^Pipedrive GET {path} -> 200: page \d: next-page cursor .* is repeated"
    with pytest.raises(PaginationError, match=repeated):
        PIPEDRIVE_READS[path](hook)
    assert hook.requests_sent <= 3  # the second answer's cursor is already the repeat


LEADBOXER_READS = {
    "/v1/leads": lambda hook, lead: list(hook.iter_leads_seen_since(DEFAULT_SITE, DEFAULT_SEGMENT_ID, SINCE)),
    "/v1/leads/sessions": lambda hook, lead: list(hook.iter_sessions(DEFAULT_SITE, lead["use_id"])),
    "/v1/leads/events": lambda hook, lead: list(hook.iter_events(DEFAULT_SITE, lead["sessions"][0]["session_id"])),
}


@pytest.mark.parametrize("path", LEADBOXER_READS)
def test_a_leadboxer_list_whose_token_repeats_fails_naming_it(path, leadboxer_sandbox, leadboxer_conn):
    hook = LeadBoxerHook(leadboxer_conn())
    lead = next(lead for lead in leadboxer_sandbox.data["leads"] if lead["sessions"])
    leadboxer_sandbox.add_fault({"kind": "repeat_cursor", "path": f"^{path}$"})
    repeated = rf"^LeadBoxer GET {path} -> 200: page \d: next-page cursor .* is repeated"
    with pytest.raises(PaginationError, match=repeated):
        LEADBOXER_READS[path](hook, lead)
