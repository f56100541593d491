"""Drive the Pipedrive sandbox with raw ``requests`` through the operations our hooks use and assert
that every request AND every response validates against Pipedrive's OpenAPI documents.

Skips when the sandbox package cannot be imported or started.
"""

from __future__ import annotations

import uuid

import pipedrive_contract as pc
import pytest
import requests

try:
    from sandbox.pipedrive import PipedriveSandbox
except Exception as exc:  # noqa: BLE001 -- any import problem means "sandbox not available"
    pytest.skip(f"Pipedrive sandbox not available: {exc!r}", allow_module_level=True)

TOKEN = "sandbox-token"


@pytest.fixture(scope="module")
def sandbox(pipedrive_specs):
    sb = PipedriveSandbox().start()
    try:
        yield sb
    finally:
        sb.stop()


@pytest.fixture
def api(sandbox):
    """A session with the sandbox token and a contract recorder attached; asserts at teardown."""
    recorder = pc.ContractRecorder()
    session = requests.Session()
    session.headers["x-api-token"] = TOKEN
    recorder.attach(session)
    session.base = sandbox.url.rstrip("/")  # type: ignore[attr-defined]
    session.recorder = recorder  # type: ignore[attr-defined]
    yield session
    session.close()
    recorder.assert_all_valid(allow_empty=False)


def _ok(response: requests.Response, status: int = 200) -> dict:
    assert response.status_code == status, (response.status_code, response.text[:500])
    body = response.json()
    assert body.get("success") is True, body
    return body


def test_persons_and_organizations(api):
    base = api.base
    suffix = uuid.uuid4().hex[:8]
    email = f"jane.{suffix}@example.com"

    org = _ok(api.post(f"{base}/api/v2/organizations", json={"name": f"ACME {suffix}"}))["data"]
    found = _ok(
        api.get(
            f"{base}/api/v2/organizations/search",
            params={"term": f"ACME {suffix}", "fields": "name", "exact_match": "true"},
        )
    )
    assert any(i["item"]["id"] == org["id"] for i in found["data"]["items"])

    person = _ok(
        api.post(
            f"{base}/api/v2/persons",
            json={
                "name": f"Jane {suffix}",
                "org_id": org["id"],
                "emails": [{"value": email, "primary": True, "label": "work"}],
                "phones": [{"value": "+31 20 123 4567", "primary": True, "label": "work"}],
            },
        )
    )["data"]
    found = _ok(
        api.get(
            f"{base}/api/v2/persons/search",
            params={"term": email, "fields": "email", "exact_match": "true"},
        )
    )
    assert [i["item"]["id"] for i in found["data"]["items"]] == [person["id"]]
    # a search that finds nothing (last page: next_cursor may be null)
    _ok(
        api.get(
            f"{base}/api/v2/persons/search",
            params={"term": f"nobody-{suffix}@example.com", "fields": "email", "exact_match": "true"},
        )
    )

    got = _ok(api.get(f"{base}/api/v2/persons/{person['id']}"))["data"]
    assert got["name"] == f"Jane {suffix}"
    patched = _ok(api.patch(f"{base}/api/v2/persons/{person['id']}", json={"name": f"Jane Doe {suffix}"}))
    assert patched["data"]["name"] == f"Jane Doe {suffix}"


def test_pipelines_stages_deals_activities(api):
    base = api.base
    pipelines = _ok(api.get(f"{base}/api/v2/pipelines"))["data"]
    assert pipelines
    stages = _ok(api.get(f"{base}/api/v2/stages", params={"pipeline_id": pipelines[0]["id"]}))["data"]
    assert stages

    person = _ok(api.post(f"{base}/api/v2/persons", json={"name": "Deal Person"}))["data"]
    deal = _ok(
        api.post(
            f"{base}/api/v2/deals",
            json={
                "title": "LeadBoxer deal",
                "person_id": person["id"],
                "pipeline_id": pipelines[0]["id"],
                "stage_id": stages[0]["id"],
                "value": 1000,
                "currency": "EUR",
            },
        )
    )["data"]
    deals = _ok(api.get(f"{base}/api/v2/deals", params={"person_id": person["id"], "limit": 50}))
    assert deal["id"] in [d["id"] for d in deals["data"]]

    activity = _ok(
        api.post(
            f"{base}/api/v2/activities",
            json={
                "subject": "LeadBoxer visit",
                "type": "call",
                "deal_id": deal["id"],
                "due_date": "2025-01-31",
                "due_time": "10:00",
                "done": False,
                "note": "Visited /pricing",
                "participants": [{"person_id": person["id"], "primary": True}],
            },
        )
    )["data"]
    listed = _ok(api.get(f"{base}/api/v2/activities", params={"person_id": person["id"], "limit": 100}))
    assert activity["id"] in [a["id"] for a in listed["data"]]


