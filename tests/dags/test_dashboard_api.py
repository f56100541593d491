"""The dashboard's API and page over a ledger filled by real DAG runs (dag.test() against the sandboxes),
behind Airflow's own auth manager (tokens it signed for a viewer and for a user allowed to edit DAGs).

The activity sync runs once over the hostile corpus (rows validation sets aside, with emails), while
Pipedrive refuses two activity creates and the load quarantines at the first refusal (max_attempts=1);
the leads sync runs once. Then: the figures the API gives equal the ledger's, a run whose figures do not
add up is flagged, rejected rows filter by run, reason, entity and email, anonymous requests are refused,
re-driving a quarantined row needs edit permission and is recorded, and the next run sends it again.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

pytestmark = pytest.mark.integration

CORPUS = Path(__file__).resolve().parents[1] / "data" / "hostile_leadboxer.json"

ACTIVITIES, LEADS = "leadboxer_pipedrive_activities", "leadboxer_pipedrive_leads"
RUN_END = datetime(2026, 11, 20, 6, tzinfo=timezone.utc)
NEXT_RUN_END = datetime(2026, 11, 20, 7, tzinfo=timezone.utc)
BUDGET = 50_000


def sync_dag(dagbag, dag_id: str):
    """The DAG afresh (dag.test() renders templates in place) with Airflow's retries made quick."""
    from datetime import timedelta

    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(dagbag.dag_folder)).get_dag(dag_id)
    for task in dag.tasks:
        task.retry_delay = timedelta(seconds=1)
    return dag


@pytest.fixture(scope="module")
def synced(airflow_db, dagbag, tmp_path_factory):
    from sandbox.leadboxer import LeadBoxerSandbox
    from sandbox.pipedrive import PipedriveSandbox

    data = json.loads(CORPUS.read_text(encoding="utf-8"))
    folder = tmp_path_factory.mktemp("dashboard")
    ledger = folder / "ledger.sqlite"
    with PipedriveSandbox(search_burst_limit=100) as pipedrive, LeadBoxerSandbox() as leadboxer, \
            pytest.MonkeyPatch.context() as mp:
        leadboxer.load(data)
        mp.setenv("AIRFLOW_CONN_PIPEDRIVE_DEFAULT", json.dumps({
            "conn_type": "pipedrive", "host": pipedrive.url, "password": "sandbox-token",
            "extra": {"burst_limit": 100, "search_burst_limit": 100, "daily_token_budget": BUDGET}}))
        mp.setenv("AIRFLOW_CONN_LEADBOXER_DEFAULT", json.dumps({
            "conn_type": "leadboxer", "host": leadboxer.url, "password": "sandbox-key"}))
        mp.setenv("AIRFLOW_CONN_LEADBOXER_PIPEDRIVE_LEDGER", json.dumps({"conn_type": "sqlite", "host": str(ledger)}))
        mp.setenv("LEADBOXER_PIPEDRIVE_STAGING_URL", f"file://{folder / 'staging'}")
        mp.setenv("AIRFLOW__API_AUTH__JWT_SECRET", "dashboard-test-" * 5)  # the tokens' signing key
        conf = {"dataset_id": data["site"], "segment_id": 1}
        pipedrive.add_fault({"kind": "status", "status": 400, "count": 2, "path": "^/api/v2/activities$",
                             "method": "POST"})
        activities = sync_dag(dagbag, ACTIVITIES)
        activities.get_task("load").max_attempts = 1
        assert activities.test(logical_date=RUN_END, run_conf={**conf, "pipeline_id": 2}).state == "success"
        assert sync_dag(dagbag, LEADS).test(
            logical_date=RUN_END, run_conf={**conf, "link_to": "both", "scope": "hour"}).state == "success"

        def next_activity_run():
            dag = sync_dag(dagbag, ACTIVITIES)
            return dag.test(logical_date=NEXT_RUN_END, run_conf={**conf, "pipeline_id": 2})

        yield SimpleNamespace(ledger=ledger, pipedrive=pipedrive, next_activity_run=next_activity_run,
                              client=client())


def client() -> SimpleNamespace:
    """A test client of the plugin's app, and tokens Airflow's auth manager signed for a viewer (reads DAGs)
    and an editor (role "user": may edit DAGs)."""
    from airflow.api_fastapi.app import init_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    from leadboxer_pipedrive.plugin import plugin_app

    auth = init_auth_manager()
    tokens = {role: auth.generate_jwt(SimpleAuthManagerUser(username=name, role=role))
              for name, role in (("vera", "viewer"), ("eddie", "user"))}
    http = TestClient(plugin_app())
    return SimpleNamespace(
        anonymous=http,
        viewer={"Authorization": f"Bearer {tokens['viewer']}"},
        editor={"Authorization": f"Bearer {tokens['user']}"})


