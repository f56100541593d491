"""Behaviour of the Pipedrive sandbox (sandbox/pipedrive), over real HTTP on loopback."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from sandbox.pipedrive import COSTS, PipedriveSandbox

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "sandbox-token"
H = {"x-api-token": TOKEN}


@pytest.fixture
def pd():
    with PipedriveSandbox() as sandbox:
        yield sandbox


def get(sb, path, **kw):
    return requests.get(sb.url + path, headers=kw.pop("headers", H), timeout=5, **kw)


def post(sb, path, body, **kw):
    return requests.post(sb.url + path, json=body, headers=kw.pop("headers", H), timeout=5, **kw)


def new_person(sb, name="Jane Doe", emails=("jane@example.com",), **extra):
    body = {"name": name, "emails": [{"value": e} for e in emails], **extra}
    resp = post(sb, "/api/v2/persons", body)
    assert resp.status_code == 200, resp.text
    return resp.json()["data"]


def test_auth(pd):
    resp = requests.get(pd.url + "/api/v2/pipelines", timeout=5)
    assert resp.status_code == 401
    assert resp.json() == {"success": False, "error": "unauthorized access", "errorCode": 401,
                           "error_info": "Please check developers.pipedrive.com"}
    assert get(pd, "/api/v2/pipelines", headers={"x-api-token": "wrong"}).status_code == 401
    assert get(pd, "/api/v2/pipelines", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert pd.state()["counters"]["tokens_spent"] == 5


def test_search_person_by_secondary_email_case_insensitive(pd):
    org = post(pd, "/api/v2/organizations", {"name": "Acme BV"}).json()["data"]
    person = new_person(pd, emails=("jane@acme.com", "Jane.Private@Example.COM"), org_id=org["id"])
    assert person["emails"][0] == {"value": "jane@acme.com", "primary": True, "label": "work"}
    assert person["emails"][1]["primary"] is False
    new_person(pd, name="Other", emails=("myjane.private@example.com",))

    resp = get(pd, "/api/v2/persons/search",
               params={"term": "jane.private@example.com", "fields": "email", "exact_match": "true"})
    assert resp.status_code == 200
    items = resp.json()["data"]["items"]
    assert [i["item"]["id"] for i in items] == [person["id"]]
    item = items[0]["item"]
    assert isinstance(items[0]["result_score"], float)
    assert item == {"id": person["id"], "type": "person", "name": "Jane Doe", "phones": [],
                    "emails": ["jane@acme.com", "Jane.Private@Example.COM"], "visible_to": 3,
                    "owner": {"id": 1}, "organization": {"id": org["id"], "name": "Acme BV", "address": None},
                    "custom_fields": [], "notes": []}
    # without exact_match: substring match finds both
    resp = get(pd, "/api/v2/persons/search", params={"term": "jane.private@", "fields": "email"})
    assert len(resp.json()["data"]["items"]) == 2
    # bad boolean (v2 is strict)
    assert get(pd, "/api/v2/persons/search", params={"term": "jane", "exact_match": "1"}).status_code == 400
    # PATCH replaces the emails array
    patched = requests.patch(f"{pd.url}/api/v2/persons/{person['id']}", headers=H, timeout=5,
                             json={"emails": [{"value": "new@acme.com"}]}).json()["data"]
    assert [e["value"] for e in patched["emails"]] == ["new@acme.com"]


def test_search_lag_hides_then_reveals():
    with PipedriveSandbox(search_lag=0.4) as sb:
        person = new_person(sb)
        params = {"term": "jane@example.com", "fields": "email", "exact_match": "true"}
        assert get(sb, "/api/v2/persons/search", params=params).json()["data"]["items"] == []
        assert get(sb, f"/api/v2/persons/{person['id']}").status_code == 200  # GET by id sees it
        assert len(get(sb, "/api/v2/persons").json()["data"]) == 1  # so do lists
        time.sleep(0.45)
        assert len(get(sb, "/api/v2/persons/search", params=params).json()["data"]["items"]) == 1


def test_token_costs_and_daily_budget(pd):
    person = new_person(pd)  # 5
    assert get(pd, f"/api/v2/persons/{person['id']}").headers["x-token-cost"] == "1"
    resp = get(pd, "/api/v2/persons/search", params={"term": "jane"})
    assert resp.headers["x-token-cost"] == "20"
    assert get(pd, "/api/v2/deals").headers["x-token-cost"] == "10"
    resp = post(pd, "/api/v1/leads", {"title": "Lead", "person_id": person["id"]})
    assert resp.status_code == 201 and resp.headers["x-token-cost"] == "10"
    counters = pd.state()["counters"]
    assert counters["tokens_spent"] == 5 + 1 + 20 + 10 + 10
    assert counters["searches"] == 1
    assert counters["by_endpoint"]["GET /api/v2/persons/search"] == 1
    assert counters["by_endpoint"]["GET /api/v2/persons/{id}"] == 1
    assert COSTS[("GET", "/api/v2/persons/search")] == 20

    pd.configure(daily_budget=counters["tokens_spent"] + 3)
    resp = get(pd, "/api/v2/persons/search", params={"term": "jane"})
    assert resp.status_code == 429
    assert resp.json()["error"] == "Daily token budget exceeded"
    assert get(pd, f"/api/v2/persons/{person['id']}").status_code == 200  # 1 token still fits
    assert pd.state()["counters"]["tokens_spent"] == counters["tokens_spent"] + 1


def test_burst_limit_429_with_headers():
    with PipedriveSandbox(burst_limit=3, window=0.5) as sb:
        remaining = [get(sb, "/api/v2/pipelines").headers["x-ratelimit-remaining"] for _ in range(3)]
        assert remaining == ["2", "1", "0"]
        resp = get(sb, "/api/v2/pipelines")
        assert resp.status_code == 429
        assert resp.json()["success"] is False and resp.json()["error"] == "Request over limit"
        assert resp.headers["x-ratelimit-limit"] == "3"
        assert resp.headers["x-ratelimit-remaining"] == "0"
        assert int(resp.headers["x-ratelimit-reset"]) >= 1
        counters = sb.state()["counters"]
        assert counters["tokens_spent"] == 15  # the 429 was not charged
        assert counters["responses_by_status"] == {"200": 3, "429": 1}
        time.sleep(0.55)
        assert get(sb, "/api/v2/pipelines").status_code == 200


def test_search_limit_ten_per_window(pd):
    for _ in range(10):
        resp = get(pd, "/api/v2/organizations/search", params={"term": "acme"})
        assert resp.status_code == 200
        assert resp.headers["x-ratelimit-limit"] == "10"
    resp = get(pd, "/api/v2/persons/search", params={"term": "acme"})
    assert resp.status_code == 429
    assert resp.headers["x-ratelimit-limit"] == "10" and resp.headers["x-ratelimit-remaining"] == "0"
    ok = get(pd, "/api/v2/pipelines")  # the general limit still has room
    assert ok.status_code == 200 and ok.headers["x-ratelimit-limit"] == "100"
    assert pd.state()["counters"]["searches"] == 10


def test_fault_rules(pd):
    pd.add_fault({"kind": "status", "status": 503, "count": 2, "path": "^/api/v2/pipelines"})
    assert [get(pd, "/api/v2/pipelines").status_code for _ in range(3)] == [503, 503, 200]

    resp = post(pd, "/_sandbox/faults", {"kind": "status", "status": 429, "count": 1})
    assert resp.status_code == 200
    resp = get(pd, "/api/v2/stages")
    assert resp.status_code == 429
    assert {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"} <= set(resp.headers)
    assert int(resp.headers["x-ratelimit-reset"]) >= 1

    post(pd, "/_sandbox/faults", [{"kind": "drop", "count": 1}])
    with pytest.raises(requests.ConnectionError):
        get(pd, "/api/v2/pipelines")

    pd.add_fault({"kind": "slow", "delay": 0.3, "count": 1})
    start = time.monotonic()
    assert get(pd, "/api/v2/pipelines").status_code == 200
    assert time.monotonic() - start >= 0.3

    assert len(requests.get(pd.url + "/_sandbox/faults", timeout=5).json()["faults"]) == 4
    assert requests.delete(pd.url + "/_sandbox/faults", timeout=5).json()["faults"] == []
    counters = pd.state()["counters"]
    assert counters["tokens_spent"] == 5 * 2  # only the two answered pipelines calls were charged
    assert counters["responses_by_status"]["dropped"] == 1


def test_activity_person_id_is_read_only(pd):
    person = new_person(pd)
    resp = post(pd, "/api/v2/activities", {"subject": "Visit", "type": "task", "person_id": person["id"]})
    assert resp.status_code == 400
    assert resp.json() == {"success": False, "code": "ERR_BAD_REQUEST",
                           "error": "'person_id' is a read-only field. Add a primary participant to set "
                                    "'person_id' instead."}


def test_activity_participants_and_validation(pd):
    org = post(pd, "/api/v2/organizations", {"name": "Acme"}).json()["data"]
    person = new_person(pd, org_id=org["id"])
    body = {"subject": "Visited /pricing", "type": "task", "org_id": org["id"], "due_date": "2026-11-20",
            "due_time": "09:30", "done": True, "participants": [{"person_id": person["id"], "primary": True}]}
    resp = post(pd, "/api/v2/activities", body)
    assert resp.status_code == 200, resp.text
    activity = resp.json()["data"]
    assert activity["person_id"] == person["id"] and activity["org_id"] == org["id"]
    assert activity["participants"] == [{"person_id": person["id"], "primary": True}]
    assert activity["due_time"] == "09:30:00" and activity["done"] is True
    listed = get(pd, "/api/v2/activities", params={"person_id": person["id"], "done": "true"}).json()["data"]
    assert [a["id"] for a in listed] == [activity["id"]]
    assert get(pd, f"/api/v2/activities/{activity['id']}").json()["data"] == activity

    for bad in ({"type": "no_such_type"}, {"done": "true"}, {"busy": 1}, {"due_time": "9h30"},
                {"due_date": "20-11-2026"}, {"org_id": 999}, {"subject": "x" * 256},
                {"participants": [{"person_id": 999, "primary": True}]}):
        assert post(pd, "/api/v2/activities", {"subject": "s", "type": "task", **bad}).status_code == 400, bad


def test_deals_filter_by_person_and_status(pd):
    jane, john = new_person(pd), new_person(pd, name="John", emails=("john@example.com",))
    open_deal = post(pd, "/api/v2/deals", {"title": "Jane open", "person_id": jane["id"]}).json()["data"]
    post(pd, "/api/v2/deals", {"title": "Jane won", "person_id": jane["id"], "status": "won"})
    post(pd, "/api/v2/deals", {"title": "John open", "person_id": john["id"]})
    assert open_deal["pipeline_id"] == 1 and open_deal["stage_id"] == 1 and open_deal["status"] == "open"
    found = get(pd, "/api/v2/deals", params={"person_id": jane["id"], "status": "open"}).json()["data"]
    assert [d["title"] for d in found] == ["Jane open"]
    found = get(pd, "/api/v2/deals", params={"person_id": jane["id"], "status": "open,won"}).json()["data"]
    assert len(found) == 2
    in_pipeline = post(pd, "/api/v2/deals", {"title": "LB", "pipeline_id": 2}).json()["data"]
    assert in_pipeline["stage_id"] == 5
    assert post(pd, "/api/v2/deals", {"person_id": jane["id"]}).status_code == 400  # title required
    stages = get(pd, "/api/v2/stages", params={"pipeline_id": 2}).json()["data"]
    assert [s["id"] for s in stages] == [5, 6, 7]
    # cursor pagination
    page = get(pd, "/api/v2/deals", params={"limit": 2}).json()
    assert len(page["data"]) == 2
    rest = get(pd, "/api/v2/deals", params={"limit": 2, "cursor": page["additional_data"]["next_cursor"]}).json()
    assert len(rest["data"]) == 2 and "next_cursor" not in rest["additional_data"]


def test_v1_lead_create_and_list(pd):
    person = new_person(pd)
    label = post(pd, "/v1/leadLabels", {"name": "LeadBoxer", "color": "blue"}).json()["data"]
    body = {"title": "Jane Doe lead", "person_id": person["id"], "label_ids": [label["id"]],
            "value": {"amount": 100, "currency": "EUR"}, "origin_id": "leadboxer:abc"}
    resp = post(pd, "/api/v1/leads", body)
    assert resp.status_code == 201
    lead = resp.json()["data"]
    assert lead["source_name"] == "API" and lead["origin_id"] == "leadboxer:abc"
    assert lead["organization_id"] is None and lead["label_ids"] == [label["id"]]
    assert get(pd, f"/v1/leads/{lead['id']}").json()["data"] == lead  # /v1 alias
    assert post(pd, "/api/v1/leads", {"title": "no links"}).status_code == 400
    assert post(pd, "/api/v1/leads", {**body, "label_ids": ["f08b42a0-4e75-11ea-9643-03698ef1cfd6"]}).status_code == 400
    listed = get(pd, "/api/v1/leads", params={"limit": 1}).json()
    assert listed["additional_data"]["pagination"]["more_items_in_collection"] is False
    me = get(pd, "/api/v1/users/me").json()["data"]
    assert me["id"] == 1 and me["company_name"] == "Sandbox Company"
    types = get(pd, "/api/v1/activityTypes").json()["data"]
    assert [t["key_string"] for t in types] == ["call", "meeting", "task", "deadline", "email", "lunch"]


def test_validation_errors(pd):
    assert post(pd, "/api/v2/persons", {"emails": [{"value": "x@y.z"}]}).status_code == 400  # no name
    assert post(pd, "/api/v2/persons", {"name": "x" * 256}).status_code == 400
    resp = post(pd, "/api/v2/persons", {"name": 42})
    assert resp.status_code == 400 and resp.json()["code"] == "ERR_BAD_REQUEST"
    assert post(pd, "/api/v2/persons", {"name": "Ok", "unknown_field": 1}).status_code == 200
    missing = get(pd, "/api/v2/persons/999")
    assert missing.status_code == 404
    assert missing.json()["error_info"] == "Please check developers.pipedrive.com"
    assert get(pd, "/api/v2/nothing-here").status_code == 404


def test_reset(pd):
    person = new_person(pd)
    post(pd, "/api/v2/deals", {"title": "D", "person_id": person["id"]})
    assert requests.post(pd.url + "/_sandbox/reset", timeout=5).status_code == 200
    state = requests.get(pd.url + "/_sandbox/state", timeout=5).json()
    assert state["persons"] == [] and state["deals"] == [] and state["leads"] == []
    assert state["counters"]["requests"] == 0 and state["counters"]["tokens_spent"] == 0
    assert len(state["stages"]) == 7 and state["config"]["burst_limit"] == 100
    assert get(pd, f"/api/v2/persons/{person['id']}").status_code == 404


def test_cli_process():
    proc = subprocess.Popen([sys.executable, "-m", "sandbox.pipedrive", "--port", "0", "--burst-limit", "7"],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("Pipedrive sandbox listening on http://127.0.0.1:")
        url = line.rsplit(" ", 1)[1]
        resp = requests.get(url + "/api/v2/pipelines", headers=H, timeout=5)
        assert resp.status_code == 200 and resp.headers["x-ratelimit-limit"] == "7"
    finally:
        proc.terminate()
        proc.wait(timeout=5)


def patch(sb, path, body, **kw):
    return requests.patch(sb.url + path, json=body, headers=kw.pop("headers", H), timeout=5, **kw)


SCORE = "8119be8a5b1769b32d76c57f9a88ca34499dfa5c"  # sha1("LeadBoxer lead score")
CARD = "3bcef60799519065199bace1f39b6f471d968c83"  # sha1("LeadBoxer lead card")
CUSTOM_CODES = {
    "LeadBoxer lead score": SCORE,
    "LeadBoxer lead card": CARD,
    "LeadBoxer first channel": "6599859afcdc863c8951245bf3a93fbba6143a0a",
    "LeadBoxer last channel": "65632917c8bb377cae8736a581d570ae089b2709",
    "LeadBoxer visits": "15951ca3b39f6284aaaaafef55de6eee240e34b3",
    "LeadBoxer country": "cb6b08892c469582a429e748fbe8c00351e280e7",
    "LeadBoxer last visit": "b6e5b63dd6eec6de308cd309675ab8f3345990a4",
}


def test_deal_fields_seeded_and_paginated(pd):
    resp = get(pd, "/api/v2/dealFields")
    assert resp.status_code == 200 and resp.headers["x-token-cost"] == "10"
    body = resp.json()
    fields = body["data"]
    assert "next_cursor" not in body["additional_data"]
    by_code = {f["field_code"]: f for f in fields}
    for code in ("title", "value", "currency", "person_id", "org_id", "pipeline_id", "stage_id", "status",
                 "expected_close_date", "label_ids", "owner_id"):
        assert by_code[code]["is_custom_field"] is False, code
    custom = {f["field_name"]: f for f in fields if f["is_custom_field"]}
    assert {name: f["field_code"] for name, f in custom.items()} == CUSTOM_CODES
    assert custom["LeadBoxer lead score"] == {
        "field_name": "LeadBoxer lead score", "field_code": SCORE, "field_type": "double", "options": None,
        "subfields": None, "is_custom_field": True, "is_optional_response_field": False}
    assert custom["LeadBoxer country"]["field_type"] == "varchar"
    assert custom["LeadBoxer visits"]["field_type"] == "double"
    assert [s["field_code"] for s in by_code["value"]["subfields"]] == ["value", "currency"]
    assert "ui_visibility" not in by_code["title"]
    # cursor pagination walks every field exactly once
    seen, cursor = [], None
    while True:
        params = {"limit": 7, **({"cursor": cursor} if cursor else {})}
        page = get(pd, "/api/v2/dealFields", params=params).json()
        seen += [f["field_code"] for f in page["data"]]
        cursor = page["additional_data"].get("next_cursor")
        if not cursor:
            break
    assert seen == [f["field_code"] for f in fields]
    with_ui = get(pd, "/api/v2/dealFields", params={"include_fields": "ui_visibility,required_fields"}).json()
    title = next(f for f in with_ui["data"] if f["field_code"] == "title")
    assert title["ui_visibility"]["show_in_pipelines"]["show_in_all"] is True
    assert title["required_fields"]["enabled"] is True and "important_fields" not in title
    assert get(pd, "/api/v2/dealFields", params={"include_fields": "bogus"}).status_code == 400
    assert get(pd, "/api/v2/dealFields", params={"limit": 0}).status_code == 400


def test_lead_fields_v1(pd):
    resp = get(pd, "/api/v1/leadFields")
    assert resp.status_code == 200 and resp.headers["x-token-cost"] == "20"
    fields = resp.json()["data"]
    custom = {f["name"]: f["key"] for f in fields if f["edit_flag"]}
    assert custom == CUSTOM_CODES
    assert next(f for f in fields if f["key"] == SCORE)["field_type"] == "double"
    page = get(pd, "/v1/leadFields", params={"start": 0, "limit": 2}).json()
    assert len(page["data"]) == 2
    assert page["additional_data"]["more_items_in_collection"] is True
    assert page["additional_data"]["pagination"]["next_start"] == 2


def test_lead_labels_seeded_and_reseeded(pd):
    expected = [("82d37986-2906-56bb-8111-c0d14cea66d3", "Hot", "red"),
                ("fcc9e0a7-d5d7-5679-bbd2-10e0bc4057a5", "Warm", "yellow"),
                ("79a5d723-c9fb-5afd-b92f-25084f63f34b", "Cold", "blue")]
    labels = get(pd, "/api/v1/leadLabels").json()["data"]
    assert [(x["id"], x["name"], x["color"]) for x in labels] == expected
    post(pd, "/api/v1/leadLabels", {"name": "LeadBoxer", "color": "green"})
    assert len(get(pd, "/api/v1/leadLabels").json()["data"]) == 4
    pd.reset()
    labels = get(pd, "/api/v1/leadLabels").json()["data"]
    assert [(x["id"], x["name"], x["color"]) for x in labels] == expected
    person = new_person(pd)
    lead = post(pd, "/api/v1/leads", {"title": "Hot lead", "person_id": person["id"],
                                      "label_ids": [expected[0][0]]}).json()["data"]
    assert lead["label_ids"] == [expected[0][0]]


def test_lead_custom_fields_at_the_root(pd):
    person = new_person(pd)
    body = {"title": "Lead", "person_id": person["id"], SCORE: 42.5, CARD: "https://example.com/card/1",
            "not_a_custom_field": "ignored"}
    resp = post(pd, "/api/v1/leads", body)
    assert resp.status_code == 201, resp.text
    lead = resp.json()["data"]
    assert lead[SCORE] == 42.5 and lead[CARD] == "https://example.com/card/1"
    assert "not_a_custom_field" not in lead and CUSTOM_CODES["LeadBoxer country"] not in lead
    assert "_custom" not in lead
    assert get(pd, f"/api/v1/leads/{lead['id']}").json()["data"] == lead
    assert get(pd, "/api/v1/leads").json()["data"] == [lead]
    assert pd.state()["leads"] == [lead]

    updated = patch(pd, f"/api/v1/leads/{lead['id']}", {SCORE: 50, CARD: None,
                                                         CUSTOM_CODES["LeadBoxer country"]: "NL"}).json()["data"]
    assert updated[SCORE] == 50 and CARD not in updated and updated[CUSTOM_CODES["LeadBoxer country"]] == "NL"
    assert updated["title"] == "Lead"

    unknown = "0" * 40
    for bad in ({unknown: "x"}, {unknown.upper(): 1}, {SCORE: "high"}, {CARD: 5}, {CARD: "x" * 256},
                {SCORE: True}):
        resp = post(pd, "/api/v1/leads", {"title": "Bad", "person_id": person["id"], **bad})
        assert resp.status_code == 400, bad
        assert resp.json()["success"] is False and resp.json()["code"] == "ERR_BAD_REQUEST"
        assert patch(pd, f"/api/v1/leads/{lead['id']}", bad).status_code == 400, bad
    resp = post(pd, "/api/v1/leads", {"title": "Bad", "person_id": person["id"], unknown: "x"})
    assert unknown in resp.json()["error"] and "custom field" in resp.json()["error"]
    # a rejected PATCH changed nothing
    assert get(pd, f"/api/v1/leads/{lead['id']}").json()["data"] == updated


def test_lead_patch_null_unsets_and_keeps_a_link(pd):
    org = post(pd, "/api/v2/organizations", {"name": "Acme"}).json()["data"]
    person = new_person(pd, org_id=org["id"])
    lead = post(pd, "/api/v1/leads", {"title": "L", "person_id": person["id"], "organization_id": org["id"],
                                      "value": {"amount": 10, "currency": "EUR"},
                                      "expected_close_date": "2026-12-31"}).json()["data"]
    url = f"/api/v1/leads/{lead['id']}"
    resp = patch(pd, url, {"person_id": None, "value": None, "expected_close_date": None})
    assert resp.status_code == 200, resp.text
    data = resp.json()["data"]
    assert data["person_id"] is None and data["value"] is None and data["expected_close_date"] is None
    assert data["organization_id"] == org["id"]
    # the organization is now the only link: removing it is refused, and nothing changes
    resp = patch(pd, url, {"organization_id": None})
    assert resp.status_code == 400 and "person or an organization" in resp.json()["error"]
    assert patch(pd, url, {"organization_id": None, "person_id": None}).status_code == 400
    assert get(pd, url).json()["data"]["organization_id"] == org["id"]
    # swap: set the person and drop the organization in one call
    data = patch(pd, url, {"person_id": person["id"], "organization_id": None}).json()["data"]
    assert data["person_id"] == person["id"] and data["organization_id"] is None
    assert patch(pd, url, {"person_id": 999}).status_code == 400
    assert patch(pd, url, {"title": None}).status_code == 400
    assert patch(pd, url, {"value": {"amount": 5}}).status_code == 400


def test_list_leads_person_and_organization_filters(pd):
    org = post(pd, "/api/v2/organizations", {"name": "Acme"}).json()["data"]
    jane, john = new_person(pd), new_person(pd, name="John", emails=("john@example.com",))
    a = post(pd, "/api/v1/leads", {"title": "A", "person_id": jane["id"]}).json()["data"]
    b = post(pd, "/api/v1/leads", {"title": "B", "person_id": john["id"], "organization_id": org["id"]}).json()["data"]
    c = post(pd, "/api/v1/leads", {"title": "C", "organization_id": org["id"]}).json()["data"]
    ids = lambda params: [x["id"] for x in get(pd, "/api/v1/leads", params=params).json()["data"]]  # noqa: E731
    assert ids({"person_id": jane["id"]}) == [a["id"]]
    assert ids({"organization_id": org["id"]}) == [b["id"], c["id"]]
    assert ids({"organization_id": org["id"], "person_id": john["id"]}) == [b["id"]]
    assert ids({"person_id": 999}) == []
    assert get(pd, "/api/v1/leads", params={"person_id": "x"}).status_code == 400


def test_search_leads(pd):
    pd.configure(search_burst_limit=50)  # more than 10 searches below
    org = post(pd, "/api/v2/organizations", {"name": "Acme"}).json()["data"]
    jane = new_person(pd, org_id=org["id"])
    john = new_person(pd, name="John", emails=("john@example.com",))
    a = post(pd, "/api/v1/leads", {"title": "LeadBoxer: Jane Doe", "person_id": jane["id"],
                                   "organization_id": org["id"], "value": {"amount": 100, "currency": "EUR"},
                                   CUSTOM_CODES["LeadBoxer country"]: "Netherlands"}).json()["data"]
    b = post(pd, "/api/v1/leads", {"title": "LeadBoxer: John", "person_id": john["id"],
                                   "value": {"amount": 9.5, "currency": "USD"}}).json()["data"]
    resp = get(pd, "/api/v2/leads/search", params={"term": "leadboxer"})
    assert resp.status_code == 200 and resp.headers["x-token-cost"] == "20"
    assert resp.headers["x-ratelimit-limit"] == "50"  # the search window (raised above)
    items = resp.json()["data"]["items"]
    assert {i["item"]["id"] for i in items} == {a["id"], b["id"]}
    item_a = next(i["item"] for i in items if i["item"]["id"] == a["id"])
    assert item_a == {"id": a["id"], "type": "lead", "title": "LeadBoxer: Jane Doe", "owner": {"id": 1},
                      "person": {"id": jane["id"], "name": "Jane Doe"},
                      "organization": {"id": org["id"], "name": "Acme"}, "phones": [],
                      "emails": ["jane@example.com"], "custom_fields": [], "notes": [], "value": 100,
                      "currency": "EUR", "visible_to": 3, "is_archived": False}
    item_b = next(i["item"] for i in items if i["item"]["id"] == b["id"])
    assert "value" not in item_b and item_b["currency"] == "USD"  # 9.5 is not an integer (spec)

    def found(**params):
        return [i["item"]["id"] for i in get(pd, "/api/v2/leads/search", params=params).json()["data"]["items"]]

    assert found(term="leadboxer", person_id=john["id"]) == [b["id"]]
    assert found(term="leadboxer", organization_id=org["id"]) == [a["id"]]
    assert found(term="leadboxer: john", exact_match="true") == [b["id"]]
    assert found(term="leadboxer", exact_match="true") == []
    assert found(term="netherlands", fields="custom_fields") == [a["id"]]
    assert found(term="netherlands", fields="title,notes") == []
    custom = get(pd, "/api/v2/leads/search", params={"term": "nether", "fields": "custom_fields"}).json()
    assert custom["data"]["items"][0]["item"]["custom_fields"] == ["Netherlands"]
    page = get(pd, "/api/v2/leads/search", params={"term": "leadboxer", "limit": 1}).json()
    assert len(page["data"]["items"]) == 1
    rest = get(pd, "/api/v2/leads/search",
               params={"term": "leadboxer", "limit": 1, "cursor": page["additional_data"]["next_cursor"]}).json()
    assert len(rest["data"]["items"]) == 1 and "next_cursor" not in rest["additional_data"]
    assert rest["data"]["items"][0]["item"]["id"] != page["data"]["items"][0]["item"]["id"]
    seen = get(pd, "/api/v2/leads/search", params={"term": "john", "include_fields": "lead.was_seen"}).json()
    assert seen["data"]["items"][0]["item"]["was_seen"] is False
    for bad in ({"term": "l"}, {"term": "lead", "fields": "email"}, {"term": "lead", "exact_match": "yes"},
                {"term": "lead", "person_id": "x"}, {}):
        assert get(pd, "/api/v2/leads/search", params=bad).status_code == 400, bad


def test_search_leads_respects_search_lag():
    with PipedriveSandbox(search_lag=0.4) as sb:
        person = new_person(sb)
        post(sb, "/api/v1/leads", {"title": "Fresh lead", "person_id": person["id"]})
        assert get(sb, "/api/v2/leads/search", params={"term": "fresh"}).json()["data"]["items"] == []
        time.sleep(0.45)
        assert len(get(sb, "/api/v2/leads/search", params={"term": "fresh"}).json()["data"]["items"]) == 1


DOMAIN = "9b10914d8b0a097ace7176e8973f5c3dee92bb44"  # sha1("Domain"), a seeded organization custom field


def test_patch_organization(pd):
    fields = get(pd, "/api/v2/organizationFields").json()["data"]
    parent = next(f["field_code"] for f in fields if f["field_name"] == "Parent company domain")
    org = post(pd, "/api/v2/organizations", {"name": "Acme BV", "visible_to": 7, "label_ids": [1],
                                             "custom_fields": {DOMAIN: "acme.example", parent: "holding.example"}},
               ).json()["data"]
    url = f"/api/v2/organizations/{org['id']}"
    assert get(pd, url).json() == {"success": True, "data": org}
    pd.app.store.organizations.get(org["id"])["update_time"] = "2000-01-01T00:00:00Z"

    address = {"value": "Main St 1, Amsterdam", "locality": "Amsterdam", "country": "Netherlands"}
    resp = patch(pd, url, {"address": address, "website": "https://acme.example",
                           "linkedin": "https://www.linkedin.com/company/acme",
                           "custom_fields": {DOMAIN: "www.acme.example", parent: None}})
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-token-cost"] == "5" and COSTS[("PATCH", "/api/v2/organizations/{id}")] == 5
    body = resp.json()
    assert body["success"] is True and body["data"] == get(pd, url).json()["data"]
    data = body["data"]
    assert data["address"] == address and data["website"] == "https://acme.example"
    assert data["linkedin"] == "https://www.linkedin.com/company/acme"
    assert data["custom_fields"] == {DOMAIN: "www.acme.example"}  # merged; null cleared the parent domain
    kept = ("id", "name", "owner_id", "add_time", "visible_to", "label_ids", "industry", "is_deleted")
    assert {k: data[k] for k in kept} == {k: org[k] for k in kept}
    assert data["update_time"] != "2000-01-01T00:00:00Z"

    # a custom field not named in the body is kept; null clears website; name may change
    data = patch(pd, url, {"name": "Acme Holding", "website": None, "industry": 3}).json()["data"]
    assert data["name"] == "Acme Holding" and data["website"] is None and data["industry"] == 3
    assert data["custom_fields"] == {DOMAIN: "www.acme.example"} and data["address"] == address
    assert pd.state()["counters"]["by_endpoint"]["PATCH /api/v2/organizations/{id}"] == 2

    missing = patch(pd, "/api/v2/organizations/999999", {"name": "Nobody"})
    assert missing.status_code == 404
    assert missing.json() == {"success": False, "error": "Organization not found",
                              "error_info": "Please check developers.pipedrive.com", "data": None,
                              "additional_data": None}
    for bad in ({"website": 42}, {"linkedin": ["x"]}, {"industry": "IT"}, {"industry": True}, {"name": ""},
                {"name": None}, {"name": 5}, {"owner_id": "1"}, {"visible_to": 2}, {"label_ids": ["a"]},
                {"address": "Main St 1"}, {"address": None}, {"address": {"locality": 5}},
                {"address": {"value": None}}, {"custom_fields": {"0" * 40: "x"}}, {"custom_fields": {DOMAIN: 5}},
                {"custom_fields": None}, [1]):
        resp = patch(pd, url, bad)
        assert resp.status_code == 400, bad
        assert resp.json()["success"] is False and resp.json()["code"] == "ERR_BAD_REQUEST", bad
    assert get(pd, url).json()["data"] == data  # the rejected PATCHes changed nothing
