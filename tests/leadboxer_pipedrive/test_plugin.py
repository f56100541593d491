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
