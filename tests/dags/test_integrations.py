"""The integrations file: one DAG per entry, bad entries isolated in the config-errors DAG, cheap parsing,
and failure alerts through the notifier."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from leadboxer_pipedrive.integrations import CONFIG_ERRORS_DAG_ID, load_integrations, parse_integrations

ROOT = Path(__file__).resolve().parents[2]
INTEGRATIONS_DAG_FILE = ROOT / "dags" / "leadboxer_pipedrive_integrations.py"
SANDBOX_DATASET = "07bacbd9d46a4e26b58b15d69f69250f"

GOOD_AND_BAD = textwrap.dedent(f"""
    defaults:
      pipedrive_conn_id: pipedrive_default
    integrations:
      - name: acme_activities
        sync: activities
        dataset_id: "{SANDBOX_DATASET}"
        segment_id: 14118
        pipeline_id: 2
        activity_mode: digest
        activity_type: call
        ledger_conn_id: acme_ledger
        tags: [acme]
      - name: acme_leads
        sync: leads
        dataset_id: "{SANDBOX_DATASET}"
        segment_id: 14119
        link_to: person
        schedule: "15 * * * *"
        organization_domain_field: Domain
      - name: broken_link
        sync: leads
        dataset_id: "{SANDBOX_DATASET}"
        segment_id: 14119
        link_to: everyone
      - name: no_segment
        sync: activities
        dataset_id: "{SANDBOX_DATASET}"
