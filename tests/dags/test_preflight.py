"""The preflight, the first task of every sync DAG: a setting or connection that cannot work fails the run
at once, in that task, not retried, naming what to fix, and nothing is written to Pipedrive."""

from __future__ import annotations

import json
import logging
import socket

import pytest

pytestmark = pytest.mark.integration

ACTIVITIES, LEADS = "leadboxer_pipedrive_activities", "leadboxer_pipedrive_leads"


def task_states(dag_run) -> dict[str, tuple[str | None, int]]:
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = session.query(TaskInstance).filter(TaskInstance.dag_id == dag_run.dag_id,
                                                 TaskInstance.run_id == dag_run.run_id)
        return {ti.task_id: (ti.state, ti.try_number) for ti in tis}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def failing(run_dag, pipedrive_sandbox, caplog, capfd):
    """Runs a DAG that must fail in its preflight; returns what its logs said."""
    caplog.set_level(logging.INFO)

    def run(dag_id: str, conf: dict) -> str:
        dag_run = run_dag(dag_id, "2026-11-20T06:00:00", conf)
        states = task_states(dag_run)
        assert dag_run.state == "failed"
        # Failed in its first try: not retried (the DAG keeps its retries; they would run here).
        assert states["preflight"] == ("failed", 1), states
        assert states["extract"][0] == "upstream_failed" and states["load"][0] == "upstream_failed", states
        pipedrive = pipedrive_sandbox.state()
        assert all(pipedrive[entity] == [] for entity in ("persons", "organizations", "deals", "activities", "leads"))
        assert not [call for call in pipedrive["counters"]["by_endpoint"] if not call.startswith("GET ")]
        captured = capfd.readouterr()
        return caplog.text + captured.out + captured.err
    return run


def test_an_unknown_segment_fails_the_run_naming_the_segments_there_are(failing):
    said = failing(ACTIVITIES, {"segment_id": 99999})
    assert ("LeadBoxer segment 99999 does not exist in dataset '07bacbd9d46a4e26b58b15d69f69250f'; its segments: "
            "14118 (Qualified – push to Pipedrive), 14119 (Top leads), 14120 (Web visitors)") in said
    assert "(not retried: retrying cannot fix this)" in said


def test_an_unknown_dataset_fails_the_run(failing):
    said = failing(LEADS, {"dataset_id": "no-such-dataset"})
    assert "LeadBoxer lists no segments for dataset 'no-such-dataset'" in said


def test_a_wrong_pipedrive_token_fails_the_first_task(failing, monkeypatch, pipedrive_sandbox):
    monkeypatch.setenv("AIRFLOW_CONN_PIPEDRIVE_DEFAULT", json.dumps({
        "conn_type": "pipedrive", "host": pipedrive_sandbox.url, "password": "a-wrong-token"}))
    said = failing(ACTIVITIES, {"pipeline_id": 2})
    assert "Pipedrive GET /api/v1/users/me -> 401" in said and "a-wrong-token" not in said


def test_a_leadboxer_host_that_does_not_resolve_fails_the_first_task(failing, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_LEADBOXER_DEFAULT", json.dumps({
        "conn_type": "leadboxer", "host": "https://leadboxer.invalid", "password": "sandbox-key"}))
    said = failing(ACTIVITIES, {})
    assert "LeadBoxer GET /v1/segments -> no answer: the host name does not resolve (leadboxer.invalid)" in said


def test_a_refused_pipedrive_port_fails_the_first_task(failing, monkeypatch):
    port = free_port()
    monkeypatch.setenv("AIRFLOW_CONN_PIPEDRIVE_DEFAULT", json.dumps({
        "conn_type": "pipedrive", "host": f"http://127.0.0.1:{port}", "password": "sandbox-token"}))
    said = failing(LEADS, {})
    assert f"Pipedrive GET /api/v1/users/me -> no answer: the connection is refused (127.0.0.1:{port})" in said


def test_a_pipeline_or_activity_type_that_does_not_exist_fails_the_first_task(failing):
    assert "Pipedrive pipeline 777 does not exist" in failing(ACTIVITIES, {"pipeline_id": 777})
    assert "activity type(s) ['no_such_type'] do not exist" in failing(ACTIVITIES, {"activity_type": "no_such_type"})


def test_an_unknown_custom_field_fails_the_first_task_naming_the_existing_fields(failing):
    said = failing(ACTIVITIES, {"custom_fields": {"deal": {"lead_score": "Hotness"}}})
    assert "Pipedrive has no deal custom field named 'Hotness'; existing deal custom fields: [" in said
    assert "'LeadBoxer lead score'" in said


def test_a_passing_preflight_counts_its_tokens_in_the_run(run_dag, connections):
    import sqlite3

    assert run_dag(ACTIVITIES, "2026-11-20T06:00:00", {"pipeline_id": 2}).state == "success"
    with sqlite3.connect(connections) as db:
        summary = json.loads(db.execute("SELECT summary FROM lbpd_run").fetchone()[0])
    assert summary["preflight_tokens"] > 0
    assert "users/me" in summary["tokens_spent_on"]["preflight"]
