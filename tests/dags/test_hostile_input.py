"""Bad input, end to end: a LeadBoxer dataset of malformed and hostile records (tests/data/hostile_leadboxer.json)
runs through both DAGs against the sandboxes, every Pipedrive exchange checked against the official spec.

Each record of the corpus says what it tests (``_case``) and what must become of it:

* events: ``_expect`` is ``pushed`` (exactly one activity), ``rejected`` (a row in ``lbpd_rejected_row``
  whose reason contains ``_reason``) or ``not_extracted`` (not this hour's business: an event of another
  interval, of a lead outside the segment, or one LeadBoxer's API cannot reach, such as an event in a
  session without id; neither pushed nor rejected by this run);
* leads: ``_expect_lead`` says the same for the leads DAG (``link_to=both``), ``_email`` is the
  normalised email the lead must end up with in Pipedrive (null: none).

Both DAGs run once (module fixture); the tests below read what they left behind.
"""

from __future__ import annotations

import json
import re
import sqlite3
import sys
import unicodedata
from collections import Counter
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "data" / "hostile_leadboxer.json"
ACTIVITIES, LEADS = "leadboxer_pipedrive_activities", "leadboxer_pipedrive_leads"
RUN_END = datetime(2026, 11, 20, 6, tzinfo=timezone.utc)  # the interval [05:00, 06:00)
SEGMENT_ID = 1
MAX_TEXT = 255
_INVISIBLE = re.compile("[\u00ad\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]")


# -- the corpus -------------------------------------------------------------------------------------
def load_corpus() -> dict:
    return json.loads(CORPUS.read_text(encoding="utf-8"))


def record_id(value) -> str | None:
    """An id as the pipeline reads it: scalar text, trimmed; containers and blanks are no id."""
    if value is None or isinstance(value, (dict, list, bool)):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def corpus_events(data: dict) -> list[tuple[dict, dict]]:
    """(lead, event) for every event record in the corpus, including ones LeadBoxer cannot serve."""
    out = []
    for lead in data["leads"]:
        sessions = lead.get("sessions")
        for session in sessions if isinstance(sessions, list) else []:
            events = session.get("events") if isinstance(session, dict) else None
            if isinstance(events, dict):
                events = [events]
            for event in events if isinstance(events, list) else []:
                out.append((lead, event))
    return out


def test_the_corpus_is_big_and_self_describing():
    data = load_corpus()
    records = [lead for lead in data["leads"]] + [event for _, event in corpus_events(data)]
    assert len(records) >= 40
    assert all(isinstance(r.get("_case"), str) and r["_case"] for r in records)
    assert all(e["_expect"] in ("pushed", "rejected", "not_extracted") for _, e in corpus_events(data))
    assert all(lead["_expect_lead"] in ("pushed", "rejected", "not_extracted") for lead in data["leads"])
    assert all(e.get("_reason") for _, e in corpus_events(data) if e["_expect"] == "rejected")
    assert {"site", "segments", "leads"} <= set(data)


