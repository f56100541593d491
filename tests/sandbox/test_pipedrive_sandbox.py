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
