"""LeadBoxerHook against the LeadBoxer sandbox: nextToken pagination, retries, fail-fast auth errors and
secrecy of the API key."""

import logging
import math
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest

from leadboxer_pipedrive.exceptions import ApiAuthError, ApiRequestError, TransientApiError
from leadboxer_pipedrive.hooks.leadboxer import LeadBoxerHook
from leadboxer_pipedrive.hooks.pagination import PaginationError
from sandbox.leadboxer import DEFAULT_SEGMENT_ID, DEFAULT_SITE

API_KEY = "sandbox-key-s3cr3t-value"  # as in conftest.py
WRONG_KEY = "wrong-key-s3cr3t-value"
SINCE = datetime(2026, 11, 20, tzinfo=UTC)  # the generated data starts that day


def fast_hook(conn_id, **kwargs):
    hook = LeadBoxerHook(conn_id, **kwargs)
    hook.backoff_base = 0.01  # keep retry waits short in tests
    return hook


def sent_requests(hook):
    """Every request the hook's session sends from now on (as prepared, i.e. as on the wire)."""
    seen = []
    hook.get_conn().hooks["response"].append(lambda response, **_: seen.append(response.request))
    return seen


def segment_members(sandbox, segment_id=DEFAULT_SEGMENT_ID):
    return [lead["use_id"] for lead in sandbox.data["leads"] if segment_id in (lead.get("segments") or [])]


def events_calls(sandbox):
    return sandbox.state()["counters"]["by_endpoint"]


def test_pagination_follows_next_token_and_returns_every_member_once(leadboxer_sandbox, leadboxer_conn):
    hook = fast_hook(leadboxer_conn(page_size=7))
    seen = sent_requests(hook)
    members = segment_members(leadboxer_sandbox)
    assert len(members) > 2 * 7  # several pages

    leads = list(hook.iter_leads_seen_since(DEFAULT_SITE, DEFAULT_SEGMENT_ID, SINCE))

    ids = [lead["use_id"] for lead in leads]
    assert len(ids) == len(set(ids))  # nobody twice
    assert set(ids) == set(members)  # nobody missing, nobody from outside the segment
    assert len(seen) == math.ceil(len(members) / 7)
    queries = [parse_qs(urlsplit(request.url).query) for request in seen]
    assert all(q["limit"] == ["7"] and q["segmentId"] == [str(DEFAULT_SEGMENT_ID)] for q in queries)
    assert "nextToken" not in queries[0] and all("nextToken" in q for q in queries[1:])
    assert queries[0]["criteriaTimeFilter"][0].startswith("eventEsTimestamp|between|20/11/2026-")
    assert leadboxer_sandbox.state()["counters"]["responses_by_status"] == {"200": len(seen)}


def test_sessions_and_events_are_paged_too(leadboxer_sandbox, leadboxer_conn):
    hook = fast_hook(leadboxer_conn(page_size=1))
    lead = max(leadboxer_sandbox.data["leads"], key=lambda lead: len(lead["sessions"]))
    assert len(lead["sessions"]) > 1
    sessions = list(hook.iter_sessions(DEFAULT_SITE, lead["use_id"]))
    assert [s["session_id"] for s in sessions] == [s["session_id"] for s in lead["sessions"]]
    session = max(lead["sessions"], key=lambda s: len(s["events"]))
    events = list(hook.iter_events(DEFAULT_SITE, session["session_id"]))
    assert [e["event_id"] for e in events] == [e["event_id"] for e in session["events"]]
    assert DEFAULT_SEGMENT_ID in {s["segmentId"] for s in hook.list_segments(DEFAULT_SITE)}


def test_a_repeated_token_is_an_error_naming_the_endpoint_never_a_silent_end(leadboxer_conn, monkeypatch):
    hook = fast_hook(leadboxer_conn())
    pages = iter([{"data": [1], "nextToken": "t"}, {"data": [2], "nextToken": "u"}, {"data": [3], "nextToken": "t"},
                  {"data": [4]}])
    monkeypatch.setattr(hook, "request", lambda *args, **kwargs: next(pages))
    read = []
    with pytest.raises(PaginationError, match=r"LeadBoxer GET /v1/leads -> .*'t' is repeated"):
        read.extend(hook.paginate("/v1/leads", {"site": "s"}))
    assert read == [1, 2, 3]


def test_a_token_that_is_not_a_token_is_an_error(leadboxer_conn, monkeypatch):
    hook = fast_hook(leadboxer_conn())
    for token in ({"a": 1}, ["t"], True, 1.5):
        monkeypatch.setattr(hook, "request", lambda *args, token=token, **kwargs: {"data": [1], "nextToken": token})
        with pytest.raises(PaginationError, match="is not a cursor"):
            list(hook.paginate("/v1/leads", {"site": "s"}))


