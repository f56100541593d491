"""The PipedriveHook (and the ActivityLoader on top of it) against the sandbox, with every exchange
checked against Pipedrive's official OpenAPI documents: request (path, method, auth, query, body) AND
response. Each test also checks that the endpoints it meant to cover were really called, so an empty
recording cannot pass.
"""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

import pipedrive_contract as pc
import pytest

from leadboxer_pipedrive.frames import events_frame, leads_frame
from leadboxer_pipedrive.hooks.ledger import LedgerHook
from leadboxer_pipedrive.hooks.pipedrive import PipedriveHook
from leadboxer_pipedrive.loading import ActivityLoader, LoadSettings
from leadboxer_pipedrive.transforms import activity_payloads

try:
    from sandbox.pipedrive import COSTS, PipedriveSandbox
except Exception as exc:  # noqa: BLE001 -- any import problem means "sandbox not available"
    pytest.skip(f"Pipedrive sandbox not available: {exc!r}", allow_module_level=True)

TOKEN = "contract-token-s3cr3t"
CONN_ID = "pipedrive_contract"
PIPELINE_ID = 2  # seeded: "LeadBoxer test pipeline", stages 5-7

_UUID = re.compile(r"/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?=/|$)")
_NUMBER = re.compile(r"/\d+(?=/|$)")


def template(path: str) -> str:
    """``/api/v2/persons/12`` -> ``/api/v2/persons/{id}`` (lead UUIDs too)."""
    return _NUMBER.sub("/{id}", _UUID.sub("/{id}", path))


def seen(recorder: pc.ContractRecorder) -> set[tuple[str, str]]:
    return {(e.method, template(e.path)) for e in recorder.exchanges}


def queries(recorder: pc.ContractRecorder, method: str, path: str) -> list[dict[str, list[str]]]:
    return [parse_qs(urlsplit(e.url).query) for e in recorder.exchanges
            if e.method == method and template(e.path) == path]


@pytest.fixture
def sandbox(pipedrive_specs):
    # Generous search limit: these tests are about the contract, not the rate limiter (no waits).
    with PipedriveSandbox(token=TOKEN, search_burst_limit=100) as sb:
        yield sb


@pytest.fixture
def hook(sandbox, monkeypatch):
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps({
        "conn_type": "pipedrive", "host": sandbox.url, "password": TOKEN,
        "extra": {"burst_limit": 100, "search_burst_limit": 100}}))
    hook = PipedriveHook(CONN_ID)
    hook.backoff_base = 0.01
    yield hook
    hook.close()


@pytest.fixture
def recorder(hook, contract_recorder):
    contract_recorder.attach(hook.get_conn())
    return contract_recorder


@pytest.fixture
def ledger(tmp_path, monkeypatch):
    def make(name: str = "ledger") -> LedgerHook:
        conn_id = f"contract_{name}"
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}",
                           json.dumps({"conn_type": "sqlite", "host": str(tmp_path / f"{name}.sqlite")}))
        return LedgerHook(conn_id)

    made: list[LedgerHook] = []

    def factory(name: str = "ledger") -> LedgerHook:
        made.append(make(name))
        return made[-1]

    yield factory
    for hook in made:
        hook.get_conn().dispose()


