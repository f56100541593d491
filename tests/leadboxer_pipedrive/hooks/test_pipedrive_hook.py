"""PipedriveHook against the Pipedrive sandbox: typed calls, retries, fail-fast errors, limits, secrecy."""

import logging

import pytest
import requests

from leadboxer_pipedrive.exceptions import ApiAuthError, ApiRequestError, TransientApiError
from leadboxer_pipedrive.hooks.pipedrive import PipedriveHook

TOKEN = "sandbox-token-s3cr3t-value"  # as in conftest.py


def fast_hook(conn_id, **kwargs):
    hook = PipedriveHook(conn_id, **kwargs)
    hook.backoff_base = 0.01  # keep retry waits short in tests
    return hook


def test_person_is_found_by_any_email_case_insensitively(pipedrive_conn):
    hook = fast_hook(pipedrive_conn())
    created = hook.create_person({"name": "Jane", "emails": [
        {"value": "jane@home.io", "primary": True, "label": "home"},
        {"value": "Jane.Doe@Acme.com", "primary": False, "label": "work"}]})
    assert hook.find_person_by_email("jane.doe@acme.com")["id"] == created["id"]
    assert hook.find_person_by_email("doe@acme.com") is None
    assert hook.tokens_spent == 5 + 20 + 20


def test_organization_match_is_exact_not_fuzzy(pipedrive_conn):
    hook = fast_hook(pipedrive_conn())
    holding = hook.create_organization({"name": "Acme Holding"})
    assert hook.find_organization_by_name("Acme") is None
    acme = hook.create_organization({"name": "Acme"})
    assert hook.find_organization_by_name("  acme ")["id"] == acme["id"] != holding["id"]


def test_deals_activities_and_pagination(pipedrive_conn):
    hook = fast_hook(pipedrive_conn())
    hook.page_limit = 2  # force several pages
    person = hook.create_person({"name": "P", "emails": [{"value": "p@x.io", "primary": True}]})
    stage = hook.first_stage_id(2)
    deals = [hook.create_deal({"title": f"D{i}", "person_id": person["id"], "pipeline_id": 2, "stage_id": stage})
             for i in range(5)]
    assert hook.find_open_deal_for_person(person["id"])["id"] == deals[0]["id"]
    assert len(hook.list_deals(person_id=person["id"], status="open")) == 5
    activity = hook.create_activity({"subject": "s", "type": "task", "done": True,
                                     "participants": [{"person_id": person["id"], "primary": True}],
                                     "deal_id": deals[0]["id"]})
    assert activity["person_id"] == person["id"]
    with pytest.raises(ValueError, match="participants"):
        hook.create_activity({"subject": "s", "person_id": person["id"]})


def test_transient_failures_are_retried_then_succeed(pipedrive_sandbox, pipedrive_conn):
    hook = fast_hook(pipedrive_conn())
    pipedrive_sandbox.add_fault({"kind": "status", "status": 503, "count": 2, "path": "/api/v2/pipelines"})
    pipedrive_sandbox.add_fault({"kind": "drop", "count": 1, "path": "/api/v2/pipelines"})
    assert [p["id"] for p in hook.list_pipelines()] == [1, 2]
    assert hook.responses_by_status.get(503) == 2


def test_429_waits_as_the_headers_say(pipedrive_sandbox, pipedrive_conn):
    hook = fast_hook(pipedrive_conn())
    pipedrive_sandbox.add_fault({"kind": "status", "status": 429, "count": 1, "path": "/api/v2/pipelines"})
    hook.list_pipelines()
    assert hook.rate_limited == 1


def test_persistent_failure_gives_up_with_a_clear_error(pipedrive_sandbox, pipedrive_conn):
    hook = fast_hook(pipedrive_conn(), max_attempts=3)
    pipedrive_sandbox.add_fault({"kind": "status", "status": 500, "path": "/api/v2/persons/search"})
    with pytest.raises(TransientApiError, match=r"Pipedrive GET /api/v2/persons/search -> 500"):
        hook.find_person_by_email("a@b.co")
    assert hook.responses_by_status[500] == 3