""")


def bag_of(path: Path | None, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    if path is not None:
        monkeypatch.setenv("LEADBOXER_PIPEDRIVE_INTEGRATIONS", str(path))
    return DagBag(dag_folder=str(INTEGRATIONS_DAG_FILE))


# -- the file and its validation (no Airflow database) ------------------------------------------------

def test_the_shipped_file_declares_the_two_sandbox_integrations():
    config = load_integrations(ROOT / "include" / "integrations.yaml")
    assert config.errors == ()
    by_name = {i.name: i for i in config.integrations}
    assert set(by_name) == {"sandbox_activities", "sandbox_leads"}
    assert by_name["sandbox_activities"].sync == "activities" and by_name["sandbox_activities"].segment_id == 14118
    assert by_name["sandbox_leads"].sync == "leads" and by_name["sandbox_leads"].segment_id == 14119
    assert {i.dataset_id for i in config.integrations} == {SANDBOX_DATASET}


def test_each_bad_entry_is_named_with_its_field_and_the_good_ones_stay():
    config = parse_integrations(GOOD_AND_BAD, source="x.yaml")
    assert [i.name for i in config.integrations] == ["acme_activities", "acme_leads"]
    assert [i.organization_domain_field for i in config.integrations] == [None, "Domain"]
    assert len(config.errors) == 2
    link, segment = config.errors
    assert "#3 ('broken_link')" in link and "link_to" in link and "everyone" in link
    assert "#4 ('no_segment')" in segment and "segment_id" in segment


@pytest.mark.parametrize(("entry", "field"), [
    ({"sync": "activities", "dataset_id": "d", "segment_id": 1}, "name"),
    ({"name": "Bad Name", "sync": "leads", "dataset_id": "d", "segment_id": 1}, "name"),
    ({"name": "a", "sync": "deals", "dataset_id": "d", "segment_id": 1}, "sync"),
    ({"name": "a", "sync": "leads", "segment_id": 1}, "dataset_id"),
    ({"name": "a", "sync": "leads", "dataset_id": "d", "segment_id": 1, "pipeline_id": 2}, "pipeline_id"),
    ({"name": "a", "sync": "activities", "dataset_id": "d", "segment_id": 1, "pipeline_id": "x"}, "pipeline_id"),
    ({"name": "a", "sync": "activities", "dataset_id": "d", "segment_id": 1, "activity_mode": "x"},
     "activity_mode"),
    ({"name": "a", "sync": "activities", "dataset_id": "d", "segment_id": 1, "schedule": "hourly"}, "schedule"),
    ({"name": "a", "sync": "activities", "dataset_id": "d", "segment_id": 1, "tags": "x", "colour": 1}, "colour"),
    ({"name": "a", "sync": "activities", "dataset_id": "d", "segment_id": 1, "pipedrive_conn_id": ""},
     "pipedrive_conn_id"),
    ({"name": "a", "sync": "leads", "dataset_id": "d", "segment_id": 1, "organization_domain_field": 3},
     "organization_domain_field"),
    ({"name": "a", "sync": "leads", "dataset_id": "d", "segment_id": 1, "retries": -1}, "retries"),
    ({"name": "a", "sync": "leads", "dataset_id": "d", "segment_id": 1, "retries": "3"}, "retries"),
])
def test_validation_names_the_bad_field(entry, field):
    import yaml

    config = parse_integrations(yaml.safe_dump({"integrations": [entry]}))
    assert config.integrations == ()
    assert len(config.errors) == 1 and f": {field}:" in config.errors[0], config.errors


LEADS = {"name": "a", "sync": "leads", "dataset_id": "d", "segment_id": 1}
KNOWN_FOR_LEADS = ("name, sync, dataset_id, segment_id, leadboxer_conn_id, pipedrive_conn_id, ledger_conn_id, "
                   "schedule, tags, alert_emails, description, organization_domain_field, retries, link_to, "
                   "segment_sync_hours")


@pytest.mark.parametrize(("changes", "message"), [
    ({"link_to": "everyone"}, "link_to: must be one of organization, person, both, not 'everyone'"),
    ({"segment_id": None}, "segment_id: required, a positive LeadBoxer segment id, not None"),
    ({"sync": "deals"}, "sync: must be one of activities, leads, not 'deals'"),
    ({"colour": "red"}, f"colour: unknown field (known: {KNOWN_FOR_LEADS})"),
    ({"pipeline_id": 2}, "pipeline_id: applies to sync: activities only, not to sync: leads"),
    ({"custom_fields": {"deal": {"lead_score": "Score"}}},
     "custom_fields: applies to sync: activities only, not to sync: leads"),
    ({"schedule": "hourly"}, "schedule: must be a cron expression such as '0 * * * *' (or @hourly, @daily...), "
                             "not 'hourly'"),
    ({"schedule": " "}, "schedule: must be a non-empty string, not ' '"),
    ({"alert_emails": ["ops@example.com", " ops "]}, "alert_emails: 'ops' is not an email address"),
    ({"tags": ""}, "tags: must be a list of non-empty strings, not ['']"),
    ({"retries": "3"}, "retries: how many more times a failed task is tried (0 or more), not '3'"),
    ({"name": "A"}, "name: must be 1-100 lowercase letters, digits and underscores, starting with a letter or "
                    "digit (it makes the dag_id leadboxer_pipedrive__<name>), not 'A'"),
])
def test_an_error_says_the_entry_the_field_what_it_must_be_and_the_value(changes, message):
    config = parse_integrations(yaml_of({"integrations": [{**LEADS, **changes}]}), source="x.yaml")
    assert config.errors == (f"x.yaml: integration #1 ('{changes.get('name', 'a')}'): {message}",)


def test_of_several_bad_fields_the_first_is_reported():
    """Unknown fields first (with sync, they say which fields the entry may have), then the fields in order."""
    entry = {**LEADS, "dataset_id": "", "schedule": "x", "link_to": "x", "colour": 1}
    (error,) = parse_integrations(yaml_of({"integrations": [entry]})).errors
    assert ": colour: unknown field" in error
    del entry["colour"]
    (error,) = parse_integrations(yaml_of({"integrations": [entry]})).errors
    assert ": dataset_id: required" in error


@pytest.mark.parametrize(("field", "value"), [
    ("segment_id", True), ("segment_id", 0), ("segment_id", 1.0), ("segment_id", "1.5"), ("segment_id", "\u00b2"),
    ("dataset_id", True), ("dataset_id", 1.5), ("dataset_id", " "), ("name", 7), ("pipedrive_conn_id", None),
    ("pipedrive_conn_id", 7), ("description", 7), ("retries", True), ("retries", 1.0), ("tags", [1]),
    ("tags", {"a": 1}), ("alert_emails", 7), ("link_to", ["both"]),
])
def test_types_are_strict_a_bool_is_no_number_and_a_number_no_string(field, value):
    """(a digit like '\u00b2' that int() cannot read is refused too, never raised)"""
    config = parse_integrations(yaml_of({"integrations": [{**LEADS, field: value}]}))
    assert config.integrations == () and len(config.errors) == 1 and f": {field}:" in config.errors[0], config.errors


def test_what_an_entry_may_write_loosely():
    import yaml

    text = textwrap.dedent("""
        integrations:
          - {name: a, sync: leads, dataset_id: 5, segment_id: " 12 ", tags: solo, description: null, link_to: null,
             pipeline_id: null, schedule: " @daily ", alert_emails: [" ops@example.com "]}
          - {name: b, sync: activities, dataset_id: " d ", segment_id: "7", pipeline_id: "3", activity_type: null}
    """)
    assert yaml.safe_load(text)  # plain YAML
    config = parse_integrations(text)
    assert config.errors == ()
    leads, activities = config.integrations
    assert (leads.dataset_id, leads.segment_id, leads.tags, leads.description, leads.link_to, leads.schedule,
            leads.alert_emails) == ("5", 12, ("solo",), None, "both", "@daily", ("ops@example.com",))
    assert (activities.dataset_id, activities.segment_id, activities.pipeline_id, activities.activity_type) == (
        "d", 7, 3, "task")
    (error,) = parse_integrations("integrations:\n  - {name: a, sync: leads, dataset_id: d, segment_id: 1, "
                                  "tags: !!set {x: null}}").errors
    assert ": tags: must be a list" in error  # a list, not a set


def yaml_of(document):
    import yaml

    return yaml.safe_dump(document)


def test_an_activity_integration_maps_custom_fields_by_record_kind_into_its_dags_params():
    from leadboxer_pipedrive.dag_factory import build_integration_dag

    entry = {"name": "a", "sync": "activities", "dataset_id": "d", "segment_id": 1,
             "custom_fields": {"deal": {"lead_score": "LeadBoxer lead score"}}}
    (integration,) = parse_integrations(yaml_of({"integrations": [entry]})).integrations
    assert build_integration_dag(integration).params["custom_fields"] == entry["custom_fields"]
    (error,) = parse_integrations(yaml_of({"integrations": [{**entry, "custom_fields": {"lead": {"x": "y"}}}]})).errors
    assert ": custom_fields: must map person, organization or deal to {LeadBoxer fact: Pipedrive custom field " \
           "name}, not {'lead': {'x': 'y'}}" in error


def test_an_entry_sets_its_tasks_retries_else_the_default():
    import yaml

    from leadboxer_pipedrive.dag_factory import DEFAULT_RETRIES, build_integration_dag

    entries = [{"name": "none", "sync": "leads", "dataset_id": "d", "segment_id": 1, "retries": 0},
               {"name": "usual", "sync": "activities", "dataset_id": "d", "segment_id": 1}]
    config = parse_integrations(yaml.safe_dump({"integrations": entries}))
    tries = {i.name: {t.retries for t in build_integration_dag(i).tasks} for i in config.integrations}
    assert tries == {"none": {0}, "usual": {DEFAULT_RETRIES}}


def test_duplicate_names_and_broken_yaml_are_errors():
    twice = {"name": "a", "sync": "leads", "dataset_id": "d", "segment_id": 1}
    import yaml

    config = parse_integrations(yaml.safe_dump({"integrations": [twice, twice]}))
    assert len(config.integrations) == 1 and "already used by entry #1" in config.errors[0]
    assert "not valid YAML" in parse_integrations("integrations: [").errors[0]


def test_the_file_is_read_again_only_when_it_changes(tmp_path):
    path = tmp_path / "integrations.yaml"
    path.write_text(GOOD_AND_BAD)
    first = load_integrations(path)
    assert load_integrations(path) is first
    path.write_text("integrations: []\n")
    os.utime(path, ns=(first_mtime := path.stat().st_mtime_ns + 10**9, first_mtime))
    assert load_integrations(path).integrations == ()


def test_parsing_the_dag_file_imports_neither_pandas_nor_great_expectations():
    code = textwrap.dedent(f"""
        import runpy, sys
        runpy.run_path({str(INTEGRATIONS_DAG_FILE)!r})
        heavy = sorted(m for m in ("pandas", "great_expectations", "pyarrow") if m in sys.modules)
        print("HEAVY=" + ",".join(heavy))
    """)
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'plugins'}:{ROOT}"}
    env.pop("LEADBOXER_PIPEDRIVE_INTEGRATIONS", None)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "HEAVY=\n" in done.stdout, done.stdout[-500:]


# -- the generated DAGs ------------------------------------------------------------------------------

def test_the_dags_folder_has_no_import_errors_and_the_generated_dags(dagbag):
    for dag_id in ("leadboxer_pipedrive__sandbox_activities", "leadboxer_pipedrive__sandbox_leads",
                   "leadboxer_pipedrive_activities", "leadboxer_pipedrive_leads",
                   "leadboxer_pipedrive_example_push_rows"):
        assert dag_id in dagbag.dag_ids, dag_id
    assert CONFIG_ERRORS_DAG_ID not in dagbag.dag_ids
    activities = dagbag.dags["leadboxer_pipedrive__sandbox_activities"]
    assert [t.task_id for t in activities.tasks] == ["preflight", "extract", "validate", "transform", "load"]
    assert activities.params["segment_id"] == 14118 and activities.params["pipeline_id"] == 2
    assert activities.params["dataset_id"] == SANDBOX_DATASET
    leads = dagbag.dags["leadboxer_pipedrive__sandbox_leads"]
    assert leads.params["segment_id"] == 14119 and leads.params["link_to"] == "both"
    assert "sandbox" in leads.tags


def test_a_bad_entry_yields_the_config_errors_dag_and_leaves_the_good_ones(tmp_path, monkeypatch, caplog):
    path = tmp_path / "integrations.yaml"
    path.write_text(GOOD_AND_BAD)
    with caplog.at_level("WARNING"):
        bag = bag_of(path, monkeypatch)
    assert not bag.import_errors, bag.import_errors
    assert set(bag.dag_ids) == {"leadboxer_pipedrive__acme_activities", "leadboxer_pipedrive__acme_leads",
                                CONFIG_ERRORS_DAG_ID}
    activities = bag.dags["leadboxer_pipedrive__acme_activities"]
    assert activities.params["activity_mode"] == "digest" and activities.params["activity_type"] == "call"
    load = activities.get_task("load")
    assert load.ledger_conn_id == "acme_ledger" and load.pipedrive_conn_id == "pipedrive_default"
    assert activities.get_task("validate").ledger_conn_id == "acme_ledger"
    assert "acme" in activities.tags
    leads = bag.dags["leadboxer_pipedrive__acme_leads"]
    assert leads.params["link_to"] == "person" and leads.params["organization_domain_field"] == "Domain"
    assert leads.timetable.expression == "15 * * * *"
    errors = bag.dags[CONFIG_ERRORS_DAG_ID]
    (task,) = errors.tasks
    assert len(task.errors) == 2 and "broken_link" in task.errors[0] and "no_segment" in task.errors[1]
    warned = [r.getMessage() for r in caplog.records if "integration skipped" in r.getMessage()]
    assert len(warned) == 2


def test_a_missing_named_file_is_a_config_error(tmp_path, monkeypatch):
    bag = bag_of(tmp_path / "nowhere.yaml", monkeypatch)
    assert not bag.import_errors
    assert list(bag.dag_ids) == [CONFIG_ERRORS_DAG_ID]


# -- alerts -------------------------------------------------------------------------------------------

@pytest.mark.integration
def test_a_failing_run_sends_the_failure_alert(tmp_path, monkeypatch, airflow_db):
    """config error → AirflowFailException → the notifier's notify receives the context."""
    from datetime import datetime, timezone

    from airflow.dag_processing.dagbag import DagBag

    from leadboxer_pipedrive.notifications import LeadBoxerPipedriveFailureNotifier, format_failure

    path = tmp_path / "integrations.yaml"
    path.write_text(GOOD_AND_BAD)
    monkeypatch.setenv("LEADBOXER_PIPEDRIVE_INTEGRATIONS", str(path))
    received = []
    original = LeadBoxerPipedriveFailureNotifier.notify

    def spy(self, context):
        received.append(format_failure(context))
        received.append(context.get("exception"))
        return original(self, context)

    monkeypatch.setattr(LeadBoxerPipedriveFailureNotifier, "notify", spy)
    dag = DagBag(dag_folder=str(ROOT / "dags")).dags[CONFIG_ERRORS_DAG_ID]
    run = dag.test(logical_date=datetime(2026, 11, 20, 6, tzinfo=timezone.utc))
    assert run.state == "failed"
    assert received, "the failure notifier was not called"
    (subject, message), exception = received[0], received[1]
    assert type(exception).__name__ == "AirflowFailException"
    assert CONFIG_ERRORS_DAG_ID in subject and "report_config_errors" in subject
    for text in (f"DAG:       {CONFIG_ERRORS_DAG_ID}", "Task:      report_config_errors", "Interval:",
                 "broken_link", "AirflowFailException"):
        assert text in message, (text, message)