def test_v1_leads_labels_activity_types_users(api):
    base = api.base
    me = _ok(api.get(f"{base}/api/v1/users/me"))["data"]
    assert me["id"]
    types = _ok(api.get(f"{base}/api/v1/activityTypes"))["data"]
    assert types
    labels = _ok(api.get(f"{base}/api/v1/leadLabels"))["data"]

    person = _ok(api.post(f"{base}/api/v2/persons", json={"name": "Lead Person"}))["data"]
    body = {"title": "LeadBoxer lead", "person_id": person["id"], "owner_id": me["id"]}
    if labels:
        body["label_ids"] = [labels[0]["id"]]
    lead = _ok(api.post(f"{base}/api/v1/leads", json=body), status=201)["data"]
    leads = _ok(api.get(f"{base}/api/v1/leads", params={"person_id": person["id"], "limit": 100}))
    assert lead["id"] in [x["id"] for x in leads["data"]]
    patched = _ok(api.patch(f"{base}/api/v1/leads/{lead['id']}", json={"title": "LeadBoxer lead (hot)"}))
    assert patched["data"]["title"] == "LeadBoxer lead (hot)"


def test_recorder_catches_a_bad_request_against_the_sandbox(sandbox, pipedrive_specs):
    recorder = pc.ContractRecorder()
    session = requests.Session()
    recorder.attach(session)  # no token on purpose
    session.get(f"{sandbox.url.rstrip('/')}/api/v2/persons/search", params={"term": "x", "fields": "bogus"})
    assert len(recorder.exchanges) == 1
    with pytest.raises(AssertionError, match="Security"):
        recorder.assert_all_valid()


# ------------------------------------------------------------------ fields, lead custom fields, lead search
LEAD_SCORE = "8119be8a5b1769b32d76c57f9a88ca34499dfa5c"  # sha1("LeadBoxer lead score")
LEAD_CARD = "3bcef60799519065199bace1f39b6f471d968c83"  # sha1("LeadBoxer lead card")


def test_deal_fields_and_lead_fields(api):
    base = api.base
    fields = _ok(api.get(f"{base}/api/v2/dealFields"))["data"]
    custom = {f["field_name"]: f["field_code"] for f in fields if f["is_custom_field"]}
    assert custom["LeadBoxer lead score"] == LEAD_SCORE
    assert {"title", "value", "person_id", "org_id", "stage_id"} <= {f["field_code"] for f in fields}
    # cursor pagination and the optional namespaces
    page = _ok(api.get(f"{base}/api/v2/dealFields", params={"limit": 5}))
    assert len(page["data"]) == 5
    rest = _ok(api.get(f"{base}/api/v2/dealFields", params={
        "limit": 500, "cursor": page["additional_data"]["next_cursor"],
        "include_fields": "ui_visibility,important_fields,required_fields"}))
    assert len(rest["data"]) == len(fields) - 5
    assert all("ui_visibility" in f and "required_fields" in f for f in rest["data"])

    lead_fields = _ok(api.get(f"{base}/api/v1/leadFields"))
    assert LEAD_CARD in {f["key"] for f in lead_fields["data"]}
    _ok(api.get(f"{base}/api/v1/leadFields", params={"start": 2, "limit": 3}))


