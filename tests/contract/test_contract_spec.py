"""Tests of the contract validator itself: it accepts what Pipedrive's documents accept and, more
importantly, it CAN fail. Fast, no Airflow, no network."""

from __future__ import annotations

import copy
import json
import time

import pipedrive_contract as pc
import pytest
import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

BASE = "http://127.0.0.1:8765"
AUTH = {"x-api-token": "sandbox-token"}

ACTIVITY = {
    "subject": "LeadBoxer visit: pricing page",
    "type": "call",
    "owner_id": 1,
    "person_id": 42,
    "org_id": 7,
    "due_date": "2025-01-31",
    "due_time": "10:00",
    "done": False,
    "note": "Visited /pricing 3 times",
    "participants": [{"person_id": 42, "primary": True}, {"person_id": 43, "primary": False}],
}

LEAD = {
    "title": "ACME Corp (LeadBoxer)",
    "owner_id": 1,
    "person_id": 42,
    "organization_id": 7,
    "label_ids": ["f08b42a0-4e75-11ea-9643-03698ef1cfd6"],
    "value": {"amount": 1500, "currency": "EUR"},
    "expected_close_date": "2025-03-01",
    "visible_to": "3",
}


@pytest.fixture(scope="module", autouse=True)
def _specs(pipedrive_specs):
    return pipedrive_specs


def spec_example(doc: str, path: str, method: str, status: str) -> dict:
    op = pc.load_specs()[doc].raw["paths"][path][method]
    return copy.deepcopy(op["responses"][status]["content"]["application/json"]["example"])


# ------------------------------------------------------------------------------------ loading
def test_specs_load_both_documents(pipedrive_specs):
    assert pipedrive_specs["v2"].server_url == "https://api.pipedrive.com/api/v2"
    assert pipedrive_specs["v1"].server_url == "https://api.pipedrive.com/v1"
    assert pc.load_specs() is pipedrive_specs  # lru_cache: parsed once per process


def test_spec_dir_env_override(monkeypatch, tmp_path):
    monkeypatch.setenv("PIPEDRIVE_OPENAPI_DIR", str(tmp_path))
    assert pc.spec_dir() == tmp_path
    monkeypatch.delenv("PIPEDRIVE_OPENAPI_DIR")
    assert pc.spec_dir() == pc.REPO_ROOT / "tests" / "contract" / "openapi"


def test_the_documents_in_the_repository_are_the_ones_their_provenance_names():
    import hashlib
    import re

    folder = pc.REPO_ROOT / "tests" / "contract" / "openapi"
    rows = re.findall(r"^\| (openapi-v\d\.yaml) \| (https://\S+) \| ([\d,]+) \| ([0-9a-f]{64}) \|$",
                      (folder / "PROVENANCE.md").read_text(), flags=re.M)
    assert sorted(name for name, *_ in rows) == sorted(pc.SPEC_FILES.values())
    for name, _url, size, digest in rows:
        data = (folder / name).read_bytes()
        assert len(data) == int(size.replace(",", "")) and hashlib.sha256(data).hexdigest() == digest, name


# ------------------------------------------------------------------------------------ requests
def test_add_activity_with_participants_validates():
    assert pc.validate_request("POST", f"{BASE}/api/v2/activities", json_body=ACTIVITY, headers=AUTH) == []


def test_add_activity_done_as_string_fails():
    errors = pc.validate_request("POST", f"{BASE}/api/v2/activities", json_body={**ACTIVITY, "done": "1"}, headers=AUTH)
    assert errors and any("done" in e and "boolean" in e for e in errors), errors


def test_add_activity_bad_participant_fails():
    body = {**ACTIVITY, "participants": [{"person_id": "42", "primary": True}]}
    errors = pc.validate_request("POST", f"{BASE}/api/v2/activities", json_body=body, headers=AUTH)
    assert any("participants/0/person_id" in e for e in errors), errors


def test_search_persons_validates():
    params = {"term": "jane@example.com", "fields": "email", "exact_match": "true"}
    assert pc.validate_request("GET", f"{BASE}/api/v2/persons/search", params=params, headers=AUTH) == []


def test_search_persons_query_string_in_url_validates():
    url = f"{BASE}/api/v2/persons/search?term=jane%40example.com&fields=email&exact_match=true"
    assert pc.validate_request("GET", url, headers=AUTH) == []