# ------------------------------------------------------------------------------- every hook method
def test_every_hook_method_sends_and_receives_only_valid_exchanges(hook, recorder, sandbox):
    hook.page_limit = 2  # every list below has more than 2 items: cursors must be followed

    # -- connection test / users/me
    assert hook.test_connection()[0] is True
    assert hook.get_current_user()["id"]

    # -- organizations
    org = hook.create_organization({"name": "Acme BV", "address": {"value": "Amsterdam, Netherlands"},
                                    "website": "https://acme.example"})
    hook.create_organization({"name": "Acme BV Holding"})
    assert hook.find_organization_by_name(" acme bv ")["id"] == org["id"]
    assert hook.find_organization_by_name("Nobody Inc") is None
    assert [o["id"] for o in hook.search_organizations_by_name("Acme BV")]

    # -- persons
    person = hook.create_person({"name": "Jane Doe", "org_id": org["id"],
                                 "emails": [{"value": "jane@acme.example", "primary": True, "label": "work"}],
                                 "phones": [{"value": "+31 20 123 4567", "primary": True, "label": "work"}]})
    loner = hook.create_person({"name": "Lone Wolf",
                                "emails": [{"value": "wolf@nowhere.example", "primary": True, "label": "work"}]})
    assert hook.find_person_by_email("JANE@acme.example")["id"] == person["id"]
    assert hook.find_person_by_email("nobody@acme.example") is None
    assert hook.search_persons_by_email("wolf@nowhere.example")[0]["id"] == loner["id"]
    assert hook.get_person(person["id"])["name"] == "Jane Doe"
    assert hook.update_person(loner["id"], {"org_id": org["id"]})["org_id"] == org["id"]
    patched = hook.update_organization(org["id"], {"address": {"value": "Keizersgracht 1, Amsterdam",
                                                               "locality": "Amsterdam"},
                                                   "linkedin": "https://www.linkedin.com/company/acme",
                                                   "website": None})
    assert patched["address"]["locality"] == "Amsterdam" and patched["website"] is None
    assert patched["name"] == "Acme BV"

    # -- pipelines, stages, deals (5 deals, page size 2: three pages)
    assert {p["id"] for p in hook.list_pipelines()} >= {1, PIPELINE_ID}
    stages = hook.list_stages(PIPELINE_ID)
    assert len(stages) >= 3
    stage_id = hook.first_stage_id(PIPELINE_ID)
    assert stage_id == min(stages, key=lambda s: (s.get("order_nr", 0), s["id"]))["id"]
    deals = [hook.create_deal({"title": f"Deal {i}", "person_id": person["id"], "org_id": org["id"],
                               "pipeline_id": PIPELINE_ID, "stage_id": stage_id}) for i in range(5)]
    assert len(hook.list_deals(person_id=person["id"], status="open")) == 5
    assert hook.find_open_deal_for_person(person["id"])["id"] == deals[0]["id"]
    assert hook.find_open_deal_for_person(loner["id"]) is None

    # -- activities (5, paged)
    types = hook.list_activity_types()
    assert "task" in {t["key_string"] for t in types}
    for i in range(5):
        hook.create_activity({"subject": f"Visit {i}", "type": "task", "due_date": "2026-11-20",
                              "due_time": "05:10", "done": True, "note": "<p>Pricing</p>",
                              "participants": [{"person_id": person["id"], "primary": True}],
                              "org_id": org["id"], "deal_id": deals[0]["id"]})
    assert len(hook.list_activities(person_id=person["id"])) == 5
    assert len(hook.list_activities(deal_id=deals[0]["id"], done=True)) == 5

    # -- leads (v1) and lead labels
    hook.request("POST", "/api/v1/leadLabels", json_body={"name": "LeadBoxer", "color": "blue"})
    labels = hook.list_lead_labels()
    assert labels
    lead = hook.create_lead({"title": "Jane's lead", "person_id": person["id"], "organization_id": org["id"],
                             "label_ids": [labels[0]["id"]]})
    for i in range(4):
        hook.create_lead({"title": f"Lead {i}", "person_id": person["id"]})
    assert hook.update_lead(lead["id"], {"title": "Jane's lead (hot)"})["title"] == "Jane's lead (hot)"
    assert hook.get_lead(lead["id"])["title"] == "Jane's lead (hot)"
    # v1 offset pagination (no typed method uses it yet, but the hook offers it)
    assert len(list(hook.paginate_v1("/api/v1/leads", {"person_id": person["id"]}))) == 5

    recorder.assert_all_valid(allow_empty=False)

    v1, v2 = "/api/v1", "/api/v2"
    expected = {
        ("GET", v1 + "/users/me"),
        ("POST", v2 + "/organizations"), ("GET", v2 + "/organizations/search"),
        ("POST", v2 + "/persons"), ("GET", v2 + "/persons/search"), ("GET", v2 + "/persons/{id}"),
        ("PATCH", v2 + "/persons/{id}"), ("PATCH", v2 + "/organizations/{id}"),
        ("GET", v2 + "/pipelines"), ("GET", v2 + "/stages"),
        ("POST", v2 + "/deals"), ("GET", v2 + "/deals"),
        ("GET", v1 + "/activityTypes"), ("POST", v2 + "/activities"), ("GET", v2 + "/activities"),
        ("GET", v1 + "/leadLabels"), ("POST", v1 + "/leads"), ("PATCH", v1 + "/leads/{id}"),
        ("GET", v1 + "/leads/{id}"), ("GET", v1 + "/leads"),
    }
    assert expected <= seen(recorder), sorted(expected - seen(recorder))
    assert all(e.status < 400 for e in recorder.exchanges), [(e.method, e.path, e.status)
                                                             for e in recorder.exchanges if e.status >= 400]
    # pagination really followed the cursors / offsets (and sent them in a valid form)
    for path in ("/deals", "/activities", "/stages"):
        assert any("cursor" in q for q in queries(recorder, "GET", v2 + path)), path
    assert any(q.get("start") not in (None, ["0"]) for q in queries(recorder, "GET", v1 + "/leads"))
    # the searches asked for an exact match on the right field
    for q in queries(recorder, "GET", v2 + "/persons/search"):
        assert q["fields"] == ["email"] and q["exact_match"] == ["true"]
    for q in queries(recorder, "GET", v2 + "/organizations/search"):
        assert q["fields"] == ["name"] and q["exact_match"] == ["true"]
    # tokens the hook counted are what the sandbox charged
    assert hook.tokens_spent == sandbox.state()["counters"]["tokens_spent"]


