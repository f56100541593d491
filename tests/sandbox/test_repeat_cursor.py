"""The ``repeat_cursor`` fault kind (sandbox/faults.py): a paged read whose next-page pointer points back
at the page just served, in both sandboxes. Following the pointer gives the same page and pointer again."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from sandbox.faults import FaultRule
from sandbox.leadboxer import DEFAULT_SITE, LeadBoxerSandbox
from sandbox.pipedrive import PipedriveSandbox

ROOT = Path(__file__).resolve().parents[2]
PD = {"x-api-token": "sandbox-token"}
LB = {"x-api-key": "sandbox-key"}


@pytest.fixture(scope="module")
def pd():
    with PipedriveSandbox(burst_limit=1000, search_burst_limit=1000) as sandbox:
        for n in range(5):
            person = requests.post(sandbox.url + "/api/v2/persons", headers=PD, timeout=5,
                                   json={"name": f"Repeat Person {n}"}).json()["data"]
            lead = requests.post(sandbox.url + "/api/v1/leads", headers=PD, timeout=5,
                                 json={"title": f"Repeat lead {n}", "person_id": person["id"]})
            assert lead.status_code == 201, lead.text
        yield sandbox


@pytest.fixture(autouse=True)
def _no_faults(request):
    yield
    for name in ("pd", "lb"):
        if name in request.fixturenames:
            request.getfixturevalue(name).clear_faults()


def pd_get(sandbox, path, **params):
    response = requests.get(sandbox.url + path, headers=PD, params=params, timeout=5)
    assert response.status_code == 200, response.text
    return response.json()


def ids(body):
    data = body["data"]
    return [hit["item"]["id"] for hit in data["items"]] if isinstance(data, dict) else [row["id"] for row in data]


def assert_repeats_v2(sandbox, path, **params):
    """Read a page, follow its next_cursor twice: the same page and the same cursor every time."""
    first = pd_get(sandbox, path, **params)
    cursor = first["additional_data"]["next_cursor"]
    again = pd_get(sandbox, path, **params, cursor=cursor)
    assert ids(again) == ids(first) and again["additional_data"]["next_cursor"] == cursor
    third = pd_get(sandbox, path, **params, cursor=cursor)
    assert ids(third) == ids(first) and third["additional_data"]["next_cursor"] == cursor
    return first, cursor


# -- Pipedrive -------------------------------------------------------------------------------------------

def test_v2_list_repeats_the_first_page(pd):
    normal = pd_get(pd, "/api/v2/persons", limit=2)
    pd.add_fault({"kind": "repeat_cursor", "path": "^/api/v2/persons$"})
    first, cursor = assert_repeats_v2(pd, "/api/v2/persons", limit=2)
    assert ids(first) == ids(normal)  # the page itself is served as usual
    assert cursor != normal["additional_data"]["next_cursor"]


def test_v2_list_repeats_a_later_page_and_the_last_one(pd):
    second_cursor = pd_get(pd, "/api/v2/persons", limit=2)["additional_data"]["next_cursor"]
    second = pd_get(pd, "/api/v2/persons", limit=2, cursor=second_cursor)
    pd.add_fault({"kind": "repeat_cursor", "path": "^/api/v2/persons$"})
    repeated = pd_get(pd, "/api/v2/persons", limit=2, cursor=second_cursor)
    assert ids(repeated) == ids(second) and repeated["additional_data"]["next_cursor"] == second_cursor
    # An only page gets a pointer too (back at itself).
    assert_repeats_v2(pd, "/api/v2/persons", limit=100)


def test_v2_search_repeats(pd):
    pd.add_fault({"kind": "repeat_cursor", "path": "^/api/v2/persons/search$"})
    first, _ = assert_repeats_v2(pd, "/api/v2/persons/search", term="Repeat Person", limit=2)
    assert len(ids(first)) == 2


def test_v1_leads_list_repeats(pd):
    normal = pd_get(pd, "/api/v1/leads", limit=2)
    assert normal["additional_data"]["pagination"]["next_start"] == 2
    pd.add_fault({"kind": "repeat_cursor", "path": "^/api/v1/leads$"})
    for start in (None, 2):
        params = {"limit": 2, **({"start": start} if start is not None else {})}
        first = pd_get(pd, "/api/v1/leads", **params)
        pagination = first["additional_data"]["pagination"]
        assert pagination["more_items_in_collection"] is True and first["additional_data"]["more_items_in_collection"]
        assert pagination["next_start"] == (start or 0)
        again = pd_get(pd, "/api/v1/leads", limit=2, start=pagination["next_start"])
        assert ids(again) == ids(first) and again["additional_data"]["pagination"] == pagination


def test_rule_matching_count_and_reads_only(pd):
    pd.add_fault({"kind": "repeat_cursor", "path": "^/api/v2/persons$", "count": 1})
    created = requests.post(pd.url + "/api/v2/persons", headers=PD, json={"name": "Not a read"}, timeout=5)
    assert created.status_code == 200  # a write does not match: the rule only matches GET
    first = pd_get(pd, "/api/v2/persons", limit=2)  # fires: its cursor designates the first page
    rules = requests.get(pd.url + "/_sandbox/faults", timeout=5).json()["faults"]
    assert [(r["kind"], r["method"], r["fired"]) for r in rules] == [("repeat_cursor", "GET", 1)]
    cursor = first["additional_data"]["next_cursor"]
    again = pd_get(pd, "/api/v2/persons", limit=2, cursor=cursor)  # expired: paged as usual again
    assert ids(again) == ids(first) and again["additional_data"]["next_cursor"] != cursor
    assert "next_cursor" not in pd_get(pd, "/api/v2/persons", limit=100)["additional_data"]


def test_fault_rule_spec():
    rule = FaultRule.from_dict({"kind": "repeat_cursor", "path": "^/v1/leads$"})
    assert rule.to_dict()["method"] == "GET"
    assert FaultRule.from_dict({"kind": "repeat_cursor", "method": "post"}).method == "POST"
    with pytest.raises(ValueError, match="repeat_cursor"):
        FaultRule.from_dict({"kind": "repeat"})


# -- LeadBoxer -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def lb():
    with LeadBoxerSandbox(leads=40) as sandbox:
        yield sandbox


def lb_get(sandbox, path, **params):
    response = requests.get(sandbox.url + path, headers=LB, params=params, timeout=5)
    assert response.status_code == 200, response.text
    return response.json()


def assert_repeats_lb(sandbox, path, **params):
    first = lb_get(sandbox, path, **params)
    token = first["nextToken"]
    assert token
    for _ in range(2):
        again = lb_get(sandbox, path, **params, nextToken=token)
        assert again["data"] == first["data"] and again["nextToken"] == token
    return first, token


def test_leadboxer_leads_repeat_first_and_later_pages(lb):
    normal = lb_get(lb, "/v1/leads", site=DEFAULT_SITE, limit=3)
    second = lb_get(lb, "/v1/leads", site=DEFAULT_SITE, limit=3, nextToken=normal["nextToken"])
    lb.add_fault({"kind": "repeat_cursor", "path": "^/v1/leads$"})
    first, token = assert_repeats_lb(lb, "/v1/leads", site=DEFAULT_SITE, limit=3)
    assert first["data"] == normal["data"] and token != normal["nextToken"]
    repeated = lb_get(lb, "/v1/leads", site=DEFAULT_SITE, limit=3, nextToken=normal["nextToken"])
    assert repeated["data"] == second["data"] and repeated["nextToken"] == normal["nextToken"]


def test_leadboxer_sessions_and_events_repeat(lb):
    lead = next(lead for lead in lb.data["leads"] if len(lead["sessions"]) >= 2)
    session = max((s for lead in lb.data["leads"] for s in lead["sessions"]), key=lambda s: len(s["events"]))
    lb.add_fault({"kind": "repeat_cursor", "path": "^/v1/leads/(sessions|events)$"})
    first, _ = assert_repeats_lb(lb, "/v1/leads/sessions", leadId=lead["use_id"], site=DEFAULT_SITE, limit=1)
    assert first["data"][0]["session_id"] == lead["sessions"][0]["session_id"]
    first, _ = assert_repeats_lb(lb, "/v1/leads/events", sessionId=session["session_id"], site=DEFAULT_SITE, limit=1)
    assert first["data"] == session["events"][:1]
    # Only paged lists change: the lead list is not matched by this rule.
    assert lb_get(lb, "/v1/leads", site=DEFAULT_SITE, limit=100)["nextToken"] is None


# -- command line ----------------------------------------------------------------------------------------

def _serve(args, pattern):
    proc = subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    match = re.search(pattern, line)
    if not match:
        proc.terminate()
        proc.wait(timeout=10)
    assert match, line
    return proc, match.group(1)


def test_both_command_lines_accept_the_kind():
    rule = '{"kind": "repeat_cursor", "path": "^/(api/v2/pipelines|v1/leads)$"}'
    pipedrive, pd_url = _serve(["sandbox.pipedrive", "--port", "0", "--fault", rule], r"(http://\S+)")
    leadboxer, lb_url = _serve(["sandbox.leadboxer", "--port", "0", "--leads", "5", "--fault", rule],
                               r"(http://\S+)")
    try:
        body = requests.get(pd_url + "/api/v2/pipelines", headers=PD, params={"limit": 1}, timeout=5).json()
        again = requests.get(pd_url + "/api/v2/pipelines", headers=PD, timeout=5,
                             params={"limit": 1, "cursor": body["additional_data"]["next_cursor"]}).json()
        assert again == body
        body = requests.get(lb_url + "/v1/leads", headers=LB, params={"site": DEFAULT_SITE}, timeout=5).json()
        again = requests.get(lb_url + "/v1/leads", headers=LB, timeout=5,
                             params={"site": DEFAULT_SITE, "nextToken": body["nextToken"]}).json()
        assert again == body
    finally:
        for proc in (pipedrive, leadboxer):
            proc.terminate()
            proc.wait(timeout=10)
