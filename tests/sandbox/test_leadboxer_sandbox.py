"""The LeadBoxer sandbox: a real loopback server in a background thread, driven with ``requests``."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sandbox.leadboxer import DEFAULT_SEGMENT_ID, DEFAULT_SITE, LeadBoxerSandbox, generate_dataset  # noqa: E402

KEY = {"x-api-key": "sandbox-key"}
START = datetime(2026, 11, 20, tzinfo=UTC)


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@pytest.fixture(scope="module")
def sandbox():
    with LeadBoxerSandbox() as server:
        yield server


@pytest.fixture(autouse=True)
def _clean(sandbox):
    sandbox.reset()
    yield
    sandbox.reset()


def get(sandbox, path, headers=KEY, **params):
    return requests.get(sandbox.url + path, params=params, headers=headers, timeout=10)


def all_leads(server, **params):
    """Follow nextToken through /v1/leads; returns (leads, pages)."""
    leads, pages, token = [], 0, None
    while True:
        query = {"site": DEFAULT_SITE, **params, **({"nextToken": token} if token else {})}
        response = get(server, "/v1/leads", **query)
        assert response.status_code == 200, response.text
        body = response.json()
        leads.extend(body["data"])
        pages += 1
        assert body["rows"] == len(body["data"])
        token = body["nextToken"]
        if not token:
            return leads, pages


# -- auth and basics ---------------------------------------------------------------------------------

def test_requires_api_key(sandbox):
    for headers in ({}, {"x-api-key": "wrong"}):
        response = get(sandbox, "/v1/leads", headers=headers, site=DEFAULT_SITE)
        assert response.status_code == 401
        assert response.json() == {"error": "Unauthorized", "message": "Invalid or missing API key"}
    assert get(sandbox, "/v1/segments", headers={}, datasetId=DEFAULT_SITE).status_code == 401
    assert get(sandbox, "/_sandbox/state", headers={}).status_code == 200  # control endpoints: no auth


def test_site_required_and_unknown_site_is_empty(sandbox):
    response = get(sandbox, "/v1/leads")
    assert response.status_code == 400
    assert response.json() == {"error": "Bad Request", "message": "site is required"}
    body = get(sandbox, "/v1/leads", site="0" * 32).json()
    assert body["data"] == [] and body["total"] == 0 and body["nextToken"] is None


def test_envelope_and_lead_shape(sandbox):
    body = get(sandbox, "/v1/leads", site=DEFAULT_SITE).json()
    assert set(body) == {"data", "nextToken", "total", "rows", "site", "timeZone"}
    assert body["rows"] == 50 and body["total"] == 200 and body["timeZone"] == "Europe/Amsterdam"
    lead = body["data"][0]
    assert "sessions" not in lead
    assert re.fullmatch(r"\d{13}\.\d{9}", lead["use_id"])
    assert isinstance(lead["lastEvent"], int) and lead["eventEsTimestamp"] == str(lead["lastEvent"])
    assert lead["leadcard_url"] == f"https://app.leadboxer.com?q={lead['use_id']}&site={DEFAULT_SITE}"
    assert lead["type"] == {"name": "user"}
    last_events = [lead["lastEvent"] for lead in body["data"]]
    assert last_events == sorted(last_events, reverse=True)
    asc = get(sandbox, "/v1/leads", site=DEFAULT_SITE, sortBy="lastEvent|asc").json()["data"]
    assert [lead["lastEvent"] for lead in asc] == sorted(lead["lastEvent"] for lead in asc)


# -- pagination and filters --------------------------------------------------------------------------

def test_pagination_collects_every_segment_member_once(sandbox):
    expected = {lead["use_id"] for lead in sandbox.data["leads"] if DEFAULT_SEGMENT_ID in lead["segments"]}
    leads, pages = all_leads(sandbox, segmentId=DEFAULT_SEGMENT_ID, limit=7)
    ids = [lead["use_id"] for lead in leads]
    assert len(ids) == len(set(ids)) == len(expected)
    assert set(ids) == expected
    assert pages == -(-len(expected) // 7)
    # The members include anonymous leads too (the consumer must skip them).
    assert any(not lead.get("email") for lead in leads)
    assert any(lead.get("email") for lead in leads)


def test_bad_tokens_and_limits(sandbox):
    assert get(sandbox, "/v1/leads", site=DEFAULT_SITE, nextToken="garbled!").status_code == 400
    first = get(sandbox, "/v1/leads", site=DEFAULT_SITE, limit=5).json()
    # A token belongs to its query: reusing it with other filters is refused.
    response = get(sandbox, "/v1/leads", site=DEFAULT_SITE, limit=5, segmentId=14119, nextToken=first["nextToken"])
    assert response.status_code == 400
    assert get(sandbox, "/v1/leads", site=DEFAULT_SITE, limit="x").status_code == 400
    assert get(sandbox, "/v1/leads", site=DEFAULT_SITE, limit=5000).json()["rows"] == 200  # capped at 1000


def test_segment_filter_and_email_filter(sandbox):
    leads, _ = all_leads(sandbox, segmentId=14119, limit=1000)
    assert leads and all(14119 in lead["segments"] and lead.get("organizationName") for lead in leads)
    assert get(sandbox, "/v1/leads", site=DEFAULT_SITE, segmentId=14120).json()["total"] == 200
    assert get(sandbox, "/v1/leads", site=DEFAULT_SITE, segmentId=99999).json()["total"] == 0
    with_email, _ = all_leads(sandbox, segmentId=DEFAULT_SEGMENT_ID, criteriaFieldFilter="hasanyvalue|email",
                              limit=1000)
    members, _ = all_leads(sandbox, segmentId=DEFAULT_SEGMENT_ID, limit=1000)
    assert with_email and all(lead["email"] for lead in with_email)
    assert len(with_email) == sum(1 for lead in members if lead.get("email"))
    segments = get(sandbox, "/v1/segments", datasetId=DEFAULT_SITE).json()["data"]
    assert [s["segmentId"] for s in segments] == [14118, 14119, 14120]
    assert get(sandbox, "/v1/segments", datasetId="other").json()["data"] == []


def _tz_data():
    def lead(use_id, last_ms):
        return {"use_id": use_id, "lastEvent": last_ms, "eventEsTimestamp": str(last_ms), "segments": [1]}
    late = ms(datetime(2026, 11, 20, 23, 30, tzinfo=UTC))  # 21 Nov 00:30 in Amsterdam
    noon = ms(datetime(2026, 11, 20, 12, 0, tzinfo=UTC))
    now = datetime.now(UTC)
    three_days_ago = ms(datetime.combine((now - timedelta(days=3)).date(), datetime.min.time(), UTC)
                        + timedelta(hours=12))
    return {"site": "tz", "segments": [], "leads": [
        lead("late", late), lead("noon", noon), lead("now", ms(now)), lead("old", three_days_ago)]}


def test_time_filter_by_day_in_time_zone():
    with LeadBoxerSandbox(_tz_data()) as server:
        def ids(spec, tz=None):
            params = {"site": "tz", "criteriaTimeFilter": spec, **({"timeZone": tz} if tz else {})}
            response = get(server, "/v1/leads", **params)
            assert response.status_code == 200, response.text
            return {lead["use_id"] for lead in response.json()["data"]}

        day = "eventEsTimestamp|between|20/11/2026-20/11/2026"
        assert ids(day, "UTC") == {"late", "noon"}
        assert ids(day) == {"noon"}  # default Europe/Amsterdam: 23:30 UTC is already the 21st
        assert ids("eventEsTimestamp|between|21/11/2026-21/11/2026") == {"late"}
        assert ids("eventEsTimestamp|between|19/11/2026-21/11/2026", "America/New_York") == {"late", "noon"}
        assert ids("eventEsTimestamp|exactly|0", "UTC") == {"now"}
        assert ids("eventEsTimestamp|exactly|3", "UTC") == {"old"}
        assert ids("eventEsTimestamp|lessthan|2", "UTC") == {"now"}
        assert ids("eventEsTimestamp|lessthan|3", "UTC") == {"now", "old"}
        for bad in ("eventEsTimestamp|between|2026-11-20", "eventEsTimestamp|after|1", "nonsense"):
            assert get(server, "/v1/leads", site="tz", criteriaTimeFilter=bad).status_code == 400
        assert get(server, "/v1/leads", site="tz", timeZone="Mars/Base").status_code == 400


# -- sessions, events, lead detail -------------------------------------------------------------------

def test_sessions_and_events_of_a_lead(sandbox):
    source = next(lead for lead in sandbox.data["leads"] if len(lead["sessions"]) >= 2)
    lead_id = source["use_id"]
    detail = get(sandbox, f"/v1/leads/{lead_id}", site=DEFAULT_SITE)
    assert detail.status_code == 200
    assert detail.json()["data"]["use_id"] == lead_id and "sessions" not in detail.json()["data"]
    missing = get(sandbox, "/v1/leads/0.0", site=DEFAULT_SITE)
    assert missing.status_code == 404 and missing.json()["error"] == "Not Found"

    sessions = get(sandbox, "/v1/leads/sessions", leadId=lead_id, site=DEFAULT_SITE).json()
    assert [s["session_id"] for s in sessions["data"]] == [s["session_id"] for s in source["sessions"]]
    assert sessions["nextToken"] is None
    for session, source_session in zip(sessions["data"], source["sessions"], strict=True):
        assert "events" not in session and session["use_id"] == lead_id
        events = get(sandbox, "/v1/leads/events", sessionId=session["session_id"], site=DEFAULT_SITE).json()["data"]
        assert events == source_session["events"]
        stamps = [int(e["eventUnixTimestamp"]) for e in events]
        assert session["session_unix_timestamp"] == str(stamps[0])
        assert session["duration"] == str((stamps[-1] - stamps[0]) // 1000)
    # Small pages of events still add up.
    session_id = max(source["sessions"], key=lambda s: len(s["events"]))["session_id"]
    collected, token = [], None
    while True:
        params = {"sessionId": session_id, "site": DEFAULT_SITE, "limit": 1, **({"nextToken": token} if token else {})}
        body = get(sandbox, "/v1/leads/events", **params).json()
        collected += body["data"]
        token = body["nextToken"]
        if not token:
            break
    longest = max(len(s["events"]) for s in source["sessions"])
    assert len(collected) == len({e["event_id"] for e in collected}) == longest
    assert get(sandbox, "/v1/leads/sessions", site=DEFAULT_SITE).status_code == 400  # leadId required
    assert get(sandbox, "/v1/leads/sessions", leadId="nobody", site=DEFAULT_SITE).json()["data"] == []


# -- generated data ------------------------------------------------------------------------------------

def test_generate_dataset_is_deterministic_and_varied():
    first, second = generate_dataset(), generate_dataset()
    assert first == second
    assert generate_dataset(seed=8) != first
    leads = first["leads"]
    assert len(leads) == 200 and first["site"] == DEFAULT_SITE
    assert len({lead["use_id"] for lead in leads}) == 200
    events = [e for lead in leads for s in lead["sessions"] for e in s["events"]]
    assert len({e["event_id"] for e in events}) == len(events)
    identified = sum(1 for lead in leads if lead.get("email"))
    with_org = sum(1 for lead in leads if lead.get("organizationName"))
    assert 0.45 < identified / 200 < 0.75 and 0.35 < with_org / 200 < 0.65
    org_counts: dict[str, int] = {}
    for lead in leads:
        if lead.get("organizationName"):
            org_counts[lead["organizationName"]] = org_counts.get(lead["organizationName"], 0) + 1
    assert max(org_counts.values()) >= 2  # colleagues share a company
    kinds = {e["event_type"] for e in events}
    assert {"pageview", "email_open", "email_click", "form_submit", "download"} <= kinds
    assert all(1 <= len(lead["sessions"]) and all(1 <= len(s["events"]) <= 8 for s in lead["sessions"])
               for lead in leads)
    start, end = ms(START), ms(START + timedelta(hours=24))
    assert all(start <= int(e["eventUnixTimestamp"]) < end for e in events)
    for lead in leads:
        last = max(int(e["eventUnixTimestamp"]) for s in lead["sessions"] for e in s["events"])
        assert lead["lastEvent"] == last
        assert lead["use_id"].split(".")[0] == lead["sessions"][0]["session_unix_timestamp"]
    clicks = [e for e in events if e["event_type"] == "email_click"]
    assert all("utm_medium=email" in e["original_url"] and e["email"] for e in clicks)
    assert all(e["campaign"] for e in events if e["event_type"] == "email_open")
    assert all(e["title"] == "Form Submit" and e["properties"]["form_id"] for e in events
               if e["event_type"] == "form_submit")
    # Sizes other than the default work, and a big run stays quick enough.
    t0 = time.perf_counter()
    assert len(generate_dataset(leads=3000, hours=2)["leads"]) == 3000
    assert time.perf_counter() - t0 < 5


def test_every_hour_has_email_identified_default_segment_events(sandbox):
    for hours, leads in ((24, 200), (48, 30)):
        data = generate_dataset(leads=leads, hours=hours)
        covered = set()
        for lead in data["leads"]:
            if DEFAULT_SEGMENT_ID in lead["segments"] and lead.get("email"):
                for session in lead["sessions"]:
                    covered.update((int(e["eventUnixTimestamp"]) - ms(START)) // 3_600_000 for e in session["events"])
        assert set(range(hours)) <= covered
    # Through the API: the demo's hour [05:00, 06:00) on 2026-11-20 has such events.
    leads, _ = all_leads(sandbox, segmentId=DEFAULT_SEGMENT_ID, criteriaFieldFilter="hasanyvalue|email",
                         criteriaTimeFilter="eventEsTimestamp|between|20/11/2026-21/11/2026", timeZone="UTC",
                         limit=100)
    lo, hi = ms(START + timedelta(hours=5)), ms(START + timedelta(hours=6))
    found = 0
    for lead in leads:
        for session in get(sandbox, "/v1/leads/sessions", leadId=lead["use_id"], site=DEFAULT_SITE).json()["data"]:
            events = get(sandbox, "/v1/leads/events", sessionId=session["session_id"], site=DEFAULT_SITE).json()
            found += sum(1 for e in events["data"] if lo <= int(e["eventUnixTimestamp"]) < hi)
    assert found > 0


# -- hostile data ----------------------------------------------------------------------------------------

def _garbage_data():
    t = ms(datetime(2026, 11, 20, 5, 30, tzinfo=UTC))
    return {"site": "junk", "segments": [{"segmentId": 1, "name": "x"}, "not-a-segment"], "leads": [
        "just a string",
        None,
        {"no_use_id": True, "segments": [1], "lastEvent": t},
        {"use_id": "garbage-time", "lastEvent": "yesterday", "segments": [1]},
        {"use_id": "seconds", "lastEvent": t // 1000, "segments": ["1"], "email": "  "},
        {"use_id": "derived", "segments": 1, "email": "a@b.c", "sessions": [
            {"session_id": "s1", "events": [{"event_id": "e1", "eventUnixTimestamp": str(t)},
                                            {"event_id": "e2", "eventUnixTimestamp": "nope"}, "not-an-event", 7]},
            {"session_id": "s2", "events": "not a list"},
            "not-a-session",
            {"events": [{"event_id": "orphan"}]},
        ]},
        {"use_id": 12345, "lastEvent": float("inf"), "segments": None, "sessions": {"bad": "shape"}},
        {"use_id": "nan-score", "esScore": "NaN", "eventEsTimestamp": "", "lastEvent": True, "segments": [[1], {}]},
        {"use_id": "iso", "lastEvent": "2026-11-20T05:00:00Z", "segments": [1, "abc", None]},
    ]}


def test_garbage_data_file_is_served_without_crashing(tmp_path):
    path = tmp_path / "junk.json"
    path.write_text(json.dumps(_garbage_data()), encoding="utf-8")  # inf -> Infinity, as a hostile file may say
    data = json.loads(path.read_text(encoding="utf-8"))
    with LeadBoxerSandbox(data) as server:
        def ids(**params):
            response = get(server, "/v1/leads", site="junk", limit=1000, **params)
            assert response.status_code == 200, response.text
            return [lead.get("use_id") if isinstance(lead, dict) else lead for lead in response.json()["data"]]

        served = ids()
        assert len(served) == len(data["leads"])  # everything, as given, nothing normalised
        assert "just a string" in served and None in served and "garbage-time" in served
        day = "eventEsTimestamp|between|20/11/2026-20/11/2026"
        assert set(ids(criteriaTimeFilter=day, timeZone="UTC")) == {None, "seconds", "derived", "iso"}
        assert set(ids(segmentId=1)) == {None, "garbage-time", "seconds", "derived", "iso"}
        assert ids(criteriaFieldFilter="hasanyvalue|email") == ["derived"]
        assert get(server, "/v1/leads", site="junk", sortBy="_score|desc").status_code == 200
        sessions = get(server, "/v1/leads/sessions", leadId="derived", site="junk").json()["data"]
        assert len(sessions) == 4 and "not-a-session" in sessions
        events = get(server, "/v1/leads/events", sessionId="s1", site="junk").json()["data"]
        assert events == data["leads"][5]["sessions"][0]["events"]
        assert get(server, "/v1/leads/12345", site="junk").json()["data"]["use_id"] == 12345
        assert get(server, "/v1/segments", datasetId="junk").json()["data"] == data["segments"]
        assert server.state()["counters"]["responses_by_status"].get("500") is None


# -- faults, counters, control ---------------------------------------------------------------------------

def test_status_faults_and_retry_after(sandbox):
    sandbox.add_fault({"kind": "status", "status": 500, "count": 2, "path": "^/v1/leads$"})
    assert [get(sandbox, "/v1/leads", site=DEFAULT_SITE).status_code for _ in range(3)] == [500, 500, 200]
    requests.post(sandbox.url + "/_sandbox/faults", json=[{"kind": "status", "status": 429, "count": 1}], timeout=5)
    response = get(sandbox, "/v1/segments", datasetId=DEFAULT_SITE)
    assert response.status_code == 429 and response.headers["Retry-After"] == "1"
    assert get(sandbox, "/v1/segments", datasetId=DEFAULT_SITE).status_code == 200
    rules = requests.get(sandbox.url + "/_sandbox/faults", timeout=5).json()["faults"]
    assert [r["fired"] for r in rules] == [2, 1]
    assert requests.delete(sandbox.url + "/_sandbox/faults", timeout=5).json() == {"faults": []}
    bad = requests.post(sandbox.url + "/_sandbox/faults", json={"kind": "explode"}, timeout=5)
    assert bad.status_code == 400


def test_drop_and_slow_faults(sandbox):
    sandbox.add_fault({"kind": "drop", "count": 1})
    with pytest.raises(requests.ConnectionError):
        get(sandbox, "/v1/leads", site=DEFAULT_SITE)
    assert get(sandbox, "/v1/leads", site=DEFAULT_SITE).status_code == 200
    sandbox.add_fault({"kind": "slow", "delay": 0.3, "count": 1})
    t0 = time.perf_counter()
    assert get(sandbox, "/v1/leads", site=DEFAULT_SITE).status_code == 200
    assert time.perf_counter() - t0 >= 0.3


def test_counters_and_reset(sandbox):
    get(sandbox, "/v1/leads", site=DEFAULT_SITE)
    get(sandbox, "/v1/leads", headers={}, site=DEFAULT_SITE)
    get(sandbox, "/v1/leads/sessions", leadId="x", site=DEFAULT_SITE)
    state = requests.get(sandbox.url + "/_sandbox/state", timeout=5).json()
    assert state["counters"]["requests"] == 3
    assert state["counters"]["by_endpoint"] == {"GET /v1/leads": 2, "GET /v1/leads/sessions": 1}
    assert state["counters"]["responses_by_status"] == {"200": 2, "401": 1}
    assert state["leads"] == 200 and state["config"]["site"] == DEFAULT_SITE
    sandbox.add_fault({"kind": "status", "status": 503})
    assert requests.post(sandbox.url + "/_sandbox/reset", timeout=5).status_code == 200
    state = sandbox.state()
    assert state["counters"]["requests"] == 0 and state["config"]["faults"] == []
    assert get(sandbox, "/v1/leads", site=DEFAULT_SITE).status_code == 200


def test_latency_and_custom_key():
    with LeadBoxerSandbox(api_key="k2", leads=5, latency=0.2) as server:
        assert get(server, "/v1/leads", site=DEFAULT_SITE).status_code == 401
        t0 = time.perf_counter()
        assert get(server, "/v1/leads", headers={"x-api-key": "k2"}, site=DEFAULT_SITE).json()["total"] == 5
        assert time.perf_counter() - t0 >= 0.2


# -- CLI -------------------------------------------------------------------------------------------------

def test_cli_dump_and_serve(tmp_path):
    dump = tmp_path / "data.json"
    subprocess.run([sys.executable, "-m", "sandbox.leadboxer", "--dump", str(dump), "--leads", "20"],
                   cwd=ROOT, check=True, capture_output=True, timeout=30)
    assert json.loads(dump.read_text(encoding="utf-8")) == generate_dataset(leads=20)
    proc = subprocess.Popen([sys.executable, "-m", "sandbox.leadboxer", "--port", "0", "--data", str(dump),
                             "--fault", '{"kind": "status", "status": 503, "count": 1}'],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        match = re.fullmatch(r"LeadBoxer sandbox listening on (http://127\.0\.0\.1:\d+)\n", line)
        assert match, line
        url = match.group(1)
        assert requests.get(url + "/v1/leads", params={"site": DEFAULT_SITE}, headers=KEY, timeout=5).status_code == 503
        body = requests.get(url + "/v1/leads", params={"site": DEFAULT_SITE}, headers=KEY, timeout=5).json()
        assert body["total"] == 20
    finally:
        proc.terminate()
        proc.wait(timeout=10)
