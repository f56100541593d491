"""How extract.fetch_window reads LeadBoxer: concurrently yet in order, each settled read once across a
backfill (the ledger's ReadCache), only as far as the lead list can hold candidates, and failing cleanly.
Against the LeadBoxer sandbox; no timings are asserted."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pandas as pd
import pytest

from leadboxer_pipedrive.exceptions import TransientApiError
from leadboxer_pipedrive.extract import ReadCache, fetch_window
from leadboxer_pipedrive.hooks.leadboxer import LeadBoxerHook
from leadboxer_pipedrive.hooks.ledger import LedgerHook
from sandbox.leadboxer import DEFAULT_SEGMENT_ID, DEFAULT_SITE, LeadBoxerSandbox, generate_dataset

DAY = datetime(2026, 11, 20, tzinfo=UTC)


@pytest.fixture(scope="module")
def data():
    return generate_dataset(seed=11, leads=160, hours=24)


@pytest.fixture
def sandbox(data):
    with LeadBoxerSandbox(data) as sb:
        yield sb


@pytest.fixture
def connect(sandbox, monkeypatch, tmp_path):
    """``connect(**extra)`` → a hook factory for that connection extra; every hook made records the URLs it
    asks for in ``asked`` (shared)."""
    asked: list[str] = []

    def configure(**extra):
        extra = {"page_size": 25, **extra}
        monkeypatch.setenv("AIRFLOW_CONN_LEADBOXER_READS", json.dumps({
            "conn_type": "leadboxer", "host": sandbox.url, "password": "sandbox-key", "extra": extra}))

        def make() -> LeadBoxerHook:
            hook = LeadBoxerHook("leadboxer_reads")
            hook.backoff_base = 0.01
            hook.get_conn().hooks["response"].append(lambda response, **_: asked.append(response.request.url))
            return hook
        return make
    configure.asked = asked
    return configure


def ledger(tmp_path, monkeypatch, name: str = "ledger") -> LedgerHook:
    monkeypatch.setenv(f"AIRFLOW_CONN_{name.upper()}", json.dumps({"conn_type": "sqlite",
                                                                    "host": str(tmp_path / f"{name}.sqlite")}))
    return LedgerHook(name)


def hours(first: int, count: int) -> list[datetime]:
    return [DAY + timedelta(hours=first + n) for n in range(count)]


def extract(hook, hour: datetime, cache=None, **kwargs):
    return fetch_window(hook, DEFAULT_SITE, DEFAULT_SEGMENT_ID, hour, hour + timedelta(hours=1), read_cache=cache,
                        **kwargs)


def assert_same(one, other) -> None:
    pd.testing.assert_frame_equal(one.leads, other.leads)
    pd.testing.assert_frame_equal(one.events, other.events)
    assert one.sessions_read == other.sessions_read


def reads(asked: list[str]) -> Counter:
    """How often each lead's sessions list and each session's events were asked for (first pages)."""
    counted = Counter()
    for url in asked:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        if "nextToken" in query:
            continue
        if parts.path == "/v1/leads/sessions":
            counted["sessions/" + query["leadId"][0]] += 1
        elif parts.path == "/v1/leads/events":
            counted["events/" + query["sessionId"][0]] += 1
        else:
            counted["lead pages"] += 1
    return counted


def test_the_frames_are_the_same_whatever_the_concurrency(connect):
    one_at_a_time, eight = connect(max_concurrency=1, page_size=7), connect(max_concurrency=8, page_size=7)
    for hour in hours(3, 1) + hours(10, 1) + hours(20, 1):
        for with_events in (True, False):
            serial = extract(one_at_a_time(), hour, with_events=with_events)
            concurrent = extract(eight(), hour, with_events=with_events)
            assert_same(serial, concurrent)
            assert len(concurrent.leads) > 3 and (len(concurrent.events) > 3 or not with_events)
    for max_leads in (1, 2, 5):
        serial = extract(one_at_a_time(), hours(10, 1)[0], max_leads=max_leads)
        concurrent = extract(eight(), hours(10, 1)[0], max_leads=max_leads)
        assert_same(serial, concurrent)
        assert len(concurrent.leads) == max_leads


def test_max_leads_reads_no_lead_past_those_it_could_still_need(connect):
    hour = hours(10, 1)[0]
    extract(connect(max_concurrency=1, page_size=100)(), hour)  # one at a time: asked in the list's order
    candidates = [key for key in reads(connect.asked) if key.startswith("sessions/")]
    connect.asked.clear()
    window = extract(connect(max_concurrency=8, page_size=100)(), hour, max_leads=2)
    asked = {key for key in reads(connect.asked) if key.startswith("sessions/")}
    last = candidates.index(f"sessions/{window.leads['use_id'].iloc[-1]}")
    # Every lead up to the second active one was read, and at most one past it: with one lead still
    # wanted, one is read ahead.
    assert set(candidates[:last + 1]) <= asked <= set(candidates[:last + 2])
    assert last + 2 < len(candidates)


def test_a_backfill_run_twice_reads_no_session_twice(connect, tmp_path, monkeypatch):
    make, store = connect(), ledger(tmp_path, monkeypatch)
    first_caches = [ReadCache(store, DEFAULT_SITE) for _ in range(8)]
    first = [extract(make(), hour, cache) for hour, cache in zip(hours(6, 8), first_caches)]
    first_reads = reads(connect.asked)
    connect.asked.clear()
    caches = [ReadCache(store, DEFAULT_SITE) for _ in range(8)]
    again = [extract(make(), hour, cache) for hour, cache in zip(hours(6, 8), caches)]
    for one, other in zip(first, again):
        assert_same(one, other)
    assert sum(map(len, (w.events for w in first))) > 20
    # Each lead's sessions and each session's events were read once over the first pass (the data is
    # days old: settled), and not at all over the second, which asked only for the lead list.
    assert max(count for key, count in first_reads.items() if key != "lead pages") == 1
    assert set(reads(connect.asked)) == {"lead pages"}
    # What the first pass read or took from earlier hours, the second took from the ledger.
    read_once = sum(count for key, count in first_reads.items() if key != "lead pages")
    assert sum(cache.hits for cache in caches) == read_once + sum(cache.hits for cache in first_caches)


def test_hours_run_concurrently_give_what_a_serial_run_gives(connect, tmp_path, monkeypatch):
    make = connect()
    serial = [extract(make(), hour, ReadCache(ledger(tmp_path, monkeypatch, "serial"), DEFAULT_SITE))
              for hour in hours(8, 6)]
    shared = ledger(tmp_path, monkeypatch, "shared")
    results: dict[int, object] = {}

    def run(n: int, hour: datetime) -> None:
        results[n] = extract(make(), hour, ReadCache(shared, DEFAULT_SITE))
    threads = [threading.Thread(target=run, args=(n, hour)) for n, hour in enumerate(hours(8, 6) * 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for n, expected in enumerate(serial * 2):
        assert_same(results[n], expected)
    without_cache = [extract(make(), hour) for hour in hours(8, 6)]
    for one, other in zip(serial, without_cache):
        assert_same(one, other)


def test_only_what_can_no_longer_change_is_kept(tmp_path, monkeypatch):
    now = datetime.now(UTC).replace(microsecond=0)
    ms = lambda moment: str(int(moment.timestamp() * 1000))  # noqa: E731
    events = lambda session, *times: [{"event_id": f"{session}-{n}", "session_id": session,  # noqa: E731
                                      "eventUnixTimestamp": ms(t)} for n, t in enumerate(times)]
    data = {"site": DEFAULT_SITE, "segments": [], "leads": [
        {"use_id": "live", "email": "live@x.io", "segments": [1], "eventEsTimestamp": ms(now - timedelta(minutes=5)),
         "sessions": [
             {"session_id": "ended", "session_unix_timestamp": ms(now - timedelta(hours=2)), "duration": "600",
              "events": events("ended", now - timedelta(hours=2), now - timedelta(hours=2) + timedelta(minutes=10))},
             {"session_id": "ongoing", "session_unix_timestamp": ms(now - timedelta(minutes=20)), "duration": "900",
              "events": events("ongoing", now - timedelta(minutes=20), now - timedelta(minutes=5))}]},
        {"use_id": "quiet", "email": "quiet@x.io", "segments": [1], "eventEsTimestamp": ms(now - timedelta(hours=1)),
         "sessions": [{"session_id": "earlier", "session_unix_timestamp": ms(now - timedelta(hours=1, minutes=5)),
                       "duration": "300", "events": events("earlier", now - timedelta(hours=1))}]}]}
    with LeadBoxerSandbox(data) as sb:
        monkeypatch.setenv("AIRFLOW_CONN_LEADBOXER_LIVE", json.dumps({
            "conn_type": "leadboxer", "host": sb.url, "password": "sandbox-key"}))
        store = ledger(tmp_path, monkeypatch)
        for _ in range(2):
            cache = ReadCache(store, DEFAULT_SITE)
            window = fetch_window(LeadBoxerHook("leadboxer_live"), DEFAULT_SITE, 1, now - timedelta(hours=3), now,
                                  read_cache=cache)
            assert sorted(window.events["event_id"]) == ["earlier-0", "ended-0", "ended-1", "ongoing-0", "ongoing-1"]
        kept = {row[0] for row in sqlite3.connect(tmp_path / "ledger.sqlite").execute(
            "SELECT read_key FROM lbpd_leadboxer_read")}
        # The live lead's sessions list and its ongoing session are read again; the rest is kept, events
        # by when their session ended.
        assert kept == {f"sessions/quiet/{ms(now - timedelta(hours=1))}",
                        f"events/ended/{int(ms(now - timedelta(hours=2))) + 600_000}",
                        f"events/earlier/{int(ms(now - timedelta(hours=1, minutes=5))) + 300_000}"}
        assert cache.hits == 3
        assert sb.state()["counters"]["by_endpoint"] == {"GET /v1/leads": 2, "GET /v1/leads/sessions": 3,
                                                         "GET /v1/leads/events": 4}


def test_kept_reads_expire(connect, tmp_path, monkeypatch):
    make, store = connect(), ledger(tmp_path, monkeypatch)
    hour = hours(9, 1)[0]
    cache = ReadCache(store, DEFAULT_SITE)
    extract(make(), hour, cache)
    database = sqlite3.connect(tmp_path / "ledger.sqlite")
    kept = database.execute("SELECT COUNT(*) FROM lbpd_leadboxer_read").fetchone()[0]
    assert kept > 10
    with database:
        database.execute("UPDATE lbpd_leadboxer_read SET read_at = '2026-01-01T00:00:00+00:00'")
    later = ReadCache(store, DEFAULT_SITE, hours=24)
    extract(make(), hour, later)
    assert later.hits == 0  # too old to be trusted: read again, kept again, the old copies deleted
    counted = database.execute("SELECT COUNT(*), MIN(read_at) > '2026-02' FROM lbpd_leadboxer_read").fetchone()
    assert counted == (kept, 1)


def test_the_lead_list_is_read_only_as_far_as_it_can_hold_leads_of_the_window(connect, data):
    late = hours(22, 1)[0]
    extract(connect(page_size=10)(), late)
    pages = reads(connect.asked)["lead pages"]
    members = [lead for lead in data["leads"] if DEFAULT_SEGMENT_ID in lead["segments"]]
    seen_since = sum(int(lead["eventEsTimestamp"]) >= late.timestamp() * 1000 for lead in members)
    assert pages == seen_since // 10 + 1 < len(members) / 10  # up to the first lead last seen before 22:00


def test_a_lead_list_not_newest_first_is_read_to_its_end(connect):
    make = connect(page_size=10)
    hour = hours(12, 1)[0]
    expected = extract(make(), hour)

    class OldestFirst(LeadBoxerHook):
        def lead_pages_seen_since(self, *args):
            listed = [lead for page in super().lead_pages_seen_since(*args) for lead in page]
            return iter([listed[::-1][start:start + 10] for start in range(0, len(listed), 10)])

    hook = OldestFirst("leadboxer_reads")
    reversed_list = extract(hook, hour)
    assert sorted(reversed_list.leads["use_id"]) == sorted(expected.leads["use_id"])
    assert sorted(reversed_list.events["event_id"]) == sorted(expected.events["event_id"])


def test_a_429_storm_is_waited_out_and_reads_the_same(connect, sandbox):
    make = connect()
    hour = hours(10, 1)[0]
    expected = extract(make(), hour)
    sandbox.add_fault({"kind": "status", "status": 429, "count": 6, "path": "^/v1/leads/(sessions|events)$"})
    hook = make()
    assert_same(extract(hook, hour), expected)
    assert hook.responses_by_status[429] == 6


def test_a_failing_read_fails_the_extract_naming_the_endpoint_and_keeps_nothing_half_read(
        connect, sandbox, data, tmp_path, monkeypatch):
    make, store = connect(page_size=2), ledger(tmp_path, monkeypatch)
    hour = hours(10, 1)[0]
    expected = extract(make(), hour)
    # Every second page of a list fails: events of sessions with over two events are half read when it does.
    sandbox.add_fault({"kind": "status", "status": 500, "path": "^/v1/leads/events$", "after": 12})
    with pytest.raises(TransientApiError, match=r"LeadBoxer GET /v1/leads/events -> 500"):
        extract(make(), hour, ReadCache(store, DEFAULT_SITE))
    sandbox.clear_faults()
    # What was kept was read whole: each list as LeadBoxer serves it.
    served = {f"events/{session['session_id']}": session["events"]
              for lead in data["leads"] for session in lead["sessions"]}
    kept = sqlite3.connect(tmp_path / "ledger.sqlite").execute("SELECT read_key, body FROM lbpd_leadboxer_read")
    for key, body in kept:
        if key.startswith("events/"):
            assert json.loads(body) == served[key.rsplit("/", 1)[0]]
    assert_same(extract(make(), hour, ReadCache(store, DEFAULT_SITE)), expected)


def test_odd_leads_and_sessions_are_read_as_the_frames_read_them(tmp_path, monkeypatch):
    start = datetime(2026, 11, 20, 5, tzinfo=UTC)
    inside = str(int(start.timestamp() * 1000) + 60_000)
    after = str(int(start.timestamp() * 1000) + 2 * 3_600_000)
    session = {"session_unix_timestamp": inside, "duration": "60",
               "events": [{"event_id": "e", "eventUnixTimestamp": inside}]}
    data = {"site": DEFAULT_SITE, "segments": [], "leads": [
        # A numeric id: the same id in the leads frame and on its events.
        {"use_id": 424242.0, "email": "a@x.io", "segments": [1], "lastEvent": int(after),
         "sessions": [{**session, "session_id": "s1"}]},
        # A session without an id has no events to read, but it still makes its lead active.
        {"use_id": "no-session-id", "email": "b@x.io", "segments": [1], "lastEvent": int(after),
         "sessions": [session]},
        # Without an id, and first seen after the window: still listed, for validation to report.
        {"email": "c@x.io", "segments": [1], "lastEvent": int(after), "first_session_unix_timestamp": after}]}
    with LeadBoxerSandbox(data) as sb:
        monkeypatch.setenv("AIRFLOW_CONN_LEADBOXER_ODD", json.dumps({
            "conn_type": "leadboxer", "host": sb.url, "password": "sandbox-key"}))
        window = fetch_window(LeadBoxerHook("leadboxer_odd"), DEFAULT_SITE, 1, start, start + timedelta(hours=1))
        leads = fetch_window(LeadBoxerHook("leadboxer_odd"), DEFAULT_SITE, 1, start, start + timedelta(hours=1),
                             with_events=False)
    from leadboxer_pipedrive.frames import events_frame

    framed = events_frame(window.events, window.leads, DEFAULT_SITE)
    assert framed[["event_id", "use_id", "email"]].values.tolist() == [["e", "424242", "a@x.io"]]
    assert window.leads["use_id"].tolist() == ["424242", pd.NA]
    assert leads.leads["use_id"].tolist() == ["424242", "no-session-id", pd.NA]


def test_the_list_is_read_to_its_end_when_its_two_last_seen_times_disagree(connect, sandbox, data):
    make = connect(page_size=10)
    hour = hours(12, 1)[0]
    expected = extract(make(), hour)
    sandbox.reset()

    class Disagreeing(LeadBoxerHook):
        def lead_pages_seen_since(self, *args):
            for page in super().lead_pages_seen_since(*args):
                yield [{**lead, "lastEvent": 1} for lead in page]  # the sort key says nothing

    assert_same(extract(Disagreeing("leadboxer_reads"), hour), expected)
    members = sum(DEFAULT_SEGMENT_ID in lead["segments"] for lead in data["leads"])
    assert sandbox.state()["counters"]["by_endpoint"]["GET /v1/leads"] == -(-members // 10)
