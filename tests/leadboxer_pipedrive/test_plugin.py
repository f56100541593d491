"""The Airflow plugin: a run's validation report served by the API server, behind Airflow's own login."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from leadboxer_pipedrive import plugin

DAG_ID, RUN_ID = "leadboxer_pipedrive_activities", "manual__2026-11-20T06:00:00+00:00"


@pytest.fixture
def staged(tmp_path, monkeypatch):
    monkeypatch.setenv("LEADBOXER_PIPEDRIVE_STAGING_URL", f"file://{tmp_path}")
    return tmp_path


@pytest.fixture
def signed_in_app():
    app = plugin.reports_app()
    app.dependency_overrides[plugin.can_read_dag_runs] = lambda: None
    return app


def test_the_run_link_serves_the_page_the_validate_task_wrote(staged, signed_in_app):
    folder = staged / DAG_ID / "manual__2026-11-20T06_00_00_00_00"
    folder.mkdir(parents=True)
    (folder / "validation.html").write_text("<h1>events of the run</h1>", encoding="utf-8")
    url = plugin.report_url(DAG_ID, RUN_ID, "http://airflow.example:8080/")
    path = url.removeprefix("http://airflow.example:8080" + plugin.URL_PREFIX)

    assert url.startswith("http://airflow.example:8080/leadboxer-pipedrive/reports/")
    answer = TestClient(signed_in_app).get(path)
    assert answer.status_code == 200 and answer.text == "<h1>events of the run</h1>"
    assert answer.headers["content-type"].startswith("text/html")
    assert plugin.report_path(DAG_ID, RUN_ID).path == str(folder / "validation.html")


def test_a_run_without_a_report_is_a_404_that_says_so(staged, signed_in_app):
    answer = TestClient(signed_in_app).get(f"/reports/{DAG_ID}/no_such_run/validation")
    assert answer.status_code == 404 and "No validation report for run 'no_such_run'" in answer.json()["detail"]
    assert not (staged / DAG_ID).exists()  # looking does not create the run's folder


def test_without_signing_in_the_page_is_refused(staged):
    folder = staged / DAG_ID / "r1"
    folder.mkdir(parents=True)
    (folder / "validation.html").write_text("secret figures", encoding="utf-8")
    answer = TestClient(plugin.reports_app()).get(f"/reports/{DAG_ID}/r1/validation")
    assert answer.status_code == 401 and "secret figures" not in answer.text


def test_the_plugin_mounts_the_app_under_its_prefix():
    (app,) = plugin.LeadBoxerPipedrivePlugin.fastapi_apps
    assert app["url_prefix"] == plugin.URL_PREFIX == "/leadboxer-pipedrive"
    assert any(getattr(route, "path", "") == "/reports/{dag_id}/{run_id}/validation" for route in app["app"].routes)


@pytest.fixture
def ledger(tmp_path, monkeypatch):
    import json

    from leadboxer_pipedrive.hooks.ledger import LedgerHook

    monkeypatch.setenv("AIRFLOW_CONN_DASHBOARD_LEDGER", json.dumps({"conn_type": "sqlite",
                                                                     "host": str(tmp_path / "ledger.sqlite")}))
    hook = LedgerHook("dashboard_ledger")
    yield hook
    hook.get_conn().dispose()


def record(ledger, run_id, hour, extracted, pushed, already, rejected, **summary):
    import json

    ledger.record_run(dag_id=DAG_ID, run_id=run_id, interval_start=f"2026-11-20T{hour - 1:02d}:00:00+00:00",
                      interval_end=f"2026-11-20T{hour:02d}:00:00+00:00", extracted=extracted, pushed=pushed,
                      already_pushed=already, rejected=rejected, tokens_spent=5 * pushed, rate_limited=0,
                      summary=json.dumps({"requests": pushed, "run_duration_seconds": 3.5, **summary}))


def test_the_runs_api_gives_each_runs_figures_and_flags_those_that_do_not_add_up(ledger, signed_in_app):
    record(ledger, "r6", 6, 10, 8, 0, 2, rejected_by_reason={"event time outside the window": 2})
    record(ledger, "r7", 7, 300, 100, 0, 0, deferred=200)  # a whole-segment run paced by the budget
    record(ledger, "r8", 8, 10, 8, 0, 1)  # one row unaccounted for
    answer = TestClient(signed_in_app).get(f"/api/runs/{DAG_ID}", params={"ledger_conn_id": "dashboard_ledger"})
    assert answer.status_code == 200
    runs = answer.json()["runs"]
    assert [r["run_id"] for r in runs] == ["r8", "r7", "r6"]  # newest first
    assert [r["adds_up"] for r in runs] == [False, True, True]
    assert runs[1]["deferred"] == 200 and runs[2]["rejected_by_reason"] == {"event time outside the window": 2}
    assert (runs[2]["tokens_spent"], runs[2]["requests"], runs[2]["duration_seconds"]) == (40, 8, 3.5)
    assert runs[2]["grid_url"] == f"/dags/{DAG_ID}/runs/r6"
    limited = TestClient(signed_in_app).get(f"/api/runs/{DAG_ID}",
                                            params={"ledger_conn_id": "dashboard_ledger", "limit": 1}).json()
    assert [r["run_id"] for r in limited["runs"]] == ["r8"]


def test_without_signing_in_the_runs_api_is_refused(ledger):
    record(ledger, "r6", 6, 10, 10, 0, 0)
    answer = TestClient(plugin.reports_app()).get(f"/api/runs/{DAG_ID}", params={"ledger_conn_id": "dashboard_ledger"})
    assert answer.status_code == 401 and "r6" not in answer.text