def test_recorder_catches_a_request_the_hook_should_never_send(hook, recorder):
    """Sanity check: an exchange that breaks the contract does fail ``assert_all_valid``."""
    hook.request("GET", "/api/v2/pipelines", params={"start": 0})  # v1-style paging on a v2 list
    with pytest.raises(AssertionError, match="UnknownQueryParameter"):
        recorder.assert_all_valid()


# ------------------------------------------------------------------------------- the real loader
LEADS = [
    # two colleagues of one organization (same domain)
    {"use_id": "L1", "email": "ann@acme.example", "firstName": "Ann", "lastName": "Smit",
     "phoneNumber": "+31 6 1234 5678", "organizationName": "Acme BV", "organizationDomain": "www.acme.example",
     "organizationCity": "Amsterdam", "organizationCountry": "Netherlands",
     "organizationLinkedInUrl": "https://www.linkedin.com/company/acme", "segments": [14118],
     "leadcard_url": "https://app.leadboxer.example/lead/L1"},
    {"use_id": "L2", "email": "bob@acme.example", "fullName": "Bob de Vries", "organizationName": "ACME BV",
     "organizationDomain": "https://acme.example/", "segments": [14118]},
    # no organization at all
    {"use_id": "L3", "email": "carla@gmail.example", "firstName": "Carla", "segments": [14118]},
    # an organization known by name only; the person already exists in Pipedrive without an org
    {"use_id": "L4", "email": "dirk@beta.example", "fullName": "Dirk", "organizationName": "Beta Corp",
     "segments": [14118]},
]
T0 = 1_795_151_400_000  # 2026-11-20T05:10:00Z
EVENTS = [
    {"event_id": "E1", "_lead_id": "L1", "eventUnixTimestamp": str(T0), "event_type": "pageview",
     "title": "Pricing", "original_url": "https://www.acme.example/pricing", "utm_source": "google",
     "referrer": "https://google.com/"},
    {"event_id": "E2", "_lead_id": "L1", "eventUnixTimestamp": str(T0 + 60_000), "event_type": "form_submit",
     "title": "Form Submit"},
    {"event_id": "E3", "_lead_id": "L2", "eventUnixTimestamp": str(T0 + 120_000), "event_type": "email_open",
     "campaign": "webinar-<apr>"},
    {"event_id": "E4", "_lead_id": "L3", "eventUnixTimestamp": str(T0 + 180_000), "event_type": "download",
     "original_url": "https://www.acme.example/whitepaper.pdf"},
    {"event_id": "E5", "_lead_id": "L4", "eventUnixTimestamp": str(T0 + 240_000), "event_type": "login"},
    {"event_id": "E6", "_lead_id": "L4", "eventUnixTimestamp": str(T0 + 300_000), "event_type": "email_click",
     "utm_medium": "email"},
]


