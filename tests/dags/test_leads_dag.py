"""The leads sync DAG, run for real with dag.test() against both sandboxes, per link_to option."""

from __future__ import annotations

import copy
import json
import sqlite3

import pytest

pytestmark = pytest.mark.integration

DAG_ID = "leadboxer_pipedrive_leads"
SITE = "leads-test-dataset"
HOUR_5 = 1_795_150_800_000  # 2026-11-20T05:00Z
HOUR = 3_600_000


def lead(use_id, *, email=None, org=None, domain=None, score="55", at=HOUR_5 + 600_000, segments=(1,), name=None):
    record = {"use_id": use_id, "site": SITE, "esScore": score, "segments": list(segments),
              "lastEvent": at, "eventEsTimestamp": str(at),
              "leadcard_url": f"https://app.leadboxer.com?q={use_id}&site={SITE}",
              "sessions": [{"session_id": f"s-{use_id}-{at}", "use_id": use_id, "site": SITE,
                            "session_unix_timestamp": str(at), "duration": "60",
                            "events": [{"event_id": f"e-{use_id}-{at}", "session_id": f"s-{use_id}-{at}",
                                        "use_id": use_id, "site": SITE, "eventUnixTimestamp": str(at),
                                        "event_type": "pageview", "title": "Pricing",
                                        "original_url": "https://example.com/pricing"}]}]}
    if email:
        record["email"] = email
        record["fullName"] = name or email.split("@")[0].title()
    if org:
        record["organizationName"] = org
    if domain:
        record["organizationDomain"] = domain
    return record


def dataset(*leads):
    return {"site": SITE, "segments": [{"segmentId": 1, "name": "Test segment", "datasetId": SITE}],
            "leads": list(leads)}


def conf(link_to, **extra):
    """Hourly runs (the whole-segment runs: test_segment_sync.py)."""
    return {"dataset_id": SITE, "segment_id": 1, "link_to": link_to, "scope": "hour", **extra}


def summaries(path):
    with sqlite3.connect(path) as db:
        return [json.loads(r[0]) for r in db.execute("SELECT summary FROM lbpd_run ORDER BY rowid")]


def rejections(path):
    with sqlite3.connect(path) as db:
        return dict(db.execute("SELECT record_id, reason FROM lbpd_rejected_row WHERE entity = 'lead'"))


def headers():
    return {"x-api-token": "sandbox-token"}


def create(pipedrive_sandbox, path, body):
    import requests

    response = requests.post(f"{pipedrive_sandbox.url}{path}", json=body, headers=headers(), timeout=10)
    assert response.status_code < 300, response.text
    return response.json()["data"]


def leads_by_title_prefix(state):
    return {lead["origin_id"].split(":", 1)[1]: lead for lead in state["leads"]}


def test_link_to_organization_finds_or_creates_and_rejects_leads_without_one(
        run_dag, leadboxer_sandbox, pipedrive_sandbox, connections):
    existing = create(pipedrive_sandbox, "/api/v2/organizations", {"name": "Acme BV"})
    leadboxer_sandbox.load(dataset(
        lead("a", email="jane@acme.com", org="Acme BV"),
        lead("b", org="Globex"),
        lead("c", email="solo@nowhere.io"),
        lead("d", org="Initech", segments=(2,)),  # not a member: never listed
    ))
    assert run_dag(DAG_ID, "2026-11-20T06:00:00", conf("organization")).state == "success"
    state = pipedrive_sandbox.state()
    leads = leads_by_title_prefix(state)
    assert set(leads) == {"a", "b"}
    assert leads["a"]["organization_id"] == existing["id"]
    assert leads["a"].get("person_id") is None
    globex = [o for o in state["organizations"] if o["name"] == "Globex"]
    assert len(globex) == 1 and leads["b"]["organization_id"] == globex[0]["id"]
    assert len(state["organizations"]) == 2 and state["persons"] == []
    assert "organization unknown" in rejections(connections)["c"]
    summary = summaries(connections)[-1]
    assert (summary["extracted"], summary["pushed"], summary["rejected"]) == (3, 2, 1)
    labels = {label["name"]: label["id"] for label in state["lead_labels"]}
    assert leads["a"]["label_ids"] == [labels["Warm"]]
    assert leads["a"]["title"] == "Acme BV – LeadBoxer lead (score 55)"


