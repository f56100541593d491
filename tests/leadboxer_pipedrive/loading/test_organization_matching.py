"""Organizations matched through a mapped Pipedrive domain field (``organization_domain_field``):
exact, field-specific, cached, priced; never a fuzzy or wrong-field hit."""

from __future__ import annotations

import json

import pytest
import requests
from loader_frames import activity_frame

from leadboxer_pipedrive.exceptions import SyncConfigurationError
from leadboxer_pipedrive.hooks.ledger import LedgerHook
from leadboxer_pipedrive.hooks.pipedrive import PipedriveHook
from leadboxer_pipedrive.loading import ActivityLoader, LoadSettings
from leadboxer_pipedrive.loading.fields import organization_domain_field_code
from leadboxer_pipedrive.loading.plan import plan_activity_load
from tests.support.ledgers import ledger_connection

DOMAIN = "9b10914d8b0a097ace7176e8973f5c3dee92bb44"  # the sandbox's "Domain" field: sha1("Domain")
PARENT_DOMAIN = "4a2e0ea691fac6959b72d35f894374e79d7881c5"  # sha1("Parent company domain")
ACME = [{"use_id": "a", "email": "a@acme.com", "organizationName": "Acme", "organizationDomain": "acme.com"}]


def hook(conn_id):
    pipedrive = PipedriveHook(conn_id)
    pipedrive.backoff_base = 0.01
    return pipedrive


def settings(run_id="run-1", **kwargs):
    return LoadSettings(dataset_id="ds", dag_id="dag", run_id=run_id, workers=1,
                        organization_domain_field="Domain", **kwargs)


def add_organization(sandbox, name, custom_fields):
    response = requests.post(f"{sandbox.url}/api/v2/organizations", headers={"x-api-token": "sandbox-token"},
                             json={"name": name, "custom_fields": custom_fields}, timeout=10)
    response.raise_for_status()
    return response.json()["data"]["id"]


def org_of(state, email):
    return next(p.get("org_id") for p in state["persons"] if p["emails"][0]["value"] == email)


@pytest.mark.parametrize("account_index", [True, False], ids=["index", "search"])
def test_an_organization_is_found_by_its_domain_field_whatever_its_name(pipedrive_sandbox, pipedrive_conn,
                                                                        ledger_conn, account_index):
    existing = add_organization(pipedrive_sandbox, "Acme Corporation International", {DOMAIN: "ACME.com"})
    result = ActivityLoader(hook(pipedrive_conn), LedgerHook(ledger_conn),
                            settings(account_index=account_index)).load(activity_frame(ACME, 1))
    state = pipedrive_sandbox.state()
    assert [o["id"] for o in state["organizations"]] == [existing]
    assert org_of(state, "a@acme.com") == existing
    assert result.counts["organizations_found"] == 1 and result.counts["organizations_created"] == 0
    assert result.counts["organizations_found_by_domain"] == (0 if account_index else 1)  # search: by domain first


def test_the_same_domain_in_another_field_is_not_a_match(pipedrive_sandbox, pipedrive_conn, ledger_conn):
    parent = add_organization(pipedrive_sandbox, "Acme Holding", {PARENT_DOMAIN: "acme.com"})
    result = ActivityLoader(hook(pipedrive_conn), LedgerHook(ledger_conn), settings()).load(activity_frame(ACME, 1))
    state = pipedrive_sandbox.state()
    created = [o for o in state["organizations"] if o["id"] != parent]
    assert [o["name"] for o in created] == ["Acme"]
    assert created[0]["custom_fields"] == {DOMAIN: "acme.com"}  # new organizations get the domain
    assert org_of(state, "a@acme.com") == created[0]["id"]
    assert result.counts["organizations_found_by_domain"] == 0


def test_a_created_organization_is_found_again_by_domain_under_another_spelling(
        pipedrive_sandbox, pipedrive_conn, ledger_conn, tmp_path, monkeypatch):
    ActivityLoader(hook(pipedrive_conn), LedgerHook(ledger_conn), settings()).load(activity_frame(ACME, 1))
    # Another ledger (another Airflow, or a lost ledger) and a lead spelling the company differently.
    renamed = [{"use_id": "b", "email": "b@acme.com", "organizationName": "ACME B.V.",
                "organizationDomain": "https://www.acme.com/"}]
    (tmp_path / "other").mkdir()
    with ledger_connection("sqlite", tmp_path / "other") as conn:
        monkeypatch.setenv("AIRFLOW_CONN_LEDGER_OTHER", json.dumps(conn))
        ActivityLoader(hook(pipedrive_conn), LedgerHook("ledger_other"), settings()).load(
            activity_frame(renamed, 1, prefix="other"))
    state = pipedrive_sandbox.state()
    assert len(state["organizations"]) == 1
    assert org_of(state, "a@acme.com") == org_of(state, "b@acme.com") == state["organizations"][0]["id"]