def test_lead_custom_fields_nulls_and_search(api):
    base = api.base
    suffix = uuid.uuid4().hex[:8]
    labels = _ok(api.get(f"{base}/api/v1/leadLabels"))["data"]
    hot = next(label["id"] for label in labels if label["name"] == "Hot")
    org = _ok(api.post(f"{base}/api/v2/organizations", json={"name": f"Org {suffix}"}))["data"]
    person = _ok(api.post(f"{base}/api/v2/persons", json={
        "name": f"Searchable {suffix}", "org_id": org["id"],
        "emails": [{"value": f"s.{suffix}@example.com", "primary": True, "label": "work"}]}))["data"]
    lead = _ok(api.post(f"{base}/api/v1/leads", json={
        "title": f"LeadBoxer {suffix}", "person_id": person["id"], "organization_id": org["id"],
        "label_ids": [hot], "value": {"amount": 250, "currency": "EUR"},
        LEAD_SCORE: 87.5, LEAD_CARD: f"https://leadboxer.example/card/{suffix}"}), status=201)["data"]
    assert lead[LEAD_SCORE] == 87.5
    got = _ok(api.get(f"{base}/api/v1/leads/{lead['id']}"))["data"]
    assert got[LEAD_CARD].endswith(suffix)

    patched = _ok(api.patch(f"{base}/api/v1/leads/{lead['id']}", json={
        "person_id": None, "value": None, LEAD_SCORE: 90, LEAD_CARD: None}))["data"]
    assert patched["person_id"] is None and patched["value"] is None and patched[LEAD_SCORE] == 90
    assert LEAD_CARD not in patched
    listed = _ok(api.get(f"{base}/api/v1/leads", params={"organization_id": org["id"], "limit": 10}))
    assert [x["id"] for x in listed["data"]] == [lead["id"]]

    # search by title (exact) and by custom field value, filtered by organization
    found = _ok(api.get(f"{base}/api/v2/leads/search", params={
        "term": f"LeadBoxer {suffix}", "fields": "title", "exact_match": "true", "organization_id": org["id"]}))
    assert [i["item"]["id"] for i in found["data"]["items"]] == [lead["id"]]
    found = _ok(api.get(f"{base}/api/v2/leads/search", params={
        "term": "90", "fields": "custom_fields,title", "exact_match": "true", "limit": 10}))
    assert lead["id"] in [i["item"]["id"] for i in found["data"]["items"]]
    _ok(api.patch(f"{base}/api/v1/leads/{lead['id']}", json={
        "person_id": person["id"], "value": {"amount": 300, "currency": "EUR"}}))
    found = _ok(api.get(f"{base}/api/v2/leads/search", params={
        "term": suffix, "person_id": person["id"], "include_fields": "lead.was_seen"}))
    item = found["data"]["items"][0]["item"]
    assert item["person"] == {"id": person["id"], "name": person["name"]} and item["value"] == 300

    # error answers are in the contract too (400 for a lead without person and organization)
    resp = api.patch(f"{base}/api/v1/leads/{lead['id']}", json={"person_id": None, "organization_id": None})
    assert resp.status_code == 400


DOMAIN_FIELD = "9b10914d8b0a097ace7176e8973f5c3dee92bb44"  # sha1("Domain")


def test_organization_fields_and_custom_field_search(api):
    base = api.base
    suffix = uuid.uuid4().hex[:8]
    fields = _ok(api.get(f"{base}/api/v2/organizationFields"))["data"]
    custom = {f["field_name"]: f for f in fields if f["is_custom_field"]}
    assert custom["Domain"]["field_code"] == DOMAIN_FIELD and custom["Domain"]["field_type"] == "varchar"
    _ok(api.get(f"{base}/api/v2/organizationFields", params={"limit": 3, "include_fields": "ui_visibility"}))

    domain = f"{suffix}.example.com"
    org = _ok(api.post(f"{base}/api/v2/organizations",
                       json={"name": f"Domain Org {suffix}", "custom_fields": {DOMAIN_FIELD: domain}}))["data"]
    assert org["custom_fields"][DOMAIN_FIELD] == domain
    hits = _ok(api.get(f"{base}/api/v2/organizations/search",
                       params={"term": domain.upper(), "fields": "custom_fields", "exact_match": "true"}))
    assert [(h["item"]["id"], h["item"]["custom_fields"]) for h in hits["data"]["items"]] == [(org["id"], [domain])]
    assert _ok(api.get(f"{base}/api/v2/organizations/{org['id']}"))["data"]["custom_fields"][DOMAIN_FIELD] == domain
    unknown = api.post(f"{base}/api/v2/organizations", json={"name": "x", "custom_fields": {"0" * 40: "y"}})
    assert unknown.status_code == 400 and "Unknown custom field" in unknown.json()["error"]