def test_link_to_person_finds_or_creates_and_rejects_leads_without_email(
        run_dag, leadboxer_sandbox, pipedrive_sandbox, connections):
    existing = create(pipedrive_sandbox, "/api/v2/persons",
                      {"name": "Jane", "emails": [{"value": "Jane@Acme.com", "primary": True}]})
    leadboxer_sandbox.load(dataset(
        lead("a", email=" jane@acme.com ", org="Acme BV"),
        lead("b", email="new@globex.io"),
        lead("c", org="Initech"),
    ))
    assert run_dag(DAG_ID, "2026-11-20T06:00:00", conf("person")).state == "success"
    state = pipedrive_sandbox.state()
    leads = leads_by_title_prefix(state)
    assert set(leads) == {"a", "b"}
    assert leads["a"]["person_id"] == existing["id"] and leads["a"].get("organization_id") is None
    created = [p for p in state["persons"] if p["id"] == leads["b"]["person_id"]]
    assert [e["value"] for e in created[0]["emails"]] == ["new@globex.io"]
    assert len(state["persons"]) == 2 and state["organizations"] == []
    assert "email missing" in rejections(connections)["c"]


def test_link_to_both_links_person_to_organization_and_handles_partial_leads(
        run_dag, leadboxer_sandbox, pipedrive_sandbox, connections):
    leadboxer_sandbox.load(dataset(
        lead("a", email="jane@acme.com", org="Acme BV", domain="acme.com"),
        lead("b", email="joe@acme.com", org="Acme BV", domain="acme.com"),  # colleague: same organization
        lead("c", email="solo@nowhere.io"),  # email, no organization: person-only lead
        lead("d", org="Globex"),  # organization, no email: organization-only lead
        lead("e"),  # neither: rejected
    ))
    assert run_dag(DAG_ID, "2026-11-20T06:00:00", conf("both")).state == "success"
    state = pipedrive_sandbox.state()
    leads = leads_by_title_prefix(state)
    persons = {p["id"]: p for p in state["persons"]}
    acme = [o for o in state["organizations"] if o["name"] == "Acme BV"]
    assert len(acme) == 1
    for use_id in ("a", "b"):
        assert leads[use_id]["organization_id"] == acme[0]["id"]
        assert persons[leads[use_id]["person_id"]]["org_id"] == acme[0]["id"]
    assert leads["c"]["person_id"] and leads["c"].get("organization_id") is None
    assert leads["d"]["organization_id"] and leads["d"].get("person_id") is None
    assert set(leads) == {"a", "b", "c", "d"}
    assert "neither email nor organization" in rejections(connections)["e"]


def test_a_lead_that_gains_an_organization_later_is_updated_not_duplicated(
        run_dag, leadboxer_sandbox, pipedrive_sandbox, connections):
    first = lead("a", email="jane@acme.com", score="30")
    leadboxer_sandbox.load(dataset(first))
    run_dag(DAG_ID, "2026-11-20T06:00:00", conf("both"))
    before = leads_by_title_prefix(pipedrive_sandbox.state())["a"]
    assert before.get("organization_id") is None

    later = copy.deepcopy(first)
    later.update({"organizationName": "Acme BV", "esScore": "80", "lastEvent": HOUR_5 + HOUR + 60_000,
                  "eventEsTimestamp": str(HOUR_5 + HOUR + 60_000)})
    later["sessions"].append(lead("a", at=HOUR_5 + HOUR + 60_000)["sessions"][0])
    leadboxer_sandbox.load(dataset(later))
    assert run_dag(DAG_ID, "2026-11-20T07:00:00", conf("both")).state == "success"
    state = pipedrive_sandbox.state()
    assert len(state["leads"]) == 1 and len(state["persons"]) == 1
    after = state["leads"][0]
    assert after["id"] == before["id"]
    assert after["organization_id"] == state["organizations"][0]["id"]
    assert "score 80" in after["title"]
    assert state["persons"][0]["org_id"] == after["organization_id"]
    assert summaries(connections)[-1]["loaded"]["leads_updated"] == 1


def test_rerunning_and_backfilling_synced_hours_creates_nothing_new(
        run_dag, leadboxer_sandbox, pipedrive_sandbox, connections):
    leadboxer_sandbox.load(dataset(
        lead("a", email="jane@acme.com", org="Acme BV"),
        lead("b", email="bob@globex.io", org="Globex", at=HOUR_5 + HOUR + 5_000),
    ))
    run_dag(DAG_ID, "2026-11-20T06:00:00", conf("both"))
    run_dag(DAG_ID, "2026-11-20T07:00:00", conf("both"))
    counts = {k: len(v) for k, v in pipedrive_sandbox.state().items() if k in ("leads", "persons", "organizations")}
    assert counts == {"leads": 2, "persons": 2, "organizations": 2}
    for hour in ("2026-11-20T06:00:00", "2026-11-20T07:00:00"):
        assert run_dag(DAG_ID, hour, conf("both")).state == "success"
        assert summaries(connections)[-1]["pushed"] == 0
    after = {k: len(v) for k, v in pipedrive_sandbox.state().items() if k in ("leads", "persons", "organizations")}
    assert after == counts


