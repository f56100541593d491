"""Pipedrive sandbox: person fields, contact sync, organization industry, deal updates and typed custom
field values, over real HTTP on loopback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import requests

from sandbox.pipedrive import COSTS, PipedriveSandbox
from sandbox.pipedrive.seeds import INDUSTRIES, field_code

ROOT = Path(__file__).resolve().parents[2]
H = {"x-api-token": "sandbox-token"}
CONTACT_SYNC = ("im", "postal_address", "notes", "birthday", "job_title")
SCORE = field_code("LeadBoxer lead score")
CARD = field_code("LeadBoxer lead card")
LAST_VISIT = field_code("LeadBoxer last visit")
CHANNEL = field_code("LeadBoxer first channel")
COUNTRY = field_code("LeadBoxer country")  # a deal varchar field


@pytest.fixture
def pd():
    with PipedriveSandbox() as sandbox:
        yield sandbox


@pytest.fixture
def no_sync():
    with PipedriveSandbox(contact_sync=False) as sandbox:
        yield sandbox


def call(sb, method, path, body=None, **kw):
    return requests.request(method, sb.url + path, json=body, headers=H, timeout=5, **kw)


def ok(resp):
    assert resp.status_code == 200, resp.text
    return resp.json()["data"]


def refused(resp, *words):
    """A 400 in the v2 shape whose message holds every word."""
    assert resp.status_code == 400, resp.text
    body = resp.json()
    assert body["success"] is False and body["code"] == "ERR_BAD_REQUEST", body
    for word in words:
        assert word in body["error"], (word, body["error"])
    return body["error"]


# ----------------------------------------------------------------------------- personFields

def test_person_fields_list_standard_and_custom_fields(pd):
    resp = call(pd, "GET", "/api/v2/personFields")
    assert resp.status_code == 200 and resp.headers["x-token-cost"] == "10"
    assert COSTS[("GET", "/api/v2/personFields")] == 10
    fields = resp.json()["data"]
    by_code = {f["field_code"]: f for f in fields}
    for code, ftype in (("id", "int"), ("name", "varchar"), ("owner_id", "user"), ("org_id", "org"),
                        ("emails", "varchar"), ("phones", "phone"), ("label_ids", "set"),
                        ("visible_to", "visible_to"), ("add_time", "date"), ("update_time", "date"),
                        ("job_title", "varchar"), ("postal_address", "address"), ("notes", "text"),
                        ("birthday", "date"), ("im", "varchar")):
        assert by_code[code]["field_type"] == ftype and by_code[code]["is_custom_field"] is False, code
    custom = {f["field_name"]: f for f in fields if f["is_custom_field"]}
    assert {name: (f["field_code"], f["field_type"]) for name, f in custom.items()} == {
        "LeadBoxer lead score": (SCORE, "double"), "LeadBoxer lead card": (CARD, "varchar"),
        "LeadBoxer last visit": (LAST_VISIT, "date"), "LeadBoxer first channel": (CHANNEL, "enum")}
    assert custom["LeadBoxer first channel"]["options"] == [
        {"id": 1, "label": "direct"}, {"id": 2, "label": "organic"}, {"id": 3, "label": "social"},
        {"id": 4, "label": "email"}, {"id": 5, "label": "referral"}, {"id": 6, "label": "paid"}]
    assert set(custom["LeadBoxer lead score"]) == {"field_name", "field_code", "field_type", "options", "subfields",
                                                   "is_custom_field", "is_optional_response_field"}
    # paging and include_fields as the other field lists
    page = call(pd, "GET", "/api/v2/personFields", params={"limit": 4, "include_fields": "required_fields"}).json()
    assert len(page["data"]) == 4 and page["data"][1]["required_fields"]["enabled"] is True  # name
    rest = call(pd, "GET", "/api/v2/personFields",
                params={"limit": 500, "cursor": page["additional_data"]["next_cursor"]}).json()
    assert [f["field_code"] for f in page["data"] + rest["data"]] == [f["field_code"] for f in fields]
    refused(call(pd, "GET", "/api/v2/personFields", params={"include_fields": "bogus"}), "include_fields")
    assert pd.state()["counters"]["by_endpoint"]["GET /api/v2/personFields"] == 4


def test_new_deal_and_organization_custom_fields(pd):
    deal_fields = {f["field_name"]: f for f in ok(call(pd, "GET", "/api/v2/dealFields")) if f["is_custom_field"]}
    assert deal_fields["LeadBoxer last visit"]["field_type"] == "date"
    org_fields = {f["field_name"]: f for f in ok(call(pd, "GET", "/api/v2/organizationFields"))}
    assert org_fields["LeadBoxer lead score"]["field_code"] == SCORE
    assert org_fields["LeadBoxer lead score"]["field_type"] == "double"
    assert org_fields["Domain"]["field_code"] == "9b10914d8b0a097ace7176e8973f5c3dee92bb44"  # kept


# ----------------------------------------------------------------------------- contact sync

def test_contact_sync_fields_when_enabled(pd):
    person = ok(call(pd, "POST", "/api/v2/persons", {
        "name": "Jane", "job_title": "CTO", "notes": "met at a fair", "birthday": "1990-02-28",
        "postal_address": {"value": "Main St 1"}, "im": [{"value": "jane.skype"}]}))
    assert person["job_title"] == "CTO" and person["birthday"] == "1990-02-28"
    assert person["im"] == [{"value": "jane.skype", "primary": True, "label": "skype"}]
    assert ok(call(pd, "PATCH", f"/api/v2/persons/{person['id']}", {"job_title": "CEO"}))["job_title"] == "CEO"


def test_without_contact_sync_the_fields_do_not_exist(no_sync):
    codes = {f["field_code"] for f in ok(call(no_sync, "GET", "/api/v2/personFields"))}
    assert not codes & set(CONTACT_SYNC) and {"name", "emails", CHANNEL} <= codes
    person = ok(call(no_sync, "POST", "/api/v2/persons", {"name": "Jane"}))
    assert not set(person) & set(CONTACT_SYNC)
    assert not set(ok(call(no_sync, "GET", f"/api/v2/persons/{person['id']}"))) & set(CONTACT_SYNC)
    assert not set(ok(call(no_sync, "GET", "/api/v2/persons"))[0]) & set(CONTACT_SYNC)
    assert not set(no_sync.state()["persons"][0]) & set(CONTACT_SYNC)
    for key, value in (("job_title", "CTO"), ("notes", None), ("im", []), ("birthday", "1990-01-01"),
                       ("postal_address", {"value": "x"})):
        refused(call(no_sync, "POST", "/api/v2/persons", {"name": "X", key: value}),
                f"'{key}'", "contact sync is not enabled")
        refused(call(no_sync, "PATCH", f"/api/v2/persons/{person['id']}", {key: value}), f"'{key}'")
    assert len(ok(call(no_sync, "GET", "/api/v2/persons"))) == 1  # the refused POSTs made nothing
    no_sync.reset()
    assert "job_title" not in {f["field_code"] for f in ok(call(no_sync, "GET", "/api/v2/personFields"))}


def test_cli_no_contact_sync():
    proc = subprocess.Popen([sys.executable, "-m", "sandbox.pipedrive", "--port", "0", "--no-contact-sync"],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip().rsplit(" ", 1)[1]
        fields = requests.get(url + "/api/v2/personFields", headers=H, timeout=5).json()["data"]
        assert "job_title" not in {f["field_code"] for f in fields}
    finally:
        proc.terminate()
        proc.wait(timeout=5)


# ----------------------------------------------------------------------------- organization industry

def test_organization_industry_is_an_option_id(pd):
    industry = next(f for f in ok(call(pd, "GET", "/api/v2/organizationFields")) if f["field_code"] == "industry")
    assert industry["field_type"] == "enum" and industry["is_custom_field"] is False
    assert industry["options"] == [{"id": n, "label": name} for n, name in enumerate(INDUSTRIES, start=1)]
    assert industry["options"][-1] == {"id": 13, "label": "Other"}
    assert industry["options"][1] == {"id": 2, "label": "Software Development"}
    org = ok(call(pd, "POST", "/api/v2/organizations", {"name": "Acme", "industry": 2}))
    assert org["industry"] == 2
    url = f"/api/v2/organizations/{org['id']}"
    assert ok(call(pd, "PATCH", url, {"industry": 13}))["industry"] == 13
    assert ok(call(pd, "PATCH", url, {"industry": None}))["industry"] is None
    for bad in (0, 14, "2", "Software Development", True, 2.0, [2]):
        refused(call(pd, "POST", "/api/v2/organizations", {"name": "Bad", "industry": bad}),
                "'industry'", "1, 2, 3", "13")
        refused(call(pd, "PATCH", url, {"industry": bad}), "'industry'")
    assert ok(call(pd, "GET", url))["industry"] is None


# ----------------------------------------------------------------------------- person custom fields

def test_person_custom_fields_checked_and_merged(pd):
    person = ok(call(pd, "POST", "/api/v2/persons", {
        "name": "Jane", "custom_fields": {SCORE: 42.5, CHANNEL: 3, LAST_VISIT: "2026-11-20", CARD: None}}))
    assert person["custom_fields"] == {SCORE: 42.5, CHANNEL: 3, LAST_VISIT: "2026-11-20"}
    url = f"/api/v2/persons/{person['id']}"
    patched = ok(call(pd, "PATCH", url, {"custom_fields": {CARD: "https://card/1", SCORE: None, CHANNEL: 6}}))
    assert patched["custom_fields"] == {CHANNEL: 6, LAST_VISIT: "2026-11-20", CARD: "https://card/1"}
    for bad, words in (({CHANNEL: "social"}, ("LeadBoxer first channel", "enum", "1, 2, 3, 4, 5, 6")),
                       ({CHANNEL: 7}, ("LeadBoxer first channel", "1, 2, 3, 4, 5, 6")),
                       ({CHANNEL: True}, ("LeadBoxer first channel",)),
                       ({SCORE: "high"}, ("LeadBoxer lead score", "double")),
                       ({LAST_VISIT: "2026-02-30"}, ("LeadBoxer last visit", "date", "YYYY-MM-DD")),
                       ({LAST_VISIT: "20-11-2026"}, ("LeadBoxer last visit",)),
                       ({CARD: "x" * 256}, ("LeadBoxer lead card", "255")),
                       ({COUNTRY: "NL"}, ("Unknown custom field", "personFields"))):
        refused(call(pd, "POST", "/api/v2/persons", {"name": "Bad", "custom_fields": bad}), *words)
        refused(call(pd, "PATCH", url, {"custom_fields": bad}), *words)
    assert ok(call(pd, "GET", url)) == patched


def test_custom_value_types():
    from sandbox.pipedrive.checks import custom_value_ok

    options = [{"id": 1, "label": "a"}, {"id": 2, "label": "b"}]
    cases = {
        "double": ([1, 2.5, 0], ["1", True, None]),
        "monetary": ([10.5], ["10"]),
        "varchar": (["", "x" * 255], ["x" * 256, 5]),
        "varchar_auto": (["x"], [1]),
        "phone": (["+31 20"], [3120]),
        "text": (["x" * 10000], [1]),
        "date": (["2026-02-28", "2024-02-29"], ["2026-02-29", "2026-2-1", "2026-11-20T00:00:00", 20261120]),
        "time": (["09:30:00", "23:59:59"], ["09:30", "24:00:00", "9:30:00", 930]),
        "enum": ([1, 2], [3, "1", "a", True, [1]]),
        "set": ([[1], [1, 2]], [[], [3], ["a"], 1, [True]]),
        "int": ([3], [3.5, "3"]),
        "user": ([1], ["1"]),
        "org": ([1], [1.0]),
        "people": ([1], [None]),
    }
    for ftype, (good, bad) in cases.items():
        field = {"field_type": ftype, "options": options}
        for value in good:
            assert custom_value_ok(value, field), (ftype, value)
        for value in bad:
            assert not custom_value_ok(value, field), (ftype, value)


def test_set_custom_field_refuses_an_empty_array(pd):
    store = pd.app.store
    labels = {"field_name": "Interests", "field_code": field_code("Interests"), "field_type": "set",
              "options": [{"id": 1, "label": "pricing"}, {"id": 2, "label": "demo"}], "subfields": None,
              "is_custom_field": True, "is_optional_response_field": False}
    store.person_fields.append(labels)
    code = labels["field_code"]
    person = ok(call(pd, "POST", "/api/v2/persons", {"name": "Jane", "custom_fields": {code: [1, 2]}}))
    assert person["custom_fields"] == {code: [1, 2]}
    url = f"/api/v2/persons/{person['id']}"
    refused(call(pd, "PATCH", url, {"custom_fields": {code: []}}), "Interests", "set", "non-empty", "1, 2")
    refused(call(pd, "PATCH", url, {"custom_fields": {code: [3]}}), "Interests")
    assert ok(call(pd, "PATCH", url, {"custom_fields": {code: None}}))["custom_fields"] == {}


# ----------------------------------------------------------------------------- PATCH /deals/{id}

def new_deal(sb, **body):
    return ok(call(sb, "POST", "/api/v2/deals", {"title": "Deal", **body}))


def test_patch_deal_custom_fields_merge_and_clear(pd):
    deal = new_deal(pd, custom_fields={COUNTRY: "NL"})
    url = f"/api/v2/deals/{deal['id']}"
    pd.app.store.deals.get(deal["id"])["update_time"] = "2000-01-01T00:00:00Z"
    resp = call(pd, "PATCH", url, {"custom_fields": {SCORE: 87.5, LAST_VISIT: "2026-11-20"}})
    data = ok(resp)
    assert resp.headers["x-token-cost"] == "5" and COSTS[("PATCH", "/api/v2/deals/{id}")] == 5
    assert data["custom_fields"] == {COUNTRY: "NL", SCORE: 87.5, LAST_VISIT: "2026-11-20"}
    assert data["update_time"] != "2000-01-01T00:00:00Z"
    assert ok(call(pd, "GET", url)) == data
    cleared = ok(call(pd, "PATCH", url, {"custom_fields": {SCORE: None, COUNTRY: "BE"}}))
    assert cleared["custom_fields"] == {COUNTRY: "BE", LAST_VISIT: "2026-11-20"}
    counters = pd.state()["counters"]
    assert counters["by_endpoint"]["PATCH /api/v2/deals/{id}"] == 2
    assert counters["tokens_spent"] == 5 + 5 + 1 + 5


def test_patch_deal_fields_stage_status_and_archive(pd):
    person = ok(call(pd, "POST", "/api/v2/persons", {"name": "Jane"}))
    org = ok(call(pd, "POST", "/api/v2/organizations", {"name": "Acme"}))
    deal = new_deal(pd)
    url = f"/api/v2/deals/{deal['id']}"
    data = ok(call(pd, "PATCH", url, {"title": "Bigger", "value": 2500, "currency": "USD", "person_id": person["id"],
                                      "org_id": org["id"], "label_ids": [1, 2], "probability": 60,
                                      "expected_close_date": "2026-12-31", "visible_to": 7}))
    assert (data["title"], data["value"], data["currency"], data["person_id"], data["org_id"]) == (
        "Bigger", 2500, "USD", person["id"], org["id"])
    assert data["label_ids"] == [1, 2] and data["probability"] == 60 and data["visible_to"] == 7
    assert (data["pipeline_id"], data["stage_id"]) == (1, 1) and "stage_change_time" not in data
    moved = ok(call(pd, "PATCH", url, {"pipeline_id": 2}))
    assert (moved["pipeline_id"], moved["stage_id"]) == (2, 5) and moved["stage_change_time"]
    assert (ok(call(pd, "PATCH", url, {"stage_id": 3}))["pipeline_id"]) == 1
    won = ok(call(pd, "PATCH", url, {"status": "won"}))
    assert won["status"] == "won" and won["won_time"] and won["close_time"] == won["won_time"]
    lost = ok(call(pd, "PATCH", url, {"status": "lost", "lost_reason": "Too expensive",
                                      "lost_time": "2026-11-20 10:00:00"}))
    assert lost["lost_time"] == "2026-11-20T10:00:00Z" and "won_time" not in lost
    assert lost["lost_reason"] == "Too expensive"
    reopened = ok(call(pd, "PATCH", url, {"status": "open"}))
    assert reopened["close_time"] is None and reopened["lost_reason"] is None and "lost_time" not in reopened
    refused(call(pd, "PATCH", url, {"lost_reason": "x"}), "'lost_reason'", "lost")
    refused(call(pd, "PATCH", url, {"won_time": "2026-11-20T10:00:00Z"}), "'won_time'")
    archived = ok(call(pd, "PATCH", url, {"is_archived": True}))
    assert archived["is_archived"] is True and archived["archive_time"]
    assert deal["id"] not in [d["id"] for d in ok(call(pd, "GET", "/api/v2/deals"))]
    assert "archive_time" not in ok(call(pd, "PATCH", url, {"is_archived": False}))


def test_patch_deal_refusals(pd):
    deal = new_deal(pd)
    url = f"/api/v2/deals/{deal['id']}"
    before = ok(call(pd, "GET", url))
    refused(call(pd, "PATCH", url, {"custom_fields": {SCORE: "high"}}), "LeadBoxer lead score", "double")
    refused(call(pd, "PATCH", url, {"custom_fields": {LAST_VISIT: "2026-13-01"}}), "LeadBoxer last visit", "date")
    refused(call(pd, "PATCH", url, {"custom_fields": {"0" * 40: 1}}), "Unknown custom field", "dealFields")
    refused(call(pd, "PATCH", url, {}), "empty")
    refused(call(pd, "PATCH", url, {"title": "x", "bogus": 1}), "'bogus'", "updateDeal")
    for bad in ({"title": ""}, {"title": None}, {"title": 5}, {"value": "100"}, {"status": "deleted"},
                {"status": "closed"}, {"person_id": 999999}, {"org_id": 999999}, {"pipeline_id": 99},
                {"stage_id": 99}, {"visible_to": 2}, {"label_ids": ["a"]}, {"is_deleted": "yes"},
                {"expected_close_date": "31-12-2026"}, {"owner_id": "1"}, {"custom_fields": None},
                {"archive_time": "2026-11-20 10:00:00"}, {"close_time": "2026-11-20 10:00:00"}, [1]):
        refused(call(pd, "PATCH", url, bad))
    assert ok(call(pd, "GET", url)) == before  # nothing changed
    custom_bad = call(pd, "POST", "/api/v2/deals", {"title": "x", "custom_fields": {SCORE: "high"}})
    refused(custom_bad, "LeadBoxer lead score")  # add_deal checks custom fields too


def test_patch_deal_unknown_or_deleted_is_404(pd):
    missing = call(pd, "PATCH", "/api/v2/deals/999999", {"title": "Nobody"})
    assert missing.status_code == 404
    assert missing.json() == {"success": False, "error": "Deal not found",
                              "error_info": "Please check developers.pipedrive.com", "data": None,
                              "additional_data": None}
    deal = new_deal(pd)
    url = f"/api/v2/deals/{deal['id']}"
    deleted = ok(call(pd, "PATCH", url, {"is_deleted": True}))
    assert deleted["is_deleted"] is True and deleted["status"] == "deleted"
    assert call(pd, "PATCH", url, {"title": "Again"}).status_code == 404
    assert ok(call(pd, "GET", "/api/v2/deals")) == []  # deleted deals are listed only on request
    assert [d["id"] for d in ok(call(pd, "GET", "/api/v2/deals", params={"status": "deleted"}))] == [deal["id"]]
    assert pd.state()["counters"]["by_endpoint"]["PATCH /api/v2/deals/{id}"] == 3