def activity_frame():
    leads = leads_frame(LEADS, 14118)
    return activity_payloads(events_frame(EVENTS, leads, "ds1"), "task")


def test_activity_loader_sends_only_valid_exchanges(hook, recorder, ledger, sandbox):
    hook.page_limit = 2
    # Dirk is already in Pipedrive, without an organization: the loader finds him and links Beta Corp.
    dirk = hook.create_person({"name": "Dirk", "emails": [{"value": "dirk@beta.example", "primary": True}]})
    beta = hook.create_organization({"name": "Beta Corp"})  # found by name, not created again
    frame = activity_frame()
    assert len(frame) == 6 and frame["org_key"].isna().sum() == 1

    settings = LoadSettings(dataset_id="ds1", dag_id="contract", run_id="run-1", pipeline_id=PIPELINE_ID)
    first = ActivityLoader(hook, ledger(), settings).load(frame)
    assert (first.pushed, first.refused, first.already_pushed) == (6, 0, 0), first.refusals
    assert first.counts["persons_created"] == 3 and first.counts["persons_found"] == 1
    assert first.counts["organizations_created"] == 1  # Acme, once for both colleagues
    assert first.counts["organizations_found"] == 1  # Beta Corp
    assert first.counts["persons_linked_to_organization"] == 1
    assert first.counts["deals_created"] == 4

    state = sandbox.state()
    assert len(state["organizations"]) == 2 and len(state["persons"]) == 4
    assert len(state["deals"]) == 4 and len(state["activities"]) == 6
    assert {d["pipeline_id"] for d in state["deals"]} == {PIPELINE_ID}
    dirk_now = next(p for p in state["persons"] if p["id"] == dirk["id"])
    assert dirk_now.get("org_id") == beta["id"]
    acme = next(o for o in state["organizations"] if o["name"] == "Acme BV")
    by_email = {p["emails"][0]["value"]: p for p in state["persons"]}
    assert by_email["ann@acme.example"]["org_id"] == by_email["bob@acme.example"]["org_id"] == acme["id"]
    assert by_email["carla@gmail.example"].get("org_id") is None

    # the same frame again, same ledger: everything is already pushed, nothing is sent
    sent = len(recorder.exchanges)
    again = ActivityLoader(hook, ledger(), settings).load(frame)
    assert (again.pushed, again.already_pushed) == (0, 6)
    assert len(recorder.exchanges) == sent

    # the same frame with a lost ledger, searching this time (the first run read the account index):
    # people, organizations and deals are found, not duplicated
    settings2 = LoadSettings(dataset_id="ds1", dag_id="contract", run_id="run-2", pipeline_id=PIPELINE_ID,
                             account_index=False)
    fresh = ActivityLoader(hook, ledger("fresh"), settings2).load(frame)
    assert fresh.pushed == 6 and fresh.refused == 0, fresh.refusals
    assert fresh.counts["persons_found"] == 4 and fresh.counts["deals_found"] == 4
    assert not {"persons_created", "deals_created", "organizations_created",
                "persons_linked_to_organization"} & set(fresh.counts)
    state = sandbox.state()
    assert len(state["persons"]) == 4 and len(state["organizations"]) == 2 and len(state["deals"]) == 4

    recorder.assert_all_valid(allow_empty=False)
    v1, v2 = "/api/v1", "/api/v2"
    expected = {
        ("GET", v1 + "/activityTypes"), ("GET", v2 + "/persons/search"), ("POST", v2 + "/persons"),
        ("PATCH", v2 + "/persons/{id}"), ("GET", v2 + "/organizations/search"), ("POST", v2 + "/organizations"),
        ("GET", v2 + "/stages"), ("POST", v2 + "/deals"), ("GET", v2 + "/deals"), ("POST", v2 + "/activities"),
        ("GET", v2 + "/persons"), ("GET", v2 + "/organizations"),  # the account index, read by update time
    }
    assert expected <= seen(recorder), sorted(expected - seen(recorder))