def test_custom_fields_are_mapped_by_name_and_unknown_names_fail_clearly(
        run_dag, leadboxer_sandbox, pipedrive_sandbox, connections):
    leadboxer_sandbox.load(dataset(lead("a", email="jane@acme.com", org="Acme BV", score="91")))
    mapping = {"lead_score": "LeadBoxer lead score", "leadcard_url": "LeadBoxer lead card"}
    assert run_dag(DAG_ID, "2026-11-20T06:00:00", conf("both", custom_fields=mapping)).state == "success"
    fields = {f["field_name"]: f["field_code"] for f in _deal_fields(pipedrive_sandbox)}
    created = pipedrive_sandbox.state()["leads"][0]
    assert created[fields["LeadBoxer lead score"]] == 91
    assert created[fields["LeadBoxer lead card"]].startswith("https://app.leadboxer.com?q=a")

    bad = run_dag(DAG_ID, "2026-11-20T06:00:00", conf("both", custom_fields={"lead_score": "No such field"}))
    assert bad.state == "failed"


def _deal_fields(pipedrive_sandbox):
    import requests

    return requests.get(f"{pipedrive_sandbox.url}/api/v2/dealFields", headers=headers(), timeout=10).json()["data"]


def test_a_leads_dry_run_writes_nothing_and_prices_the_real_run(run_dag, leadboxer_sandbox, pipedrive_sandbox,
                                                                connections):
    leadboxer_sandbox.load(dataset(lead("a", email="jane@acme.com", org="Acme BV"), lead("b", org="Globex"),
                                   lead("c", email="c@solo.io")))
    assert run_dag(DAG_ID, "2026-11-20T06:00:00", conf("both", dry_run=True)).state == "success"
    state = pipedrive_sandbox.state()
    assert state["leads"] == [] and state["persons"] == [] and state["organizations"] == []
    plan = summaries(connections)[-1]["plan"]
    assert plan["would_create"] == {"leads": 3, "organizations": 2, "persons": 2}
    assert run_dag(DAG_ID, "2026-11-20T06:00:00", conf("both")).state == "success"
    spent = summaries(connections)[-1]["tokens_spent"]
    assert abs(spent - plan["estimated_tokens"]) <= 0.10 * spent, (spent, plan)


def test_max_leads_holds_for_the_leads_sync(run_dag, leadboxer_sandbox, pipedrive_sandbox, connections):
    leadboxer_sandbox.load(dataset(*(lead(f"l{n}", org=f"Org {n}") for n in range(5))))
    assert run_dag(DAG_ID, "2026-11-20T06:00:00", conf("organization", max_leads=2)).state == "success"
    assert len(pipedrive_sandbox.state()["leads"]) == 2


def test_organizations_match_by_the_mapped_domain_field_before_their_name(
        run_dag, leadboxer_sandbox, pipedrive_sandbox, connections):
    domain_field = next(f["field_code"] for f in _organization_fields(pipedrive_sandbox) if f["field_name"] == "Domain")
    existing = create(pipedrive_sandbox, "/api/v2/organizations",
                      {"name": "Acme Corporation", "custom_fields": {domain_field: "acme.com"}})
    leadboxer_sandbox.load(dataset(lead("a", email="jane@acme.com", org="Acme BV", domain="www.acme.com"),
                                   lead("b", org="Globex", domain="https://globex.io/about")))
    assert run_dag(DAG_ID, "2026-11-20T06:00:00",
                   conf("both", organization_domain_field="Domain")).state == "success"
    state = pipedrive_sandbox.state()
    leads = leads_by_title_prefix(state)
    assert leads["a"]["organization_id"] == existing["id"]  # by domain, though the names differ
    assert state["persons"][0]["org_id"] == existing["id"]
    globex = [o for o in state["organizations"] if o["name"] == "Globex"]
    assert len(state["organizations"]) == 2 and leads["b"]["organization_id"] == globex[0]["id"]
    assert globex[0]["custom_fields"] == {domain_field: "globex.io"}
    assert summaries(connections)[-1]["loaded"]["organizations_found_by_domain"] == 1


def _organization_fields(pipedrive_sandbox):
    import requests

    return requests.get(f"{pipedrive_sandbox.url}/api/v2/organizationFields", headers=headers(),
                        timeout=10).json()["data"]