def test_the_notifier_formats_and_fans_out_to_its_targets():
    from datetime import datetime, timezone
    from types import SimpleNamespace

    from airflow.sdk import DAG, BaseNotifier

    from leadboxer_pipedrive.notifications import LeadBoxerPipedriveFailureNotifier

    got = {}

    class Recorder(BaseNotifier):
        template_fields = ("text",)

        def __init__(self):
            super().__init__()
            self.text = "{{ lbpd_alert }}"

        def notify(self, context):
            got["notifier"] = self.text

    def broken(message, context):
        raise RuntimeError("target down")

    notifier = LeadBoxerPipedriveFailureNotifier(notifiers=[Recorder()], callbacks=[
        broken, lambda message, context: got.setdefault("callback", message)])
    context = {
        "dag": DAG("d", schedule=None), "task": SimpleNamespace(task_id="load"), "run_id": "manual__1",
        "ti": SimpleNamespace(try_number=2, max_tries=3, task_id="load", dag_id="d"),
        "data_interval_start": datetime(2026, 11, 20, 5, tzinfo=timezone.utc),
        "data_interval_end": datetime(2026, 11, 20, 6, tzinfo=timezone.utc),
        "exception": ValueError("boom"), "params": {"dataset_id": "x", "segment_id": 1},
    }
    notifier(context)  # a broken target is logged, never raised
    assert got["callback"] == got["notifier"]
    message = got["callback"]
    for text in ("DAG:       d", "Run:       manual__1", "Task:      load (try 2 of 4)",
                 "Interval:  [2026-11-20T05:00:00+00:00, 2026-11-20T06:00:00+00:00)", "ValueError: boom",
                 "dataset_id=x"):
        assert text in message, (text, message)
    assert json.dumps(message)