MAPPED = {"person": {"lead_score": "LeadBoxer lead score", "last_visit": "LeadBoxer last visit",
                     "first_channel": "LeadBoxer first channel", "leadcard_url": "LeadBoxer lead card"},
          "organization": {"lead_score": "LeadBoxer lead score"},
          "deal": {"lead_score": "LeadBoxer lead score", "last_visit": "LeadBoxer last visit"}}


def test_records_kept_current_send_only_valid_creates_and_updates(hook, recorder, ledger, sandbox):
    """Mapped fields of every type on persons, organizations and deals, job titles and industries: sent on
    create, then, when LeadBoxer's facts change, as PATCH bodies the specs accept."""
    facts = {"esScore": "40", "first_channel": "organic", "title": "Buyer",
             "organizationIndustryName": "Retail"}
    leads = [{**lead, **facts} for lead in LEADS]
    settings = LoadSettings(dataset_id="ds1", dag_id="contract", run_id="run-1", pipeline_id=PIPELINE_ID,
                            custom_fields=MAPPED)
    store = ledger()
    first = ActivityLoader(hook, store, settings).load(
        activity_payloads(events_frame(EVENTS, leads_frame(leads, 14118), "ds1"), "task"))
    assert first.pushed == 6 and first.refused == 0, first.refusals
    changed = [{**lead, "esScore": "75", "first_channel": "email", "title": "Head of Buying",
                "organizationIndustryName": "Financial Services"} for lead in leads]
    later = [{**event, "event_id": event["event_id"] + "-2"} for event in EVENTS]
    settings = LoadSettings(dataset_id="ds1", dag_id="contract", run_id="run-2", pipeline_id=PIPELINE_ID,
                            custom_fields=MAPPED)
    second = ActivityLoader(hook, store, settings).load(
        activity_payloads(events_frame(later, leads_frame(changed, 14118), "ds1"), "task"))
    assert second.pushed == 6 and second.refused == 0, second.refusals
    assert second.counts["persons_updated"] == 4 and second.counts["deals_updated"] == 4
    assert second.counts["organizations_updated"] == 2
    state = sandbox.state()
    score = next(f["field_code"] for f in state["person_fields"] if f["field_name"] == "LeadBoxer lead score")
    assert {p["job_title"] for p in state["persons"]} == {"Head of Buying"}
    assert {p["custom_fields"][score] for p in state["persons"]} == {75.0}
    assert {d["custom_fields"][score] for d in state["deals"]} == {75.0}
    industry = next(f for f in state["organization_fields"] if f["field_code"] == "industry")
    assert {o["industry"] for o in state["organizations"]} == {
        next(o["id"] for o in industry["options"] if o["label"] == "Financial Services")}

    recorder.assert_all_valid(allow_empty=False)
    v2 = "/api/v2"
    expected = {("GET", v2 + "/personFields"), ("GET", v2 + "/organizationFields"), ("GET", v2 + "/dealFields"),
                ("PATCH", v2 + "/persons/{id}"), ("PATCH", v2 + "/organizations/{id}"), ("PATCH", v2 + "/deals/{id}")}
    assert expected <= seen(recorder), sorted(expected - seen(recorder))
    assert all(e.status < 400 for e in recorder.exchanges), [(e.method, e.path, e.status)
                                                             for e in recorder.exchanges if e.status >= 400]


# ------------------------------------------------------------------------------- sandbox prices
def test_sandbox_costs_match_the_specs_x_token_cost(pipedrive_specs):
    spec_costs = pc.token_costs()
    missing = sorted(key for key in COSTS if key not in spec_costs)
    assert not missing, f"COSTS keys that are not operations of the spec: {missing}"
    wrong = {key: (cost, spec_costs[key]) for key, cost in COSTS.items() if spec_costs[key] != cost}
    assert not wrong, f"sandbox cost != spec x-token-cost (sandbox, spec): {wrong}"