def test_search_persons_bogus_field_fails():
    params = {"term": "jane@example.com", "fields": "bogus", "exact_match": "true"}
    errors = pc.validate_request("GET", f"{BASE}/api/v2/persons/search", params=params, headers=AUTH)
    assert errors and any("fields" in e and "bogus" in e for e in errors), errors


def test_search_persons_comma_separated_fields():
    ok = {"term": "jane", "fields": "email,name"}
    assert pc.validate_request("GET", f"{BASE}/api/v2/persons/search", params=ok, headers=AUTH) == []
    bad = {"term": "jane", "fields": "email,bogus"}
    assert pc.validate_request("GET", f"{BASE}/api/v2/persons/search", params=bad, headers=AUTH)


@pytest.mark.parametrize(
    "params, needle",
    [
        ({"fields": "email"}, "term"),  # required parameter missing
        ({"term": "jane", "limit": "many"}, "limit"),  # integer expected
        ({"term": "jane", "exact_match": True}, "exact_match"),  # requests sends "True"
        ({"term": "jane", "search_by_email": 1}, "search_by_email"),  # not declared
    ],
)
def test_search_persons_bad_query_fails(params, needle):
    errors = pc.validate_request("GET", f"{BASE}/api/v2/persons/search", params=params, headers=AUTH)
    assert any(needle in e for e in errors), errors


def test_v1_add_lead_validates():
    assert pc.validate_request("POST", f"{BASE}/api/v1/leads", json_body=LEAD, headers=AUTH) == []
    # the document's own server form is accepted as well
    assert pc.validate_request("POST", f"{BASE}/v1/leads", json_body=LEAD, headers=AUTH) == []


def test_v1_add_lead_label_ids_scalar_fails():
    errors = pc.validate_request("POST", f"{BASE}/api/v1/leads", json_body={**LEAD, "label_ids": 5}, headers=AUTH)
    assert errors and any("label_ids" in e and "array" in e for e in errors), errors


def test_v1_add_lead_missing_title_and_bad_visibility_fail():
    body = {k: v for k, v in LEAD.items() if k != "title"} | {"visible_to": "2"}
    errors = pc.validate_request("POST", f"{BASE}/api/v1/leads", json_body=body, headers=AUTH)
    assert any("'title' is a required property" in e for e in errors), errors
    assert any("visible_to" in e for e in errors), errors


def test_missing_api_token_fails():
    errors = pc.validate_request("POST", f"{BASE}/api/v2/activities", json_body=ACTIVITY)
    assert errors and any("Security" in e for e in errors), errors
    assert pc.validate_request("GET", f"{BASE}/api/v1/leads")  # v1 too
    assert pc.validate_request("GET", f"{BASE}/api/v1/leads", headers=AUTH) == []


def test_bearer_token_is_accepted_as_the_oauth2_alternative():
    headers = {"Authorization": "Bearer abc"}
    assert pc.validate_request("GET", f"{BASE}/api/v1/leads", headers=headers) == []
    assert pc.validate_request("GET", f"{BASE}/api/v1/leads", headers={"Authorization": "Basic abc"})


def test_unknown_path_method_and_url_fail():
    assert pc.validate_request("GET", f"{BASE}/api/v2/no-such-thing", headers=AUTH)
    assert pc.validate_request("PUT", f"{BASE}/api/v2/activities", headers=AUTH)
    assert pc.validate_request("GET", f"{BASE}/something/else", headers=AUTH)


def test_company_domain_url_maps_to_spec_server():
    url = "https://acme.pipedrive.com/api/v2/activities"
    assert pc.validate_request("POST", url, json_body=ACTIVITY, headers=AUTH) == []


# ------------------------------------------------------------------------------------ responses
def test_search_persons_spec_example_response_validates():
    example = spec_example("v2", "/persons/search", "get", "200")
    assert pc.validate_response("GET", f"{BASE}/api/v2/persons/search", 200, example) == []
    raw = json.dumps(example).encode()
    assert pc.validate_response("GET", f"{BASE}/api/v2/persons/search?term=ja", 200, raw) == []


def test_search_persons_mangled_response_fails():
    example = spec_example("v2", "/persons/search", "get", "200")
    example["data"]["items"] = "not a list"
    errors = pc.validate_response("GET", f"{BASE}/api/v2/persons/search", 200, example)
    assert errors and any("data/items" in e and "array" in e for e in errors), errors

    example = spec_example("v2", "/persons/search", "get", "200")
    example["data"]["items"][0]["item"]["id"] = "1"
    errors = pc.validate_response("GET", f"{BASE}/api/v2/persons/search", 200, example)
    assert any("data/items/0/item/id" in e for e in errors), errors


