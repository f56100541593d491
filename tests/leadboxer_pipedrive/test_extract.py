"""extract.fetch_window against a LeadBoxer sandbox serving a hand-written data file: which leads, sessions
and events one data interval ``[start, end)`` reads, and which calls it saves."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pandas as pd
import pytest

from leadboxer_pipedrive.extract import _Lead, fetch_window
from leadboxer_pipedrive.frames import EVENT_ROW_COLUMNS
from leadboxer_pipedrive.hooks.leadboxer import LeadBoxerHook
from sandbox.leadboxer import LeadBoxerSandbox

API_KEY = "extract-key-s3cr3t"
SITE = "ds-extract"
SEGMENT = 14118
START = datetime(2025, 3, 10, 10, tzinfo=UTC)  # well in the past: "today" is the real clock
END = START + timedelta(hours=1)


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def at(hours: float = 0, *, days: int = 0, ms_offset: int = 0) -> str:
    """Epoch ms (as LeadBoxer sends it: a string) ``hours`` after START, plus ``ms_offset`` ms."""
    return str(ms(START + timedelta(days=days, hours=hours)) + ms_offset)


def event(event_id: str, lead_id: str, session_id: str, when: str) -> dict:
    return {"event_id": event_id, "use_id": lead_id, "session_id": session_id, "eventUnixTimestamp": when,
            "event_type": "pageview", "title": event_id, "original_url": f"https://www.example.com/{event_id}"}


def session(session_id: str, lead_id: str, start: str | None, duration: str | None, events: list[dict],
            channel: str = "direct") -> dict:
    record = {"session_id": session_id, "use_id": lead_id, "channel": channel, "events": events}
    if start is not None:
        record["session_unix_timestamp"] = start
    if duration is not None:
        record["duration"] = duration
    return record


def lead(lead_id: str, last_seen: str, sessions: list[dict], segments=(SEGMENT,)) -> dict:
    return {"use_id": lead_id, "email": f"{lead_id.lower()}@example.com", "lastEvent": int(last_seen),
            "eventEsTimestamp": last_seen, "segments": list(segments), "sessions": sessions}


def dataset() -> dict:
    return {
        "site": SITE,
        "segments": [{"segmentId": SEGMENT, "name": "Qualified", "datasetId": SITE}],
        "leads": [
            # Active inside the window, and again later the same day.
            lead("A", at(1.5), [
                # entirely before the window: skipped, never asked for its events
                session("A-early", "A", at(-2), "600", [event("A-e0", "A", "A-early", at(-2, ms_offset=5))]),
                # overlaps the start: the event 1 ms before the window is dropped, the one at start kept
                session("A-edge", "A", at(-0.25), "1200", [
                    event("A-before", "A", "A-edge", at(0, ms_offset=-1)),
                    event("A-start", "A", "A-edge", at(0)),
                ]),
                # inside; the event 1 ms before the end is kept, the one at the end is not
                session("A-in", "A", at(0.5), "1800", [
                    event("A-last", "A", "A-in", at(1, ms_offset=-1)),
                    event("A-end", "A", "A-in", at(1)),
                    event("A-garbled", "A", "A-in", "not-a-timestamp"),
                ]),
                # starts exactly at the end: skipped
                session("A-late", "A", at(1), "60", [event("A-e9", "A", "A-late", at(1.5))]),
            ]),
            # Last seen before the window (same day): skipped without reading its sessions.
            lead("B", at(-1), [session("B-s", "B", at(-1.1), "600", [event("B-e", "B", "B-s", at(-1))])]),
            # Last seen two days later: still found (backfill); its later session is skipped.
            lead("C", at(0, days=2), [
                session("C-in", "C", at(0.2), None, [event("C-e1", "C", "C-in", at(0.25))]),  # no duration
                session("C-later", "C", at(0, days=2), "30", [event("C-e2", "C", "C-later", at(0, days=2))]),
            ]),
            # Last seen the day before: the server's day filter already leaves it out.
            lead("D", at(-12), [session("D-s", "D", at(-12), "60", [event("D-e", "D", "D-s", at(-12))])]),
            # Seen in the window's day, but no event inside the window: not a lead of this window.
            lead("E", at(1.25), [
                session("E-s", "E", at(0.9), "1200", [event("E-e", "E", "E-s", at(1.25))]),
            ]),
            # Not in the segment.
            lead("F", at(0.5), [session("F-s", "F", at(0.4), "60", [event("F-e", "F", "F-s", at(0.5))])],
                 segments=(14120,)),
            # A session whose start cannot be read is not skipped; its event's timestamp is in seconds.
            lead("G", at(0.75), [
                session("G-s", "G", "yesterday-ish", "abc", [
                    event("G-e", "G", "G-s", str(ms(START + timedelta(minutes=45)) // 1000))]),
            ]),
        ],
    }


@pytest.fixture
def sandbox():
    with LeadBoxerSandbox(dataset(), api_key=API_KEY) as sb:
        yield sb


@pytest.fixture
def hook(sandbox, monkeypatch):
    def make(page_size: int = 2) -> LeadBoxerHook:
        monkeypatch.setenv("AIRFLOW_CONN_LEADBOXER_EXTRACT", json.dumps({
            "conn_type": "leadboxer", "host": sandbox.url, "password": API_KEY,
            "extra": {"page_size": page_size}}))
        made = LeadBoxerHook("leadboxer_extract")
        made.backoff_base = 0.01
        made.requested = []  # type: ignore[attr-defined]
        made.get_conn().hooks["response"].append(
            lambda response, **_: made.requested.append(response.request.url))  # type: ignore[attr-defined]
        return made
    return make


def asked(hook, endpoint: str, key: str) -> list[str]:
    """The ``key`` query values of every call the hook made to ``endpoint`` (first page only)."""
    out = []
    for url in hook.requested:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        if parts.path == endpoint and "nextToken" not in query:
            out.append(query[key][0])
    return out


def test_the_window_holds_exactly_the_events_inside_it(hook, sandbox):
    lb = hook(page_size=2)  # small pages: every list is followed over several pages
    extract = fetch_window(lb, SITE, SEGMENT, START, END)

    assert sorted(extract.leads["use_id"]) == ["A", "C", "G"]
    assert sorted(extract.events["event_id"]) == ["A-garbled", "A-last", "A-start", "C-e1", "G-e"]
    by_id = extract.events.set_index("event_id")
    assert by_id.loc["C-e1", "use_id"] == "C" and by_id.loc["C-e1", "session_channel"] == "direct"
    assert by_id.loc["A-garbled", "event_time_raw"] == "not-a-timestamp"  # kept, as sent
    assert pd.isna(by_id.loc["A-garbled", "event_time_ms"])

    # sessions read: every session of the leads seen since the window's day (B is skipped before that)
    assert sorted(asked(lb, "/v1/leads/sessions", "leadId")) == ["A", "C", "E", "G"]
    assert extract.sessions_read == 4 + 2 + 1 + 1
    # events read only for sessions that can overlap the window
    assert sorted(asked(lb, "/v1/leads/events", "sessionId")) == ["A-edge", "A-in", "C-in", "E-s", "G-s"]
    counters = sandbox.state()["counters"]
    assert counters["by_endpoint"]["GET /v1/leads/sessions"] == 4 + 1  # A has 2 pages of 2
    assert counters["by_endpoint"]["GET /v1/leads/events"] == 1 + 2 + 1 + 1 + 1  # A-in has 3 events: 2 pages
    assert set(counters["responses_by_status"]) == {"200"}

    # the lead list asked for "last seen from the window's day on", in UTC, for the segment
    first = parse_qs(urlsplit(next(u for u in lb.requested if "/v1/leads?" in u)).query)
    assert first["criteriaTimeFilter"][0].startswith("eventEsTimestamp|between|10/03/2025-")
    assert first["timeZone"] == ["UTC"] and first["segmentId"] == [str(SEGMENT)] and first["site"] == [SITE]


def test_boundaries_start_included_end_excluded(hook):
    extract = fetch_window(hook(), SITE, SEGMENT, START, END)
    times = dict(zip(extract.events["event_id"], extract.events["event_time_raw"]))
    assert times["A-start"] == str(ms(START))
    assert times["A-last"] == str(ms(END) - 1)
    assert "A-end" not in times and "A-before" not in times


def test_the_next_window_picks_up_where_this_one_ended(hook):
    later = fetch_window(hook(), SITE, SEGMENT, END, END + timedelta(hours=1))
    events = sorted(later.events["event_id"])
    assert events == ["A-e9", "A-end", "A-garbled", "E-e"]  # unreadable times show up again (validation's job)
    assert sorted(later.leads["use_id"]) == ["A", "E"]


def test_a_backfill_finds_leads_seen_again_on_later_days(hook):
    extract = fetch_window(hook(), SITE, SEGMENT, START + timedelta(days=2), END + timedelta(days=2))
    assert extract.leads["use_id"].tolist() == ["C"]
    assert extract.events["event_id"].tolist() == ["C-e2"]


def test_max_leads_stops_reading(hook, sandbox):
    lb = hook(page_size=50)
    extract = fetch_window(lb, SITE, SEGMENT, START, END, max_leads=1)
    assert extract.leads["use_id"].tolist() == ["C"]  # most recently seen first
    assert set(extract.events["use_id"]) == {"C"}
    assert asked(lb, "/v1/leads/sessions", "leadId") == ["C"]  # nobody else was read

    two = fetch_window(hook(page_size=1), SITE, SEGMENT, START, END, max_leads=2)
    assert two.leads["use_id"].tolist() == ["C", "A"]
    assert set(two.events["use_id"]) == {"C", "A"}


def test_without_events_a_lead_is_active_when_seen_or_in_session_inside_the_window(hook, sandbox):
    extract = fetch_window(hook(), SITE, SEGMENT, START, END, with_events=False)
    # G was last seen inside the window; A, C and E have a session overlapping it
    assert extract.leads["use_id"].tolist() == ["C", "A", "E", "G"]
    assert extract.events.empty and list(extract.events.columns) == EVENT_ROW_COLUMNS
    assert extract.sessions_read == 4 + 2 + 1  # A's, C's and E's; not G's, last seen inside the window
    assert "GET /v1/leads/events" not in sandbox.state()["counters"]["by_endpoint"]


def test_a_lead_is_last_seen_at_its_event_es_timestamp_else_its_last_event():
    listed = [{"use_id": "a", "lastEvent": 1_795_150_800_000, "eventEsTimestamp": "1795150900000"},
              {"use_id": "b", "lastEvent": 1_795_150_800_001},
              {"use_id": "c", "lastEvent": 1_795_150_800_002, "eventEsTimestamp": None},
              {"use_id": "d", "eventEsTimestamp": "garbage", "lastEvent": 1_795_150_800_003},
              {"use_id": " e ", "first_session_unix_timestamp": "1795150700000"}, {"use_id": {"x": 1}}, "lead"]
    leads = _Lead.of_page(listed)
    assert [lead.last_seen_ms for lead in leads] == [
        1_795_150_900_000, 1_795_150_800_001, 1_795_150_800_002, None, None, None, None]
    assert [lead.sorted_by_ms for lead in leads][:4] == [1_795_150_800_000 + n for n in range(4)]
    assert [lead.lead_id for lead in leads] == ["a", "b", "c", "d", "e", None, None]
    assert leads[4].asked_as == " e " and leads[4].first_seen_ms == 1_795_150_700_000