def test_bad_token_fails_fast_without_revealing_it(pipedrive_conn, caplog, capsys):
    hook = fast_hook(pipedrive_conn(token="wrong-token-value"))
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ApiAuthError) as raised:
        hook.list_pipelines()
    assert hook.responses_by_status == {401: 1}  # no retries
    captured = capsys.readouterr()
    assert "wrong-token-value" not in str(raised.value) + caplog.text + captured.out + captured.err
    ok, message = hook.test_connection()
    assert not ok and "401" in message and "wrong-token-value" not in message


def test_the_token_travels_only_in_the_header(pipedrive_conn, pipedrive_sandbox):
    hook = fast_hook(pipedrive_conn())
    seen = []
    hook.get_conn().hooks["response"].append(lambda response, **_: seen.append(response.request))
    hook.find_person_by_email("x@y.io")
    assert seen and all(TOKEN not in request.url for request in seen)
    assert all(request.headers["x-api-token"] == TOKEN for request in seen)


def test_bad_request_fails_fast_with_pipedrives_message(pipedrive_conn):
    hook = fast_hook(pipedrive_conn())
    with pytest.raises(ApiRequestError, match="read-only") as raised:
        hook._data("POST", "/api/v2/activities", json_body={"subject": "s", "person_id": 1})
    assert raised.value.status == 400


def test_client_limiter_keeps_searches_under_ten_per_two_seconds(pipedrive_sandbox, pipedrive_conn):
    hook = fast_hook(pipedrive_conn())
    for index in range(12):
        hook.find_person_by_email(f"nobody{index}@x.io")
    assert hook.rate_limited == 0
    assert pipedrive_sandbox.state()["counters"]["responses_by_status"].get("429", 0) == 0


def test_test_connection_reports_the_user(pipedrive_conn):
    ok, message = fast_hook(pipedrive_conn()).test_connection()
    assert ok, message


def test_tls_verification_is_on_unless_disabled(pipedrive_conn):
    assert fast_hook(pipedrive_conn()).get_conn().verify is True
    assert fast_hook(pipedrive_conn(verify=False)).get_conn().verify is False


def test_session_is_a_requests_session(pipedrive_conn):
    assert isinstance(fast_hook(pipedrive_conn()).get_conn(), requests.Session)


def test_httphook_extras_configure_the_session_and_our_own_extras_are_never_sent_as_headers(pipedrive_conn):
    hook = fast_hook(pipedrive_conn(verify="false", proxies={"https": "http://proxy.example:3128"}, trust_env=False,
                                    max_redirects=3, daily_token_budget=30000, client_secret="s3cr3t-extra"))
    seen = []
    session = hook.get_conn()
    session.hooks["response"].append(lambda response, **_: seen.append(response.request))
    assert session is hook.get_conn()  # one session for every call
    assert (session.verify, session.proxies, session.trust_env, session.max_redirects) == (
        False, {"https": "http://proxy.example:3128"}, False, 3)
    hook.list_pipelines()  # over http: the https proxy is not used
    sent = {name.lower() for name in seen[0].headers}
    assert "x-api-token" in sent and not sent & {"burst_limit", "daily_token_budget", "client_secret", "verify",
                                                  "proxies", "trust_env", "max_redirects"}
    assert "s3cr3t-extra" not in str(seen[0].headers)


def test_a_host_without_a_scheme_is_https(pipedrive_conn, monkeypatch):
    import json

    monkeypatch.setenv("AIRFLOW_CONN_PIPEDRIVE_BARE",
                       json.dumps({"conn_type": "pipedrive", "host": "acme.pipedrive.com", "password": TOKEN}))
    hook = PipedriveHook("pipedrive_bare")
    hook.get_conn()
    assert hook.base_url == "https://acme.pipedrive.com"