# -- one run of each DAG over the corpus ----------------------------------------------------------------
@pytest.fixture(scope="module")
def hostile(airflow_db, dagbag, tmp_path_factory):
    sys.path.insert(0, str(ROOT / "tests" / "contract"))
    import pipedrive_contract as pc

    pc.load_specs()
    from leadboxer_pipedrive.hooks.pipedrive import PipedriveHook
    from sandbox.leadboxer import LeadBoxerSandbox
    from sandbox.pipedrive import PipedriveSandbox

    data = load_corpus()
    folder = tmp_path_factory.mktemp("hostile")
    ledger = folder / "ledger.sqlite"
    recorder = pc.ContractRecorder()
    original_get_conn = PipedriveHook.get_conn

    def get_conn_with_recorder(self):
        return recorder.attach(original_get_conn(self))

    # search_burst_limit raised on both sides: this test is about data, not the rate limiter.
    with PipedriveSandbox(search_burst_limit=100) as pipedrive, LeadBoxerSandbox() as leadboxer, \
            pytest.MonkeyPatch.context() as mp:
        leadboxer.load(data)
        mp.setenv("AIRFLOW_CONN_PIPEDRIVE_DEFAULT", json.dumps({
            "conn_type": "pipedrive", "host": pipedrive.url, "password": "sandbox-token",
            "extra": {"burst_limit": 100, "search_burst_limit": 100}}))
        mp.setenv("AIRFLOW_CONN_LEADBOXER_DEFAULT", json.dumps({
            "conn_type": "leadboxer", "host": leadboxer.url, "password": "sandbox-key"}))
        mp.setenv("AIRFLOW_CONN_LEADBOXER_PIPEDRIVE_LEDGER", json.dumps({"conn_type": "sqlite", "host": str(ledger)}))
        mp.setenv("LEADBOXER_PIPEDRIVE_STAGING_URL", f"file://{folder / 'staging'}")
        mp.setattr(PipedriveHook, "get_conn", get_conn_with_recorder)
        conf = {"dataset_id": data["site"], "segment_id": SEGMENT_ID}
        activity_run = dagbag.get_dag(ACTIVITIES).test(logical_date=RUN_END, run_conf={**conf, "pipeline_id": 2})
        lead_run = dagbag.get_dag(LEADS).test(logical_date=RUN_END,
                                              run_conf={**conf, "link_to": "both", "scope": "hour"})
        state = pipedrive.state()

    with sqlite3.connect(ledger) as db:
        db.row_factory = sqlite3.Row
        summaries = {row["dag_id"]: json.loads(row["summary"]) for row in db.execute("SELECT * FROM lbpd_run")}
        rejected = [dict(row) for row in db.execute("SELECT * FROM lbpd_rejected_row")]
        pushed = {row["event_id"]: dict(row) for row in db.execute("SELECT * FROM lbpd_pushed_event")}
        lead_rows = {row["use_id"]: dict(row) for row in db.execute("SELECT * FROM lbpd_lead")}
    return SimpleNamespace(data=data, activity_run=activity_run, lead_run=lead_run, state=state,
                           recorder=recorder, summaries=summaries, rejected=rejected, pushed=pushed,
                           lead_rows=lead_rows)


def rejections(hostile, dag_id: str, entity: str) -> dict[str, list[str]]:
    """Reasons by record id; rows without an id (or repeating one) are stored as "<id>#row<n>"."""
    out: dict[str, list[str]] = {}
    for row in hostile.rejected:
        if row["dag_id"] == dag_id and row["entity"] == entity:
            out.setdefault(row["record_id"].split("#row")[0], []).append(row["reason"])
    return out


def markers(activity: dict) -> list[str]:
    from leadboxer_pipedrive.transforms import event_ids_in_note

    return event_ids_in_note(activity.get("note"))


# -- the tests ------------------------------------------------------------------------------------------
def test_both_dag_runs_succeed(hostile):
    assert hostile.activity_run.state == "success"
    assert hostile.lead_run.state == "success"


def test_every_pipedrive_exchange_matches_the_official_spec(hostile):
    hostile.recorder.assert_all_valid(allow_empty=False)
    operations = {(e.method, re.sub(r"/\d+$", "/{id}", e.path)) for e in hostile.recorder.exchanges}
    assert {("POST", "/api/v2/activities"), ("POST", "/api/v2/persons"), ("POST", "/api/v1/leads"),
            ("GET", "/api/v2/persons/search")} <= operations


def test_run_summaries_account_for_every_record(hostile):
    events = [event for _, event in corpus_events(hostile.data)]
    expected = Counter(event["_expect"] for event in events)
    # A listed lead without a use_id is a record of its own in both syncs (none of its events can be read),
    # rejected for it ("lead id (use_id) missing").
    no_id = sum(1 for lead in hostile.data["leads"] if "use_id" not in lead and 1 in (lead.get("segments") or []))
    assert no_id > 0
    summary = hostile.summaries[ACTIVITIES]
    assert summary["extracted"] == summary["pushed"] + summary["already_pushed"] + summary["rejected"]
    assert (summary["extracted"], summary["pushed"], summary["already_pushed"], summary["rejected"]) == (
        expected["pushed"] + expected["rejected"] + no_id, expected["pushed"], 0, expected["rejected"] + no_id)
    assert summary["rejected_by_pipedrive"] == 0 and summary["leads_without_id"] == no_id
    assert summary["rejected_by_reason"]["lead id (use_id) missing"] == no_id
    assert sum(summary["rejected_by_reason"].values()) == summary["rejected"]
    assert [r for rs in rejections(hostile, ACTIVITIES, "lead").values() for r in rs] == [
        "lead id (use_id) missing"] * no_id

    leads = hostile.summaries[LEADS]
    assert leads["extracted"] == leads["pushed"] + leads["already_pushed"] + leads["rejected"]
    lead_expected = Counter(lead["_expect_lead"] for lead in hostile.data["leads"] if "use_id" in lead)
    assert (leads["extracted"], leads["pushed"], leads["rejected"], leads["rejected_by_pipedrive"]) == (
        lead_expected["pushed"] + lead_expected["rejected"] + no_id, lead_expected["pushed"],
        lead_expected["rejected"] + no_id, 0)


