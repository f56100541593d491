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
    app = plugin.plugin_app()
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
    answer = TestClient(plugin.plugin_app()).get(f"/reports/{DAG_ID}/r1/validation")
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


@pytest.fixture
def dashboard_app(signed_in_app):
    """The app reading the DAG's ledger ``dashboard_ledger``, with the Airflow runs given by the test."""
    airflow_runs: list[dict] = []
    signed_in_app.dependency_overrides[plugin.sync_dag] = lambda dag_id: plugin.SyncDag(
        dag_id, "dashboard_ledger", "no_such_pipedrive_connection")
    signed_in_app.dependency_overrides[plugin.airflow_runs] = lambda: airflow_runs
    signed_in_app.state.airflow_runs = airflow_runs
    return signed_in_app


def record(ledger, run_id, hour, extracted, pushed, already, rejected, **summary):
    import json

    ledger.record_run(dag_id=DAG_ID, run_id=run_id, interval_start=f"2026-11-20T{hour - 1:02d}:00:00+00:00",
                      interval_end=f"2026-11-20T{hour:02d}:00:00+00:00", extracted=extracted, pushed=pushed,
                      already_pushed=already, rejected=rejected, tokens_spent=5 * pushed, rate_limited=0,
                      summary=json.dumps({"requests": pushed, "run_duration_seconds": 3.5, **summary}))


def test_the_runs_api_gives_each_runs_figures_and_flags_those_that_do_not_add_up(ledger, dashboard_app):
    record(ledger, "r6", 6, 10, 8, 0, 2, rejected_by_reason={"event time outside the window": 2}, rejected_invalid=2)
    record(ledger, "r7", 7, 300, 100, 0, 0, deferred=200)  # a whole-segment run paced by the budget
    record(ledger, "r8", 8, 10, 8, 0, 1)  # one row unaccounted for
    answer = TestClient(dashboard_app).get(f"/api/dags/{DAG_ID}/runs")
    assert answer.status_code == 200
    runs = answer.json()["runs"]
    assert [r["run_id"] for r in runs] == ["r8", "r7", "r6"]  # newest first
    assert [r["adds_up"] for r in runs] == [False, True, True]
    assert runs[1]["deferred"] == 200 and runs[2]["rejected_by_reason"] == {"event time outside the window": 2}
    assert (runs[2]["invalid"], runs[2]["refused"]) == (2, 0)
    assert (runs[2]["tokens_spent"], runs[2]["requests"], runs[2]["duration_seconds"]) == (40, 8, 3.5)
    assert runs[2]["grid_url"] == f"/dags/{DAG_ID}/runs/r6"
    limited = TestClient(dashboard_app).get(f"/api/dags/{DAG_ID}/runs", params={"limit": 1}).json()
    assert [r["run_id"] for r in limited["runs"]] == ["r8"]


def test_a_run_that_failed_before_its_load_stands_out_on_the_page(ledger, dashboard_app):
    record(ledger, "r6", 6, 10, 10, 0, 0)
    dashboard_app.state.airflow_runs[:] = [
        {"run_id": "r7", "state": "failed", "start_date": "2999-01-01T00:00:00+00:00", "end_date": None},
        {"run_id": "r6", "state": "success", "start_date": "2026-11-20T06:00:01+00:00", "end_date": None}]
    runs = TestClient(dashboard_app).get(f"/api/dags/{DAG_ID}/runs").json()["runs"]
    assert [(r["run_id"], r["state"], r["adds_up"]) for r in runs] == [("r7", "failed", None), ("r6", "success", True)]
    page = TestClient(dashboard_app).get(f"/dashboard/{DAG_ID}").text
    assert 'class="out"' in page and "failed" in page and "not in the ledger" in page


def test_without_signing_in_the_runs_api_is_refused(ledger):
    record(ledger, "r6", 6, 10, 10, 0, 0)
    answer = TestClient(plugin.plugin_app()).get(f"/api/dags/{DAG_ID}/runs")
    assert answer.status_code == 401 and "r6" not in answer.text


def test_the_plugin_shows_the_dashboard_in_the_navigation_and_on_each_dag():
    views = {view["destination"]: view for view in plugin.LeadBoxerPipedrivePlugin.external_views}
    assert views["nav"]["href"] == "/leadboxer-pipedrive/dashboard/"
    assert views["dag"]["href"] == "/leadboxer-pipedrive/dashboard/{DAG_ID}"
    assert all(view["url_route"] for view in views.values())  # shown inside the UI


PLUGINS_LOADED = """
import importlib.metadata, json, sys
from airflow._shared import module_loading
if sys.argv[1] == "not installed":  # as if the distribution were absent: no entry point of ours, anywhere
    everything, with_dist = importlib.metadata.entry_points, module_loading.entry_points_with_dist
    importlib.metadata.entry_points = lambda **kw: [point for point in everything(**kw)
                                                    if not point.value.startswith("leadboxer_pipedrive")]
    module_loading.entry_points_with_dist = lambda group: [(point, dist) for point, dist in with_dist(group)
                                                           if not point.value.startswith("leadboxer_pipedrive")]
from airflow import plugins_manager
plugins, errors = plugins_manager._get_plugins()
print(json.dumps({"names": [p.name for p in plugins], "errors": errors, "sources": [str(p.source) for p in plugins]}))
"""


@pytest.mark.parametrize("how", ["installed", "not installed"])
def test_airflow_registers_the_plugin_once_installed_or_from_the_plugins_folder(how):
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "AIRFLOW__CORE__PLUGINS_FOLDER": str(root / "plugins"), "PYTHONPATH": str(root / "plugins")}
    done = subprocess.run([sys.executable, "-c", PLUGINS_LOADED, how], env=env, capture_output=True, text=True,
                          check=True)
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded["names"].count("leadboxer_pipedrive") == 1 and loaded["errors"] == {}
    source = loaded["sources"][loaded["names"].index("leadboxer_pipedrive")]
    assert ("leadboxer_pipedrive_plugin.py" in source) == (how == "not installed"), source


def test_the_dashboard_page_of_another_dag_says_so_as_a_page(signed_in_app):
    def not_a_sync_dag(dag_id: str):
        from fastapi import HTTPException

        raise HTTPException(404, f"{dag_id!r} is not a LeadBoxer → Pipedrive sync DAG")

    signed_in_app.dependency_overrides[plugin.sync_dag] = not_a_sync_dag
    signed_in_app.dependency_overrides[plugin.airflow_runs] = lambda: []
    page = TestClient(signed_in_app).get("/dashboard/example_dag")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "&#x27;example_dag&#x27; is not a LeadBoxer → Pipedrive sync DAG" in page.text
    api = TestClient(signed_in_app).get("/api/dags/example_dag/runs")
    assert api.status_code == 404 and api.json()["detail"].endswith("is not a LeadBoxer → Pipedrive sync DAG")