def test_pages_follow_the_top_level_token_only(leadboxer_conn, monkeypatch):
    hook = fast_hook(leadboxer_conn())
    bodies = [{"data": [{"properties": {"nextToken": "not-this-one"}}], "nextToken": "t2"},
              {"data": [{"properties": {"nextToken": "nor-this"}}], "nextToken": None},
              {"data": [], "nextToken": "never asked for"}]
    asked = []

    def answer(method, path, *, params):
        asked.append(params.get("nextToken"))
        assert path == "/v1/leads" and params["site"] == "s" and params["sortBy"] == "lastEvent|desc"
        return bodies[len(asked) - 1]
    monkeypatch.setattr(hook, "request", answer)
    assert list(hook.lead_pages_seen_since("s", 14118, SINCE)) == [body["data"] for body in bodies[:2]]
    assert asked == [None, "t2"]


def test_an_answer_that_is_not_a_page_is_a_clear_error(leadboxer_conn, monkeypatch):
    hook = fast_hook(leadboxer_conn())
    for body in ([1, 2], {"data": {"event_id": "e"}}, "text", {"data": 0}, {"data": ""}, {"data": {}}):
        monkeypatch.setattr(hook, "request", lambda *args, body=body, **kwargs: body)
        with pytest.raises(PaginationError, match=r"LeadBoxer GET /v1/leads/events -> 200: the answer is not a page"):
            list(hook.iter_events("s", "session"))
    monkeypatch.setattr(hook, "request", lambda *args, **kwargs: None)  # an empty answer has no rows
    assert list(hook.iter_events("s", "session")) == []


def test_answers_are_decoded_as_utf_8_with_what_cannot_be_read_as_replacement(leadboxer_conn):
    import requests

    hook = fast_hook(leadboxer_conn())
    response = requests.Response()
    response.status_code = 200
    response._content = b'{"data": [{"use_id": "a", "firstName": "Bj\xf6rn", "title": "a\\ud800"}], "nextToken": null}'
    assert hook._decode("GET", "/v1/leads", response) == {
        "data": [{"use_id": "a", "firstName": "Bj\ufffdrn", "title": "a\ud800"}], "nextToken": None}
    response._content = b"<html>not json</html>"
    response.headers["Content-Type"] = "text/html"
    with pytest.raises(ApiRequestError, match=r"LeadBoxer GET /v1/leads -> 200: the answer is not JSON "
                                              r"\(text/html, 21 bytes\): '<html>not json</html>'"):
        hook._decode("GET", "/v1/leads", response)


def test_concurrency_and_rate_come_from_the_connection(leadboxer_conn):
    hook = fast_hook(leadboxer_conn())
    assert hook.max_concurrency == 8 and hook._limiter.limit == 100 and hook._limiter.window == 1.0
    tuned = fast_hook(leadboxer_conn(max_concurrency=3, requests_per_second=5))
    assert tuned.max_concurrency == 3 and tuned._limiter.limit == 5
    with pytest.raises(ValueError, match="max_concurrency must be at least 1"):
        _ = fast_hook(leadboxer_conn(max_concurrency=0)).max_concurrency


def test_a_429_pauses_every_reader_for_the_time_the_server_names(leadboxer_sandbox, leadboxer_conn):
    hook = fast_hook(leadboxer_conn())
    leadboxer_sandbox.add_fault({"kind": "status", "status": 429, "count": 1, "path": "^/v1/segments$"})
    assert DEFAULT_SEGMENT_ID in {s["segmentId"] for s in hook.list_segments(DEFAULT_SITE)}
    assert hook.responses_by_status == {429: 1, 200: 1}
    assert hook._limiter._paused_until > 0  # Retry-After: 1 held every thread of the hook back
    # A hint of days (an epoch time in x-ratelimit-reset, say) holds them back no longer than a retry waits.
    import time

    import requests

    answer = requests.Response()
    answer.status_code, answer.headers["Retry-After"] = 429, str(10**9)
    hook.after_response("GET", "/v1/leads", answer)
    assert hook._limiter._paused_until <= time.monotonic() + hook.backoff_max


def test_wrong_api_key_fails_fast_without_revealing_it(leadboxer_sandbox, leadboxer_conn, caplog, capsys):
    hook = fast_hook(leadboxer_conn(api_key=WRONG_KEY))
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ApiAuthError) as raised:
        list(hook.iter_leads_seen_since(DEFAULT_SITE, DEFAULT_SEGMENT_ID, SINCE))
    assert raised.value.status == 401
    assert hook.responses_by_status == {401: 1}  # no retries
    assert leadboxer_sandbox.state()["counters"]["requests"] == 1
    captured = capsys.readouterr()
    everything = str(raised.value) + repr(raised.value) + caplog.text + captured.out + captured.err
    assert WRONG_KEY not in everything and API_KEY not in everything
    assert "leadboxer_test" in str(raised.value)  # it names the connection to fix