def query(ledger, sql: str, *params) -> list[dict]:
    with sqlite3.connect(ledger) as db:
        db.row_factory = sqlite3.Row
        return [dict(row) for row in db.execute(sql, params)]


def get(synced, path: str, **params):
    answer = synced.client.anonymous.get(path, params=params, headers=synced.client.viewer)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_the_runs_figures_are_the_ledgers_and_add_up(synced):
    for dag_id in (ACTIVITIES, LEADS):
        (row,) = query(synced.ledger, "SELECT * FROM lbpd_run WHERE dag_id = ?", dag_id)
        (run,) = get(synced, f"/api/dags/{dag_id}/runs")["runs"]
        summary = json.loads(row["summary"])
        assert {key: run[key] for key in ("run_id", "extracted", "pushed", "already_pushed", "rejected",
                                          "tokens_spent", "rate_limited")} == {
            key: row[key] for key in ("run_id", "extracted", "pushed", "already_pushed", "rejected", "tokens_spent",
                                      "rate_limited")}
        assert (run["invalid"], run["refused"]) == (summary["rejected_invalid"], summary["rejected_by_pipedrive"])
        assert run["requests"] == summary["requests"] and run["state"] == "success" and run["adds_up"] is True
        assert sum(run["rejected_by_reason"].values()) == run["rejected"]
    (activity_run,) = get(synced, f"/api/dags/{ACTIVITIES}/runs")["runs"]
    assert activity_run["invalid"] > 0 and activity_run["refused"] == 2


def test_a_run_whose_figures_do_not_add_up_is_flagged(synced):
    (row,) = query(synced.ledger, "SELECT run_id, pushed FROM lbpd_run WHERE dag_id = ?", LEADS)
    with sqlite3.connect(synced.ledger) as db:
        db.execute("UPDATE lbpd_run SET pushed = pushed + 1 WHERE dag_id = ?", (LEADS,))
    try:
        (run,) = get(synced, f"/api/dags/{LEADS}/runs")["runs"]
        assert run["adds_up"] is False
        page = synced.client.anonymous.get(f"/dashboard/{LEADS}", headers=synced.client.viewer).text
        assert "does not add up" in page
    finally:
        with sqlite3.connect(synced.ledger) as db:
            db.execute("UPDATE lbpd_run SET pushed = ? WHERE dag_id = ?", (row["pushed"], LEADS))


def test_rejected_rows_filter_by_run_reason_entity_and_email(synced):
    every = query(synced.ledger, "SELECT * FROM lbpd_rejected_row WHERE dag_id = ?", ACTIVITIES)
    assert len(every) > 3
    listed = get(synced, f"/api/dags/{ACTIVITIES}/rejected", limit=500)
    assert listed["matching"] == len(every) == len(listed["rows"])
    assert sum(kind["row_count"] for kind in listed["kinds"]) == len(every)
    reason = every[0]["reason"]
    by_reason = get(synced, f"/api/dags/{ACTIVITIES}/rejected", reason=reason, limit=500)
    assert by_reason["matching"] == sum(row["reason"] == reason for row in every)
    assert {row["reason"] for row in by_reason["rows"]} == {reason}
    by_entity = get(synced, f"/api/dags/{ACTIVITIES}/rejected", entity="lead")
    assert by_entity["matching"] == sum(row["entity"] == "lead" for row in every) > 0
    by_run = get(synced, f"/api/dags/{ACTIVITIES}/rejected", run_id=every[0]["run_id"], limit=1)
    assert by_run["matching"] == len(every) and len(by_run["rows"]) == 1
    assert get(synced, f"/api/dags/{ACTIVITIES}/rejected", run_id="no such run")["matching"] == 0
    email = next(row["email"] for row in every if row["email"])
    by_email = get(synced, f"/api/dags/{ACTIVITIES}/rejected", email=f"  {email.upper()} ")
    assert by_email["matching"] == sum(row["email"] == email for row in every) > 0
    assert {row["email"] for row in by_email["rows"]} == {email}
    refused = [row for row in every if row["outcome"] == "quarantined"]
    assert len(refused) == 2 and all(row["email"] for row in refused)


def test_the_budget_is_the_days_tokens_against_the_connections_budget(synced):
    budget = get(synced, f"/api/dags/{ACTIVITIES}/budget")
    spent = sum(row["tokens_spent"] for row in query(synced.ledger, "SELECT tokens_spent FROM lbpd_run"))
    assert budget["days"][-1]["day"] == datetime.now(timezone.utc).date().isoformat()
    assert budget["spent_today"] == spent > 0
    assert (budget["daily_token_budget"], budget["left_today"]) == (BUDGET, BUDGET - spent)
    (activity_run,) = get(synced, f"/api/dags/{ACTIVITIES}/runs")["runs"]
    assert budget["next_run_estimate"] == activity_run["tokens_spent"]