def test_valid_events_are_pushed_exactly_once_and_the_rest_rejected_with_their_reason(hostile):
    rejected = rejections(hostile, ACTIVITIES, "event")
    activities_per_event = Counter(m for activity in hostile.state["activities"] for m in markers(activity))
    problems = []
    for _, event in corpus_events(hostile.data):
        event_id, expect, case = record_id(event.get("event_id")), event["_expect"], event["_case"]
        key = event_id if event_id is not None else ""
        if expect == "pushed":
            if event_id not in hostile.pushed or activities_per_event[event_id] != 1:
                problems.append(f"{case}: {event_id!r} not pushed exactly once "
                                f"({activities_per_event[event_id]} activities)")
        elif expect == "rejected":
            if not any(event["_reason"] in reason for reason in rejected.get(key, [])):
                problems.append(f"{case}: {event_id!r} not rejected with {event['_reason']!r}: {rejected.get(key)}")
            if event_id is not None and event_id not in {record_id(e.get("event_id")) for _, e in
                                                         corpus_events(hostile.data) if e["_expect"] == "pushed"}:
                if event_id in hostile.pushed:
                    problems.append(f"{case}: rejected {event_id!r} was pushed")
        else:
            if event_id in hostile.pushed or event_id in rejected:
                problems.append(f"{case}: {event_id!r} belongs to no run of this hour, yet was handled")
    assert not problems, "\n".join(problems)
    # and nothing was pushed that the corpus does not expect
    expected_pushed = {record_id(e.get("event_id")) for _, e in corpus_events(hostile.data) if e["_expect"] == "pushed"}
    assert set(hostile.pushed) == expected_pushed
    assert sum(activities_per_event.values()) == len(hostile.state["activities"]) == len(expected_pushed)


def test_every_rejected_record_has_its_own_ledger_row(hostile):
    """Each rejected event, and each lead without an id (a record of its own), has a ledger row."""
    rows = [r for r in hostile.rejected if r["dag_id"] == ACTIVITIES and r["entity"] in ("event", "lead")]
    assert len(rows) == hostile.summaries[ACTIVITIES]["rejected"]


def test_leads_become_one_pipedrive_lead_or_a_rejection(hostile):
    rejected = rejections(hostile, LEADS, "lead")
    created = {lead["origin_id"].split(":", 1)[1]: lead for lead in hostile.state["leads"]}
    problems = []
    for lead in hostile.data["leads"]:
        if "use_id" not in lead:
            continue  # see test_a_lead_without_use_id_is_rejected_not_dropped
        use_id, expect, case = record_id(lead["use_id"]), lead["_expect_lead"], lead["_case"]
        if expect == "pushed" and (use_id not in created or use_id not in hostile.lead_rows):
            problems.append(f"{case}: lead {use_id!r} not created")
        elif expect == "rejected" and not any(lead["_lead_reason"] in r for r in rejected.get(use_id, [])):
            problems.append(f"{case}: lead {use_id!r} not rejected with {lead['_lead_reason']!r}: "
                            f"{rejected.get(use_id)}")
        elif expect != "pushed" and use_id in created:
            problems.append(f"{case}: lead {use_id!r} created")
        elif expect == "not_extracted" and use_id in rejected:
            problems.append(f"{case}: lead {use_id!r} outside this run was rejected")
    assert not problems, "\n".join(problems)
    assert len(hostile.state["leads"]) == sum(lead["_expect_lead"] == "pushed" for lead in hostile.data["leads"])


def test_a_lead_without_use_id_is_rejected_not_dropped(hostile):
    no_id = [lead for lead in hostile.data["leads"] if "use_id" not in lead]
    assert no_id
    rejected = rejections(hostile, LEADS, "lead")
    assert any("use_id" in reason for reason in rejected.get("", []))


def test_one_person_per_normalised_email(hostile):
    persons = hostile.state["persons"]
    owners = Counter(e["value"] for person in persons for e in person["emails"])
    assert all(count == 1 for count in owners.values()), owners.most_common(3)
    wanted = {lead["_email"] for lead in hostile.data["leads"] if lead["_email"]}
    assert set(owners) == wanted
    # the baseline lead and its two spelling variants are one person with one email
    jane = [p for p in persons if "jane.doe@acme.com" in {e["value"] for e in p["emails"]}]
    assert len(jane) == 1 and len(jane[0]["emails"]) == 1
    # and "Acme BV" / "  ACME bv " / the acme.com domain are one organization
    assert sum(o["name"].strip().casefold() == "acme bv" for o in hostile.state["organizations"]) == 1