@pytest.mark.integration
def test_a_generated_integration_runs_and_stores_its_run_report(run_dag, connections):
    """The sandbox leads integration end to end: duration, and the validation report's link (the Airflow UI's
    page of the run) in the stored summary."""
    import sqlite3

    from leadboxer_pipedrive.operators.common import ValidationReportLink
    from leadboxer_pipedrive.plugin import report_path, report_url

    run = run_dag("leadboxer_pipedrive__sandbox_leads", "2026-11-20T06:00:00")
    assert run.state == "success"
    with sqlite3.connect(connections) as db:
        (dag_id, raw), = db.execute("SELECT dag_id, summary FROM lbpd_run").fetchall()
    summary = json.loads(raw)
    assert dag_id == "leadboxer_pipedrive__sandbox_leads"
    assert summary["extracted"] == summary["pushed"] + summary["already_pushed"] + summary["rejected"]
    assert summary["duration_seconds"] >= 0 and summary["run_duration_seconds"] >= summary["duration_seconds"]
    assert set(summary["task_durations"]) == {"extract", "validate", "transform", "load"}
    for key in ("tokens_spent", "rate_limited", "rejected_by_reason", "started_at", "finished_at"):
        assert key in summary, key
    assert summary["validation_report"] == report_url(dag_id, run.run_id)
    assert _stored_link(run, "validate", ValidationReportLink()) == summary["validation_report"]
    page = report_path(dag_id, run.run_id).read_text(encoding="utf-8")
    assert f"<dd>{run.run_id}</dd>" in page and "LeadBoxer leads of dataset" in page


def _stored_link(run, task_id: str, link) -> str | None:
    """The link the task stored for the UI's button (Airflow 3 keeps extra links as XCom)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        value = session.scalar(select(XComModel.value).where(
            XComModel.dag_id == run.dag_id, XComModel.run_id == run.run_id, XComModel.task_id == task_id,
            XComModel.key == link.xcom_key))
    return value


def test_the_alert_says_when_a_failure_is_not_retried():
    from types import SimpleNamespace

    from airflow.sdk.exceptions import AirflowFailException

    from leadboxer_pipedrive.exceptions import ApiAuthError
    from leadboxer_pipedrive.notifications import format_failure

    context = {"ti": SimpleNamespace(try_number=1, max_tries=2, task_id="preflight", dag_id="d"), "run_id": "r",
               "exception": ApiAuthError("Pipedrive", "GET", "/api/v1/users/me", 401, "unauthorized")}
    _, message = format_failure(context)
    assert "Task:      preflight (not retried: retrying cannot fix this)" in message and "try 1" not in message
    _, message = format_failure({**context, "exception": TimeoutError("slow")})
    assert "Task:      preflight (try 1 of 3)" in message
    assert isinstance(ApiAuthError("s", "m", "p", 1, "d"), AirflowFailException)