def test_the_api_key_travels_only_in_the_x_api_key_header(leadboxer_conn):
    hook = fast_hook(leadboxer_conn(page_size=10))
    seen = sent_requests(hook)
    lead = next(hook.iter_leads_seen_since(DEFAULT_SITE, None, SINCE))
    list(hook.iter_sessions(DEFAULT_SITE, lead["use_id"]))
    hook.list_segments(DEFAULT_SITE)
    assert len(seen) >= 3
    for request in seen:
        assert API_KEY not in request.url
        assert request.headers["x-api-key"] == API_KEY
        others = {k: v for k, v in request.headers.items() if k.lower() != "x-api-key"}
        assert API_KEY not in str(others) and "Authorization" not in request.headers
        assert request.body is None


def test_5xx_and_dropped_connections_are_retried(leadboxer_sandbox, leadboxer_conn):
    hook = fast_hook(leadboxer_conn(page_size=25))
    leadboxer_sandbox.add_fault({"kind": "status", "status": 503, "count": 2, "path": "^/v1/leads$"})
    leadboxer_sandbox.add_fault({"kind": "drop", "count": 1, "path": "^/v1/leads$"})
    leadboxer_sandbox.add_fault({"kind": "status", "status": 502, "count": 1, "path": "^/v1/leads$", "after": 1})
    leads = list(hook.paginate("/v1/leads", {"site": DEFAULT_SITE, "segmentId": DEFAULT_SEGMENT_ID}))
    assert sorted(lead["use_id"] for lead in leads) == sorted(segment_members(leadboxer_sandbox))
    assert hook.responses_by_status.get(503) == 2 and hook.responses_by_status.get(502) == 1
    rules = {(r["kind"], r["status"]): r["fired"] for r in leadboxer_sandbox.state()["config"]["faults"]}
    assert rules == {("status", 503): 2, ("drop", 500): 1, ("status", 502): 1}


def test_persistent_failure_gives_up_with_a_clear_error(leadboxer_sandbox, leadboxer_conn):
    hook = fast_hook(leadboxer_conn(), max_attempts=3)
    leadboxer_sandbox.add_fault({"kind": "status", "status": 500, "path": "^/v1/segments$"})
    with pytest.raises(TransientApiError, match=r"LeadBoxer GET /v1/segments -> 500"):
        hook.list_segments(DEFAULT_SITE)
    assert hook.responses_by_status == {500: 3}


def test_test_connection_ok(leadboxer_sandbox, leadboxer_conn):
    ok, message = fast_hook(leadboxer_conn(dataset_id=DEFAULT_SITE)).test_connection()
    assert ok, message
    assert leadboxer_sandbox.state()["counters"]["by_endpoint"] == {"GET /v1/leads": 1}


def test_test_connection_failing(leadboxer_conn):
    ok, message = fast_hook(leadboxer_conn(api_key=WRONG_KEY)).test_connection()
    assert not ok and "401" in message
    assert WRONG_KEY not in message


def test_test_connection_without_a_key(leadboxer_conn):
    ok, message = fast_hook(leadboxer_conn(api_key="")).test_connection()
    assert not ok and "password" in message


@pytest.mark.parametrize("host, cause", [
    ("http://127.0.0.1:{port}", r"the connection is refused \(127\.0\.0\.1:\d+\)"),
    ("https://no-such-host.invalid", r"the host name does not resolve \(no-such-host\.invalid\)"),
])
def test_a_host_that_cannot_be_reached_fails_at_once_naming_host_and_cause(host, cause, monkeypatch):
    import json
    import socket

    from airflow.sdk.exceptions import AirflowFailException

    from leadboxer_pipedrive.exceptions import ApiUnreachableError

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("AIRFLOW_CONN_LEADBOXER_AWAY", json.dumps({
        "conn_type": "leadboxer", "host": host.format(port=port), "password": API_KEY}))
    hook = fast_hook("leadboxer_away")
    attempts = []
    hook.before_request = lambda method, path: attempts.append(path)
    with pytest.raises(ApiUnreachableError, match=rf"LeadBoxer GET /v1/leads -> no answer: {cause} \(check the "
                                                  rf"host of connection 'leadboxer_away'") as raised:
        list(hook.iter_leads_seen_since(DEFAULT_SITE, DEFAULT_SEGMENT_ID, SINCE))
    assert isinstance(raised.value, AirflowFailException)  # the task is not retried either
    assert attempts == ["/v1/leads"] and API_KEY not in str(raised.value)


@pytest.mark.parametrize("extra, sent", [({}, (10.0, 30.0)), ({"timeout": 5}, (5.0, 5.0))])
def test_a_connection_is_given_less_time_to_open_than_an_answer(leadboxer_sandbox, leadboxer_conn, extra, sent):
    """A host that never accepts (a firewall dropping the connection) fails its attempts in 10 s each."""
    hook = fast_hook(leadboxer_conn(**extra))
    session = hook.get_conn()
    timeouts = []
    original = session.request
    session.request = lambda *args, **kwargs: timeouts.append(kwargs["timeout"]) or original(*args, **kwargs)
    list(hook.iter_leads_seen_since(DEFAULT_SITE, DEFAULT_SEGMENT_ID, SINCE))
    assert timeouts and set(timeouts) == {sent}