def test_anonymous_requests_are_refused(synced):
    for path in (f"/api/dags/{ACTIVITIES}/runs", f"/api/dags/{ACTIVITIES}/rejected", f"/api/dags/{ACTIVITIES}/budget",
                 f"/api/dags/{ACTIVITIES}/retries", f"/dashboard/{ACTIVITIES}", "/dashboard/"):
        answer = synced.client.anonymous.get(path)
        assert answer.status_code == 401, path
        assert "@" not in answer.text
    assert synced.client.anonymous.post(f"/api/dags/{ACTIVITIES}/redrive", json={"rows": []}).status_code == 401


def test_redrive_needs_edit_permission_is_recorded_and_the_next_run_sends_the_row_again(synced):
    queue = get(synced, f"/api/dags/{ACTIVITIES}/retries")["retries"]
    quarantined = [row for row in queue if row["status"] == "quarantined"]
    assert len(quarantined) == 2 and all(row["entity"] == "event" and row["email"] for row in quarantined)
    chosen = {key: quarantined[0][key] for key in ("dataset_id", "entity", "record_id")}
    http = synced.client.anonymous

    # A viewer sees the rows but may not put them back (and the page offers no button).
    assert http.post(f"/api/dags/{ACTIVITIES}/redrive", json={"rows": [chosen]},
                     headers=synced.client.viewer).status_code == 403
    assert 'type="checkbox"' not in http.get(f"/dashboard/{ACTIVITIES}", headers=synced.client.viewer).text
    # A row this DAG's runs do not retry is refused.
    foreign = {**chosen, "entity": "lead"}
    assert http.post(f"/api/dags/{ACTIVITIES}/redrive", json={"rows": [foreign]},
                     headers=synced.client.editor).status_code == 400

    assert 'type="checkbox"' in http.get(f"/dashboard/{ACTIVITIES}", headers=synced.client.editor).text
    answer = http.post(f"/api/dags/{ACTIVITIES}/redrive", json={"rows": [chosen]}, headers=synced.client.editor)
    assert answer.status_code == 200 and answer.json()["redriven"] == 1 and answer.json()["by"] == "eddie"
    (row,) = query(synced.ledger, "SELECT status, attempts FROM lbpd_retry WHERE record_id = ?", chosen["record_id"])
    assert row["status"] == "pending"
    (recorded,) = query(synced.ledger, "SELECT * FROM lbpd_redrive")
    assert (recorded["record_id"], recorded["redriven_by"], recorded["dag_id"]) == (chosen["record_id"], "eddie",
                                                                                   ACTIVITIES)
    assert recorded["redriven_at"][:10] == datetime.now(timezone.utc).date().isoformat()
    assert get(synced, f"/api/dags/{ACTIVITIES}/retries")["redrives"][0]["redriven_by"] == "eddie"
    # Again: nothing left to put back, nothing recorded twice.
    again = http.post(f"/api/dags/{ACTIVITIES}/redrive", json={"rows": [chosen]}, headers=synced.client.editor)
    assert again.json()["redriven"] == 0 and len(query(synced.ledger, "SELECT * FROM lbpd_redrive")) == 1

    # The next run sends it once more: pushed, out of the queue; the other stays quarantined.
    assert synced.next_activity_run().state == "success"
    assert query(synced.ledger, "SELECT * FROM lbpd_retry WHERE record_id = ?", chosen["record_id"]) == []
    assert query(synced.ledger, "SELECT activity_id FROM lbpd_pushed_event WHERE event_id = ?", chosen["record_id"])
    left = get(synced, f"/api/dags/{ACTIVITIES}/retries")["retries"]
    assert [row["record_id"] for row in left] == [quarantined[1]["record_id"]]
    assert left[0]["status"] == "quarantined"


def test_the_page_shows_the_charts_the_runs_and_a_rejected_row(synced):
    page = synced.client.anonymous.get(f"/dashboard/{ACTIVITIES}", headers=synced.client.viewer)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    (row,) = get(synced, f"/api/dags/{ACTIVITIES}/rejected", limit=1)["rows"]
    for shown in ('id="runs-chart"', 'id="budget-chart"', row["reason"], row["record_id"]):
        assert shown.replace("'", "&#x27;").replace('"', "&quot;") in page.text or shown in page.text, shown
    assert "http://" not in page.text.split("<body>")[0] and "<script src" not in page.text  # nothing fetched


def test_the_overview_lists_the_sync_dags_the_user_may_read(synced):
    page = synced.client.anonymous.get("/dashboard/", headers=synced.client.viewer)
    assert page.status_code == 200
    for dag_id in (ACTIVITIES, LEADS):
        assert f'/dashboard/{dag_id}"' in page.text
    assert synced.client.anonymous.get("/dashboard/no_such_dag", headers=synced.client.viewer).status_code == 404