def test_person_emails_are_trimmed_lower_cased_and_visible(hostile):
    for person in hostile.state["persons"]:
        for email in (e["value"] for e in person["emails"]):
            assert email == email.strip().lower() == unicodedata.normalize("NFKC", email), repr(email)
            assert not _INVISIBLE.search(email), repr(email)
    values = {e["value"] for p in hostile.state["persons"] for e in p["emails"]}
    assert {"jörg@bücher.de", "info@xn--bcher-kva.de", "keiko@example.jp", "zerowidth@example.com"} <= values


class _NoteParser(HTMLParser):
    """Collects the tags and attributes a browser would see in a note."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))


def test_notes_carry_no_active_html(hostile):
    allowed_tags = {"p", "b", "a", "small"}
    for activity in hostile.state["activities"]:
        note = activity.get("note") or ""
        assert "<script" not in note.lower(), note[:300]
        assert not re.search(r'href="\s*javascript', note, re.I), note[:300]
        assert "\u202e" not in note
        parser = _NoteParser()
        parser.feed(note)
        for tag, attrs in parser.tags:
            assert tag in allowed_tags, (tag, note[:300])
            for name, value in attrs:
                assert name == "href" and tag == "a", (tag, name, note[:300])
                assert re.match(r"https?://", value or ""), (value, note[:300])
    by_marker = {m: a for a in hostile.state["activities"] for m in markers(a)}
    assert "&lt;script&gt;" in by_marker["h-html-title"]["note"]
    assert "<b>Page:</b> <a" not in by_marker["h-long-url"]["note"]  # over-long URLs are not linked
    assert "<b>Page:</b> <a" in by_marker["h-ts-ms-string"]["note"]
    assert by_marker["<b>h-html-id</b>"]


def test_texts_fit_what_pipedrive_accepts(hostile):
    state = hostile.state
    texts = ([a["subject"] for a in state["activities"]] + [p["name"] for p in state["persons"]]
             + [o["name"] for o in state["organizations"]] + [d["title"] for d in state["deals"]]
             + [lead["title"] for lead in state["leads"]])
    assert texts and all(0 < len(t) <= MAX_TEXT and len(t.encode("utf-16-le")) <= 2 * MAX_TEXT for t in texts)
    assert all("\n" not in a["subject"] and not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", a["subject"])
               for a in state["activities"])
    subjects = {m: a["subject"] for a in state["activities"] for m in markers(a)}
    assert subjects["h-long-title"].endswith("…") and len(subjects["h-long-title"]) == MAX_TEXT
    assert subjects["h-blank-event-type"].startswith("LeadBoxer: Event")
    names = [o["name"] for o in state["organizations"]]
    assert all(name.strip() == name and name for name in names)
    for organization in state["organizations"]:  # links Pipedrive shows are web links or nothing
        for field in ("website", "linkedin"):
            assert re.match(r"https?://[^\s/:<>\"]+(/|$)", organization.get(field) or "https://x/"), organization


def test_sessions_and_events_that_are_not_objects_do_not_crash_the_extract():
    from leadboxer_pipedrive.extract import fetch_window

    start = datetime(2026, 11, 20, 5, tzinfo=timezone.utc)
    inside = str(int(start.timestamp() * 1000) + 60_000)

    class Hook:  # what LeadBoxerHook yields for such a dataset
        max_concurrency = 2

        def lead_pages_seen_since(self, dataset_id, segment_id, since):
            return iter([[{"use_id": "a", "email": "a@b.io", "segments": [1], "lastEvent": int(inside)}]])

        def iter_sessions(self, *args):
            return iter([None, 7, {"session_id": "s", "session_unix_timestamp": inside}])

        def iter_events(self, *args):
            return iter(["garbage", None, {"event_id": "e", "eventUnixTimestamp": inside}])

    window = fetch_window(Hook(), "ds", 1, start, RUN_END)
    # Sessions that are not objects have no id to read events with; events that are not objects
    # are kept without an id, so validation rejects them with a reason instead of losing them.
    assert window.events["event_id"].fillna("-").tolist() == ["-", "-", "e"]
    assert window.events["use_id"].tolist() == ["a", "a", "a"]
