"""ActivityLoader against the Pipedrive sandbox: exactly once under crashes, concurrency, search lag,
stale ids and failing lookups; digest mode; the token floor."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
from loader_frames import activity_frame

from leadboxer_pipedrive.exceptions import BudgetExhaustedError, TransientApiError
from leadboxer_pipedrive.hooks.ledger import LedgerHook
from leadboxer_pipedrive.hooks.pipedrive import PipedriveHook
from leadboxer_pipedrive.loading import ActivityLoader, LoadSettings
from leadboxer_pipedrive.transforms import event_ids_in_note

LEADS = [
    {"use_id": "u1", "email": "jane@acme.com", "organizationName": "Acme", "organizationDomain": "acme.com"},
    {"use_id": "u2", "email": "joe@acme.com", "organizationName": "Acme", "organizationDomain": "acme.com"},
    {"use_id": "u3", "email": "solo@nowhere.io"},
]


def hook(conn_id, **kwargs):
    pipedrive = PipedriveHook(conn_id, **kwargs)
    pipedrive.backoff_base = 0.01
    return pipedrive


def settings(run_id="run-1", try_number=1, **kwargs):
    return LoadSettings(dataset_id="ds", dag_id="dag", run_id=run_id, try_number=try_number, **kwargs)


def assert_exactly_once(state, frame):
    activities = state["activities"]
    markers = Counter(e for a in activities for e in set(event_ids_in_note(a["note"])) & set(frame["event_id"]))
    assert set(markers) == set(frame["event_id"]) and set(markers.values()) == {1}, markers
    emails = Counter(e["value"] for p in state["persons"] for e in p["emails"])
    assert all(count == 1 for count in emails.values()), emails
    names = Counter(o["name"] for o in state["organizations"])
    assert all(count == 1 for count in names.values()), names
    assert len({d["person_id"] for d in state["deals"]}) == len(state["deals"])


def test_first_load_creates_and_links_everything_once(pipedrive_sandbox, pipedrive_conn, ledger_conn):
    frame = activity_frame(LEADS)
    result = ActivityLoader(hook(pipedrive_conn), LedgerHook(ledger_conn), settings(pipeline_id=2)).load(frame)
    assert (result.pushed, result.already_pushed, result.refused) == (6, 0, 0)
    state = pipedrive_sandbox.state()
    assert_exactly_once(state, frame)
    assert len(state["persons"]) == 3 and len(state["organizations"]) == 1 and len(state["deals"]) == 3
    acme = state["organizations"][0]["id"]
    by_email = {p["emails"][0]["value"]: p for p in state["persons"]}
    assert by_email["jane@acme.com"]["org_id"] == by_email["joe@acme.com"]["org_id"] == acme
    assert by_email["solo@nowhere.io"].get("org_id") is None


def test_an_event_of_a_known_lead_costs_exactly_one_activity_create(pipedrive_sandbox, pipedrive_conn, ledger_conn):
    ledger = LedgerHook(ledger_conn)
    ActivityLoader(hook(pipedrive_conn), ledger, settings(pipeline_id=2)).load(activity_frame(LEADS[:1], 1))
    again = hook(pipedrive_conn)
    later = activity_frame(LEADS[:1], 3, prefix="later")
    ActivityLoader(again, ledger, settings(run_id="run-2", pipeline_id=2)).load(later)
    # The activity type was checked by the first run (and is remembered for a day): 5 per event, nothing else.
    assert again.tokens_spent == 5 * 3


def test_killed_between_create_and_ledger_write_reconciles_on_retry(
        pipedrive_sandbox, pipedrive_conn, ledger_conn, monkeypatch):
    frame = activity_frame(LEADS)
    ledger = LedgerHook(ledger_conn)
    crashed = LedgerHook(ledger_conn)

    class Killed(BaseException):
        """Stands for SIGKILL: nothing after the create runs, claims stay behind."""

    def die(*_args, **_kwargs):
        raise Killed()
    monkeypatch.setattr(crashed, "record_pushed_events", die)
    monkeypatch.setattr(crashed, "release_claim", lambda *a, **k: None)
    with pytest.raises(Killed):
        ActivityLoader(hook(pipedrive_conn), crashed, settings(pipeline_id=2, workers=1)).load(frame)
    assert len(pipedrive_sandbox.state()["activities"]) == 1  # created, but not in the ledger

    retry = hook(pipedrive_conn, timeout=1.0)  # its takeover waits in_flight_seconds: 8 s
    result = ActivityLoader(retry, ledger, settings(try_number=2, pipeline_id=2)).load(frame)
    assert result.pushed == 6 and result.counts["reconciled_activities"] == 1
    assert_exactly_once(pipedrive_sandbox.state(), frame)


def test_a_create_still_landing_when_its_task_died_is_found_by_the_takeover_not_made_again(
        pipedrive_sandbox, pipedrive_conn, ledger_conn, monkeypatch):
    """The killed try's last create reaches Pipedrive after the retry has taken over its claim: the
    retry waits for it to land (ClaimManager.settle_seconds) before it reconciles."""
    frame = activity_frame(LEADS[:1], 1)
    crashed = LedgerHook(ledger_conn)
    monkeypatch.setattr(crashed, "release_claim", lambda *a, **k: None)
    pipedrive = hook(pipedrive_conn, timeout=1.0)
    pipedrive_sandbox.add_fault({"kind": "slow", "delay": 3.0, "count": 1, "path": "^/api/v2/activities$",
                                 "method": "POST"})
    in_flight = []

    class Killed(BaseException):
        """Stands for SIGKILL with the create on its way: the task is gone, its request is not."""

    def die_while_sending(payload):
        in_flight.append(threading.Thread(target=hook(pipedrive_conn, timeout=10.0).create_activity, args=(payload,)))
        in_flight[-1].start()
        time.sleep(0.3)  # sent
        raise Killed()
    monkeypatch.setattr(pipedrive, "create_activity", die_while_sending)
    with pytest.raises(Killed):
        ActivityLoader(pipedrive, crashed, settings(pipeline_id=2, workers=1)).load(frame)
    assert pipedrive_sandbox.state()["activities"] == []  # not yet: the create is still running

    retry = hook(pipedrive_conn, timeout=1.0)  # lands within 8 s (in_flight_seconds) of the takeover
    result = ActivityLoader(retry, LedgerHook(ledger_conn), settings(try_number=2, pipeline_id=2)).load(frame)
    in_flight[0].join()
    assert result.pushed == 1 and result.counts["reconciled_activities"] == 1
    assert_exactly_once(pipedrive_sandbox.state(), frame)


@pytest.mark.parametrize("ledger_conn", ["sqlite", "postgres"], indirect=True)
def test_two_runs_at_once_with_search_lag_create_nothing_twice(pipedrive_sandbox, pipedrive_conn, ledger_conn):
    pipedrive_sandbox.configure(search_lag=30.0)  # search never sees what the other run just created
    frame = activity_frame(LEADS * 1, 3)
    results, errors = {}, []

    def run(name):
        try:
            results[name] = ActivityLoader(hook(pipedrive_conn), LedgerHook(ledger_conn),
                                           settings(run_id=name, pipeline_id=2, workers=3)).load(frame)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
    threads = [threading.Thread(target=run, args=(f"run-{n}",)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert sum(r.pushed for r in results.values()) == len(frame)
    assert all(r.pushed + r.already_pushed == len(frame) for r in results.values())
    assert_exactly_once(pipedrive_sandbox.state(), frame)


def test_digest_mode_pushes_one_activity_per_lead_covering_all_its_events(
        pipedrive_sandbox, pipedrive_conn, ledger_conn):
    frame = activity_frame(LEADS, 4)
    ledger = LedgerHook(ledger_conn)
    result = ActivityLoader(hook(pipedrive_conn), ledger, settings(activity_mode="digest")).load(frame)
    assert result.pushed == 12 and result.counts["activities_created"] == 3
    activities = pipedrive_sandbox.state()["activities"]
    assert len(activities) == 3
    assert all(a["subject"].startswith("LeadBoxer: 4 events") for a in activities)
    assert ledger.pushed_event_ids("ds", frame["event_id"]) == set(frame["event_id"])
    again = ActivityLoader(hook(pipedrive_conn), ledger, settings(run_id="r2", activity_mode="digest")).load(frame)
    assert again.already_pushed == 12 and len(pipedrive_sandbox.state()["activities"]) == 3


def test_a_stale_person_id_is_re_resolved_when_pipedrive_says_so(pipedrive_sandbox, pipedrive_conn, ledger_conn):
    ledger = LedgerHook(ledger_conn)
    ledger.remember_person("solo@nowhere.io", 999_999, None)  # e.g. deleted or merged in Pipedrive since
    loader = ActivityLoader(hook(pipedrive_conn), ledger, settings())
    result = loader.load(activity_frame(LEADS[2:], 1))
    assert result.pushed == 1 and result.counts["stale_ids_reresolved"] >= 1
    assert ledger.persons_by_email(["solo@nowhere.io"])["solo@nowhere.io"]["person_id"] != 999_999


def test_a_lead_whose_email_changes_keeps_one_person_with_both_emails(
        pipedrive_sandbox, pipedrive_conn, ledger_conn):
    ledger = LedgerHook(ledger_conn)
    ActivityLoader(hook(pipedrive_conn), ledger, settings()).load(
        activity_frame([{"use_id": "u9", "email": "old@acme.com"}], 1, prefix="a"))
    ActivityLoader(hook(pipedrive_conn), ledger, settings(run_id="r2")).load(
        activity_frame([{"use_id": "u9", "email": "new@acme.com"}], 1, prefix="b"))
    persons = pipedrive_sandbox.state()["persons"]
    assert len(persons) == 1
    assert {e["value"] for e in persons[0]["emails"]} == {"old@acme.com", "new@acme.com"}
    assert len({a["person_id"] for a in pipedrive_sandbox.state()["activities"]}) == 1


def test_a_search_answering_429_then_500_then_ok_creates_nothing_extra(
        pipedrive_sandbox, pipedrive_conn, ledger_conn):
    from sandbox.pipedrive import PipedriveSandbox  # noqa: F401 - documents where faults come from

    pipedrive_sandbox.add_fault({"kind": "status", "status": 429, "count": 1, "path": "/persons/search"})
    pipedrive_sandbox.add_fault({"kind": "status", "status": 500, "count": 1, "path": "/persons/search"})
    existing = pipedrive_sandbox_person(pipedrive_sandbox, "solo@nowhere.io")
    result = ActivityLoader(hook(pipedrive_conn), LedgerHook(ledger_conn), settings()).load(
        activity_frame(LEADS[2:], 1))
    assert result.pushed == 1
    persons = pipedrive_sandbox.state()["persons"]
    assert [p["id"] for p in persons] == [existing]


def test_a_search_that_keeps_failing_fails_the_load_and_creates_nothing(
        pipedrive_sandbox, pipedrive_conn, ledger_conn):
    pipedrive_sandbox.add_fault({"kind": "status", "status": 503, "path": "/persons/search"})
    with pytest.raises(TransientApiError, match="persons/search -> 503"):
        ActivityLoader(hook(pipedrive_conn, max_attempts=3), LedgerHook(ledger_conn),
                       settings(account_index=False)).load(activity_frame(LEADS[2:], 1))
    state = pipedrive_sandbox.state()
    assert state["persons"] == [] and state["activities"] == []


def test_unreadable_search_answers_are_errors_not_misses(pipedrive_sandbox, pipedrive_conn, ledger_conn, monkeypatch):
    pipedrive = hook(pipedrive_conn)
    monkeypatch.setattr(pipedrive, "request", lambda *a, **k: {"success": True, "data": {"itemz": []}})
    with pytest.raises(Exception, match="unreadable search answer"):
        pipedrive.find_person_by_email("x@y.io")


def test_acme_and_acme_holding_stay_two_organizations(pipedrive_sandbox, pipedrive_conn, ledger_conn):
    leads = [{"use_id": "h", "email": "h@holding.com", "organizationName": "Acme Holding"},
             {"use_id": "a", "email": "a@acme.com", "organizationName": "Acme"},
             {"use_id": "b", "email": "b@acme.com", "organizationName": " ACME "}]
    ActivityLoader(hook(pipedrive_conn), LedgerHook(ledger_conn), settings(workers=1)).load(activity_frame(leads, 1))
    names = sorted(o["name"] for o in pipedrive_sandbox.state()["organizations"])
    assert names == ["Acme", "Acme Holding"]


def test_a_spent_daily_budget_fails_clearly_and_marks_nothing_unpushed_as_pushed(
        pipedrive_sandbox, pipedrive_conn, ledger_conn):
    pipedrive_sandbox.configure(daily_budget=80)  # spent half-way through
    ledger = LedgerHook(ledger_conn)
    frame = activity_frame(LEADS, 2)
    with pytest.raises(BudgetExhaustedError, match="daily API token budget is spent"):
        ActivityLoader(hook(pipedrive_conn), ledger, settings(workers=1)).load(frame)
    pushed = ledger.pushed_event_ids("ds", frame["event_id"])
    in_pipedrive = {e for a in pipedrive_sandbox.state()["activities"] for e in event_ids_in_note(a["note"])
                    if e in set(frame["event_id"])}
    assert pushed == in_pipedrive


def pipedrive_sandbox_person(sandbox, email):
    import requests

    response = requests.post(f"{sandbox.url}/api/v2/persons", headers={"x-api-token": "sandbox-token"},
                             json={"name": "Solo", "emails": [{"value": email, "primary": True}]}, timeout=10)
    return response.json()["data"]["id"]


def test_refused_rows_are_queued_retried_by_later_runs_then_quarantined(
        pipedrive_sandbox, pipedrive_conn, ledger_conn):
    ledger = LedgerHook(ledger_conn)
    frame = activity_frame(LEADS[2:], 2)  # solo@nowhere.io, two events
    pipedrive_sandbox.add_fault({"kind": "status", "status": 400, "count": 1, "path": "/api/v2/activities$",
                                 "method": "POST"})
    first = ActivityLoader(hook(pipedrive_conn), ledger, settings(max_attempts=2)).load(frame)
    assert (first.pushed, first.refused) == (1, 1)
    # The run summary's reasons include Pipedrive's refusals: they sum to its "rejected".
    from leadboxer_pipedrive.operators.common import run_summary

    loaded = first.as_dict()
    (reason, count), = loaded["refused_by_reason"].items()
    assert reason.startswith("Pipedrive refused the activity: ") and count == 1
    summary = run_summary({"interval_start": "a", "interval_end": "b", "dataset_id": "ds", "segment_id": "1",
                           "entity": "event", "leads": 1, "extracted": 3, "rejected": 1,
                           "rejected_by_reason": {"event time outside the window": 1}}, loaded,
                          {"tokens_spent": 0, "requests": 0, "rate_limited": 0})
    assert summary["rejected_by_reason"] == {"event time outside the window": 1, reason: 1}
    assert sum(summary["rejected_by_reason"].values()) == summary["rejected"] == 2
    rejected = ledger.rejected_rows("dag", "run-1")
    assert [r["outcome"] for r in rejected] == ["rejected"] and rejected[0]["reason"].startswith("Pipedrive refused")
    assert len(ledger.retries("ds", "event")) == 1

    # The next hour has other events; the refused one is retried with them and now goes through.
    later = activity_frame(LEADS[2:], 1, prefix="next")
    second = ActivityLoader(hook(pipedrive_conn), ledger, settings(run_id="run-2")).load(later)
    assert second.pushed == 1 and second.counts["retries_pushed"] == 1
    assert ledger.retries("ds", "event") == []
    assert ledger.pushed_event_ids("ds", frame["event_id"]) == set(frame["event_id"])

    # A row Pipedrive keeps refusing is quarantined after max_attempts and no longer retried.
    pipedrive_sandbox.add_fault({"kind": "status", "status": 400, "path": "/api/v2/activities$", "method": "POST"})
    stubborn = activity_frame(LEADS[:1], 1, prefix="stubborn")
    for run in ("run-3", "run-4"):
        ActivityLoader(hook(pipedrive_conn), ledger, settings(run_id=run, max_attempts=2)).load(stubborn)
    assert ledger.retries("ds", "event") == []
    assert [r["record_id"] for r in ledger.retries("ds", "event", status="quarantined")] == ["stubborn-u1-0"]
    assert [r["outcome"] for r in ledger.rejected_rows("dag", "run-4")] == ["quarantined"]


def test_creates_whose_answer_is_lost_are_reconciled_not_repeated(pipedrive_sandbox, pipedrive_conn, ledger_conn):
    # The connection drops before two activity answers arrive, and a person create answers only after
    # the client gave up (timeout 1 s): each may or may not have happened.
    pipedrive_sandbox.add_fault({"kind": "drop", "count": 2, "path": "/api/v2/activities$", "method": "POST"})
    pipedrive_sandbox.add_fault({"kind": "slow", "delay": 1.5, "count": 1, "path": "/api/v2/persons$",
                                 "method": "POST"})
    frame = activity_frame(LEADS, 2)
    result = ActivityLoader(hook(pipedrive_conn, timeout=1.0), LedgerHook(ledger_conn),
                            settings(pipeline_id=2)).load(frame)
    assert result.pushed == len(frame) and result.counts["ambiguous_writes_reconciled"] == 3
    assert_exactly_once(pipedrive_sandbox.state(), frame)