def test_patch_organization(api):
    base = api.base
    suffix = uuid.uuid4().hex[:8]
    org = _ok(api.post(f"{base}/api/v2/organizations",
                       json={"name": f"Patch Org {suffix}", "custom_fields": {DOMAIN_FIELD: "old.example"}}))["data"]
    address = {"value": "Main St 1, Amsterdam", "locality": "Amsterdam", "country": "Netherlands",
               "postal_code": "1011 AA"}
    patched = _ok(api.patch(f"{base}/api/v2/organizations/{org['id']}", json={
        "address": address, "website": "https://patch.example", "linkedin": "https://www.linkedin.com/company/x",
        "industry": None, "label_ids": [], "custom_fields": {DOMAIN_FIELD: f"{suffix}.example"}}))["data"]
    assert patched["address"] == address and patched["website"] == "https://patch.example"
    assert patched["custom_fields"] == {DOMAIN_FIELD: f"{suffix}.example"} and patched["name"] == org["name"]
    cleared = _ok(api.patch(f"{base}/api/v2/organizations/{org['id']}",
                            json={"website": None, "custom_fields": {DOMAIN_FIELD: None}}))["data"]
    assert cleared["website"] is None and cleared["custom_fields"] == {}
    assert _ok(api.get(f"{base}/api/v2/organizations/{org['id']}"))["data"] == cleared
    # an unknown id: 404 (the spec declares no 404 answer, so only the request is checked)
    assert api.patch(f"{base}/api/v2/organizations/999999", json={"name": "Nobody"}).status_code == 404


# ------------------------------------------------------------------ person fields, person custom fields, deal updates
SCORE_FIELD = "8119be8a5b1769b32d76c57f9a88ca34499dfa5c"  # sha1("LeadBoxer lead score")
LAST_VISIT = "b6e5b63dd6eec6de308cd309675ab8f3345990a4"  # sha1("LeadBoxer last visit")
CHANNEL = "6599859afcdc863c8951245bf3a93fbba6143a0a"  # sha1("LeadBoxer first channel")


def test_person_fields_and_person_custom_fields(api):
    base = api.base
    fields = _ok(api.get(f"{base}/api/v2/personFields"))["data"]
    by_code = {f["field_code"]: f for f in fields}
    assert by_code[CHANNEL]["field_type"] == "enum" and "job_title" in by_code
    _ok(api.get(f"{base}/api/v2/personFields", params={"limit": 3, "include_fields": "ui_visibility"}))
    person = _ok(api.post(f"{base}/api/v2/persons", json={
        "name": "Field Person", "job_title": "CTO", "birthday": "1990-02-28",
        "im": [{"value": "field.person", "primary": True, "label": "skype"}],
        "custom_fields": {SCORE_FIELD: 12.5, CHANNEL: 2, LAST_VISIT: "2026-11-20"}}))["data"]
    assert person["custom_fields"][CHANNEL] == 2
    patched = _ok(api.patch(f"{base}/api/v2/persons/{person['id']}",
                            json={"custom_fields": {SCORE_FIELD: None, CHANNEL: 5}}))["data"]
    assert patched["custom_fields"] == {CHANNEL: 5, LAST_VISIT: "2026-11-20"}
    bad = api.patch(f"{base}/api/v2/persons/{person['id']}", json={"custom_fields": {CHANNEL: "social"}})
    assert bad.status_code == 400
    org = _ok(api.post(f"{base}/api/v2/organizations", json={"name": "Industry Org", "industry": 2}))["data"]
    assert _ok(api.patch(f"{base}/api/v2/organizations/{org['id']}", json={"industry": 13}))["data"]["industry"] == 13


def test_update_deal(api):
    base = api.base
    person = _ok(api.post(f"{base}/api/v2/persons", json={"name": "Update Deal Person"}))["data"]
    deal = _ok(api.post(f"{base}/api/v2/deals", json={"title": "To update", "person_id": person["id"]}))["data"]
    url = f"{base}/api/v2/deals/{deal['id']}"
    patched = _ok(api.patch(url, json={"title": "Updated", "value": 750, "stage_id": 2, "expected_close_date":
                                       "2026-12-31", "custom_fields": {SCORE_FIELD: 55, LAST_VISIT: "2026-11-20"}}))
    assert patched["data"]["custom_fields"] == {SCORE_FIELD: 55, LAST_VISIT: "2026-11-20"}
    won = _ok(api.patch(url, json={"status": "won", "custom_fields": {SCORE_FIELD: None}}))["data"]
    assert won["status"] == "won" and won["custom_fields"] == {LAST_VISIT: "2026-11-20"}
    archived = _ok(api.patch(url, json={"is_archived": True, "archive_time": "2026-11-20 10:00:00"}))["data"]
    assert archived["is_archived"] is True
    assert api.patch(url, json={"custom_fields": {LAST_VISIT: "tomorrow"}}).status_code == 400
    # an unknown id: 404 (the spec declares no 404 answer, so only the request is checked)
    assert api.patch(f"{base}/api/v2/deals/999999", json={"title": "Nobody"}).status_code == 404
