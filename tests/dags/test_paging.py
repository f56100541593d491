"""A list LeadBoxer or Pipedrive cannot page to its end fails its task at once (not retried), naming the
endpoint: the DAG neither loops nor treats half a window as all of it."""

from __future__ import annotations

import logging

import pytest

from tests.dags.test_preflight import task_states

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("dag_id, sandbox, path, task", [
    ("leadboxer_pipedrive_activities", "leadboxer", "/v1/leads/sessions", "extract"),
    ("leadboxer_pipedrive_leads", "pipedrive", "/api/v2/persons/search", "load"),
])
def test_a_repeated_cursor_fails_the_task_in_its_first_try_naming_the_endpoint(
        dag_id, sandbox, path, task, run_dag, request, caplog, capfd):
    caplog.set_level(logging.INFO)
    request.getfixturevalue(f"{sandbox}_sandbox").add_fault({"kind": "repeat_cursor", "path": f"^{path}$"})
    dag_run = run_dag(dag_id, "2026-11-20T06:00:00")
    states = task_states(dag_run)
    assert dag_run.state == "failed" and states[task] == ("failed", 1), states
    captured = capfd.readouterr()
    said = caplog.text + captured.out + captured.err
    service = "LeadBoxer" if sandbox == "leadboxer" else "Pipedrive"
    # The sessions list repeats its cursor; a search for a new email finds nothing, yet says there is more.
    assert f"{service} GET {path} -> 200: page " in said and "the list cannot be read to its end" in said
    assert "(not retried: retrying cannot fix this)" in said