def test_the_field_code_is_looked_up_once_a_day_and_the_plan_prices_the_domain_search(
        pipedrive_sandbox, pipedrive_conn, ledger_conn):
    ledger = LedgerHook(ledger_conn)
    frame = activity_frame(ACME, 1)
    plan = plan_activity_load(frame, ledger, "ds", None, "per_event", "Domain")
    pipedrive = hook(pipedrive_conn)
    ActivityLoader(pipedrive, ledger, settings(account_index=False)).load(frame)
    counters = pipedrive_sandbox.state()["counters"]
    assert plan.tokens(pipedrive.token_costs) == counters["tokens_spent"], (dict(plan.calls), counters["by_endpoint"])
    assert counters["by_endpoint"]["GET /api/v2/organizationFields"] == 1
    assert counters["by_endpoint"]["GET /api/v2/organizations/search"] == 2  # domain field, then name

    later = activity_frame([{**ACME[0], "use_id": "c", "email": "c@acme.com"}], 1, prefix="later")
    assert plan_activity_load(later, ledger, "ds", None, "per_event", "Domain").calls[
        ("GET", "/api/v2/organizationFields")] == 0
    ActivityLoader(pipedrive, ledger, settings(run_id="run-2", account_index=False)).load(later)
    counters = pipedrive_sandbox.state()["counters"]
    assert counters["by_endpoint"]["GET /api/v2/organizationFields"] == 1  # cached in the ledger
    assert counters["by_endpoint"]["GET /api/v2/organizations/search"] == 2  # the org is in the ledger


def test_an_unknown_domain_field_fails_with_the_existing_fields_and_writes_nothing(
        pipedrive_sandbox, pipedrive_conn, ledger_conn):
    unknown = LoadSettings(dataset_id="ds", dag_id="dag", run_id="r", organization_domain_field="Website domain")
    with pytest.raises(SyncConfigurationError, match=r"no organization custom field named 'Website domain'.*"
                                                     r"'Domain', .*'Parent company domain'"):
        ActivityLoader(hook(pipedrive_conn), LedgerHook(ledger_conn), unknown).load(activity_frame(ACME, 1))
    state = pipedrive_sandbox.state()
    assert state["organizations"] == [] and state["persons"] == [] and state["activities"] == []


def test_a_field_pipedrive_cannot_search_for_a_domain_is_refused(ledger_conn):
    class Fields:
        def list_fields(self, entity):
            return [{"field_name": "Domain", "field_code": DOMAIN, "field_type": "enum", "is_custom_field": True}]

    with pytest.raises(SyncConfigurationError, match="'Domain' is a field of type enum; a domain needs a text"):
        organization_domain_field_code(Fields(), LedgerHook(ledger_conn), "Domain")


def test_one_organization_name_is_created_once_whether_its_leads_carry_a_domain_or_not(ledger_conn, monkeypatch):
    """A lead with a domain ("domain:acme.com") and one without ("name:acme bv") match the same organization
    by name: loaded at once, on a Pipedrive slow enough that both search before either creates, they must
    still make one organization."""
    from sandbox.pipedrive import PipedriveSandbox

    leads = [{"use_id": "a", "email": "a@acme.com", "organizationName": "Acme BV", "organizationDomain": "acme.com"},
             {"use_id": "b", "email": "b@example.net", "organizationName": "  ACME bv "}]
    with PipedriveSandbox(latency=0.3) as slow:
        monkeypatch.setenv("AIRFLOW_CONN_PIPEDRIVE_SLOW", json.dumps({
            "conn_type": "pipedrive", "host": slow.url, "password": "sandbox-token", "extra": {"burst_limit": 100}}))
        no_domain_field = LoadSettings(dataset_id="ds", dag_id="dag", run_id="run-1", workers=2)
        ActivityLoader(hook("pipedrive_slow"), LedgerHook(ledger_conn), no_domain_field).load(activity_frame(leads, 1))
        organizations = slow.state()["organizations"]
    assert [o["name"] for o in organizations] == ["Acme BV"] or [o["name"] for o in organizations] == ["ACME bv"]