def test_last_page_null_cursor_validates():
    body = {"success": True, "data": {"items": []}, "additional_data": {"next_cursor": None}}
    assert pc.validate_response("GET", f"{BASE}/api/v2/persons/search", 200, body) == []


def test_v1_space_separated_timestamps_validate():
    example = spec_example("v1", "/leads", "post", "201")
    assert pc.validate_response("POST", f"{BASE}/api/v1/leads", 201, example) == []
    example["data"]["add_time"] = "yesterday"
    assert pc.validate_response("POST", f"{BASE}/api/v1/leads", 201, example)


def test_undeclared_status_reports_nothing():
    body = {"success": False, "error": "Rate limit exceeded"}
    assert pc.validate_response("GET", f"{BASE}/api/v2/persons/search", 429, body) == []


def test_non_json_response_fails():
    assert pc.validate_response("GET", f"{BASE}/api/v2/persons/search", 200, b"<html>")


# ------------------------------------------------------------------------------------ exchanges
class _FakeAdapter(BaseAdapter):
    """Answers every request with a canned JSON body; no sockets involved."""

    def __init__(self, status: int, body: dict):
        super().__init__()
        self.status, self.body = status, body

    def send(self, request, **kwargs):
        response = requests.Response()
        response.status_code = self.status
        response._content = json.dumps(self.body).encode()
        response.headers = CaseInsensitiveDict({"Content-Type": "application/json"})
        response.url = request.url
        response.request = request
        return response

    def close(self):
        pass


def _session(status: int, body: dict) -> requests.Session:
    session = requests.Session()
    session.headers.update(AUTH)
    session.mount("http://", _FakeAdapter(status, body))
    return session


def test_validate_exchange_and_recorder():
    example = spec_example("v2", "/persons/search", "get", "200")
    session = _session(200, example)
    recorder = pc.ContractRecorder()
    recorder.attach(session)

    ok = session.get(f"{BASE}/api/v2/persons/search", params={"term": "jane", "fields": "email"})
    assert pc.validate_exchange(ok) == []
    recorder.assert_all_valid(allow_empty=False)

    session.get(f"{BASE}/api/v2/persons/search", params={"term": "jane", "fields": "bogus"})
    session.headers.pop("x-api-token")
    session.get(f"{BASE}/api/v2/persons/search", params={"term": "jane"})
    assert len(recorder.exchanges) == 3 and len(recorder.invalid) == 2
    with pytest.raises(AssertionError) as info:
        recorder.assert_all_valid()
    message = str(info.value)
    assert "2 of 3" in message and "GET /api/v2/persons/search" in message
    assert "bogus" in message and "Security" in message


def test_recorder_flags_invalid_response():
    session = _session(200, {"success": True, "data": {"items": "x"}})
    recorder = pc.ContractRecorder()
    recorder.attach(session)
    session.get(f"{BASE}/api/v2/persons/search", params={"term": "jane"})
    with pytest.raises(AssertionError, match="data/items"):
        recorder.assert_all_valid()


# ------------------------------------------------------------------------------------ costs
def test_token_costs():
    costs = pc.token_costs()
    assert costs[("POST", "/api/v2/activities")] == 5
    assert costs[("GET", "/api/v2/persons/search")] == 20
    assert costs[("POST", "/api/v1/leads")] == 10
    assert costs[("PATCH", "/api/v2/persons/{id}")] > 0
    # only the OAuth endpoints (other server, not rate-limited) are free
    assert {k for k, v in costs.items() if v == 0} <= {k for k in costs if "/oauth/" in k[1]}
    assert all(isinstance(v, int) and v >= 0 for v in costs.values())
    n_ops = sum(1 for _ in pc.operations())
    assert len(costs) == n_ops  # every operation of both documents has a price


# ------------------------------------------------------------------------------------ speed
def test_validation_is_fast():
    url = f"{BASE}/api/v2/persons/search"
    example = spec_example("v2", "/persons/search", "get", "200")
    pc.validate_request("GET", url, params={"term": "jane"}, headers=AUTH)  # warm-up
    started = time.perf_counter()
    for _ in range(20):
        assert pc.validate_request("GET", url, params={"term": "jane"}, headers=AUTH) == []
        assert pc.validate_response("GET", url, 200, example) == []
    per_exchange = (time.perf_counter() - started) / 20
    assert per_exchange < 0.1, f"{per_exchange * 1000:.1f} ms per exchange"
