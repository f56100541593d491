"""What the tests that run real Airflow components share (tests/dags/test_backfill.py on SQLite with
the LocalExecutor, tests/services/test_celery_postgres.py on PostgreSQL with Celery): the backfill
scenario, the expected events, and a small supervisor for Airflow processes."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import psutil
import requests

from leadboxer_pipedrive.transforms import event_ids_in_note
from sandbox.leadboxer import synced_events

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).parent / "airflow")
DAG_ID = "leadboxer_pipedrive_activities"
SEGMENT_ID = 14118

# The DAG's CronDataIntervalTimetable("0 * * * *") gives a backfill run the logical date of its
# interval's *start*, and --from-date/--to-date are both inclusive logical dates. So logical dates
# 02:00..04:00 are exactly the three runs [02:00, 03:00), [03:00, 04:00), [04:00, 05:00) on 2026-11-20
# (the sandbox's generated day).
FROM_DATE = "2026-11-20T02:00:00+00:00"
TO_DATE = "2026-11-20T04:00:00+00:00"
EXPECTED_INTERVALS = [
    (datetime(2026, 11, 20, hour, tzinfo=timezone.utc), datetime(2026, 11, 20, hour + 1, tzinfo=timezone.utc))
    for hour in (2, 3, 4)
]

RUNS_TIMEOUT = 360  # seconds for the three runs to finish
STARTUP_TIMEOUT = 120


def expected_events(data: dict, start: datetime, end: datetime) -> set[str]:
    """From the sandbox's own dataset: ids of the events the sync of ``[start, end)`` must push."""
    return {event["event_id"] for _, event in
            synced_events(data, int(start.timestamp() * 1000), int(end.timestamp() * 1000), SEGMENT_ID)}


def finished_runs(query, placeholder: str) -> list[tuple] | None:
    """The DAG's runs once all of them have finished (None while any is unfinished). Fails fast when a
    task fails or waits for a retry: the DAG retries after 30 s, which the tests should not wait for.
    ``query(sql, *params)`` reads the metadata database; ``placeholder`` is its driver's (``?``, ``%s``)."""
    troubled = query(f"SELECT run_id, task_id, state FROM task_instance WHERE dag_id = {placeholder} AND state IN "
                     "('failed', 'up_for_retry', 'upstream_failed', 'up_for_reschedule')",
                     DAG_ID)
    assert not troubled, f"task instances in trouble: {troubled}"
    runs = query("SELECT run_id, run_type, state, data_interval_start, data_interval_end FROM dag_run "
                 f"WHERE dag_id = {placeholder} ORDER BY data_interval_start", DAG_ID)
    if len(runs) < len(EXPECTED_INTERVALS) or any(state not in ("success", "failed") for _, _, state, _, _ in runs):
        return None
    return runs


def assert_the_three_hours_were_synced_exactly(runs: list[tuple], pipedrive_url: str, data: dict,
                                               ledger_runs: list[tuple]) -> None:
    """The backfill scenario's outcome: exactly the three backfill runs, successful; Pipedrive holds one
    activity per event of the three hours and nothing else, and one person per email although the
    hours ran concurrently; the ledger holds one run per hour, each accounting for every extracted
    event. ``ledger_runs``: the ledger's (interval_start, interval_end, extracted, pushed,
    already_pushed, rejected) rows of the DAG, in interval order."""
    assert [(run_type, state) for _, run_type, state, _, _ in runs] == [("backfill", "success")] * 3, runs
    assert [(utc(start), utc(end)) for *_, start, end in runs] == EXPECTED_INTERVALS

    window = (EXPECTED_INTERVALS[0][0], EXPECTED_INTERVALS[-1][1])
    expected = expected_events(data, *window)
    assert expected, "the generated hours should hold events"
    outside = (expected_events(data, datetime(2000, 1, 1, tzinfo=timezone.utc), window[0])
               | expected_events(data, window[1], datetime(2100, 1, 1, tzinfo=timezone.utc)))
    assert outside, "the generated day should hold events outside the three hours too"
    state = requests.get(f"{pipedrive_url}/_sandbox/state", timeout=10).json()
    synced = Counter()
    for activity in state["activities"]:
        marker = event_ids_in_note(activity.get("note"))
        assert marker, f"activity without a LeadBoxer event marker: {activity}"
        synced[marker[0]] += 1
    assert not set(synced) & outside, "events outside the three hours were synced"
    assert set(synced) == expected
    assert all(count == 1 for count in synced.values()), [e for e, n in synced.items() if n > 1]
    assert len(state["activities"]) == len(expected)
    emails = Counter((e["value"] if isinstance(e, dict) else e).lower()
                     for person in state["persons"] for e in person.get("emails") or [])
    assert all(count == 1 for count in emails.values()), [e for e, n in emails.items() if n > 1]

    assert [(utc(start), utc(end)) for start, end, *_ in ledger_runs] == EXPECTED_INTERVALS, ledger_runs
    for start, end, extracted, pushed, already_pushed, rejected in ledger_runs:
        assert extracted == pushed + already_pushed + rejected, (start, end)
        assert pushed == len(expected_events(data, utc(start), utc(end))), (start, end)


# The ledger's runs of the DAG, as assert_the_three_hours_were_synced_exactly reads them ({p}: placeholder).
LEDGER_RUNS_SQL = ("SELECT interval_start, interval_end, extracted, pushed, already_pushed, rejected "
                   "FROM lbpd_run WHERE dag_id = {p} ORDER BY interval_start")


def utc(value: str | datetime) -> datetime:
    """A timestamptz of the metadata database, or an ISO string of the ledger (naive means UTC)."""
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)


def tail(path: Path, chars: int = 4000) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<{exc}>"
    return text[-chars:]


def task_log_problems(path: Path) -> str:
    """A task log's warnings and errors with their exceptions (the log is JSON lines), else its tail."""
    lines = []
    try:
        for line in path.read_text(errors="replace").splitlines():
            record = json.loads(line)
            if record.get("level") not in ("warning", "error", "critical"):
                continue
            lines.append(f"{record.get('timestamp')} {record['level']}: {record.get('event')}")
            lines += [f"    {e.get('exc_type')}: {e.get('exc_value')}" for e in record.get("error_detail") or []]
    except (OSError, ValueError, AttributeError, KeyError):
        return tail(path, 2500)
    return "\n".join(lines)[-4000:] or tail(path, 1000)


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)  # start_new_session=True: the pgid is the component's pid
    except (ProcessLookupError, PermissionError):
        pass


class Airflow:
    """Runs Airflow commands and long-lived components in one AIRFLOW_HOME, each component in its own
    process group (executor workers and task processes included), logging to files."""

    def __init__(self, home: Path, env: dict[str, str], *, run_timeout: float = 120, stop_grace: float = 10):
        self.home = home
        self.env = env
        self.run_timeout = run_timeout
        self.stop_grace = stop_grace  # seconds a component may take to stop after SIGTERM
        self.components: dict[str, subprocess.Popen] = {}
        self.descendants: dict[str, set[psutil.Process]] = {}

    def run(self, *args: str) -> subprocess.CompletedProcess:
        done = subprocess.run([AIRFLOW, *args], env=self.env, cwd=ROOT, capture_output=True, text=True,
                              timeout=self.run_timeout)
        assert done.returncode == 0, (f"airflow {' '.join(args)} exited {done.returncode}\n"
                                      f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        return done

    def start(self, name: str, *args: str) -> subprocess.Popen:
        log = (self.home / f"{name}.log").open("wb")
        try:
            process = subprocess.Popen([AIRFLOW, *args], env=self.env, cwd=ROOT, stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            log.close()
        self.components[name] = process
        return process

    def check_alive(self) -> None:
        for name, process in self.components.items():
            if process.poll() is not None:
                raise AssertionError(f"airflow {name} exited with {process.returncode}")

    def remember_descendants(self) -> None:
        """Note every child process now, so the ones that leave the process group are ended too."""
        for name, process in self.components.items():
            try:
                self.descendants.setdefault(name, set()).update(psutil.Process(process.pid).children(True))
            except psutil.NoSuchProcess:
                pass

    def stop(self) -> None:
        self.remember_descendants()
        for process in self.components.values():
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_grace
        for process in self.components.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for name, process in self.components.items():
            _signal_group(process, signal.SIGKILL)
            if process.poll() is None:
                process.wait(10)
            for child in self.descendants.get(name, ()):
                try:
                    child.kill()
                except psutil.NoSuchProcess:
                    pass

    def logs(self) -> str:
        parts = [f"===== airflow {name} (exit {process.poll()}) =====\n{tail(self.home / f'{name}.log')}"
                 for name, process in self.components.items()]
        task_logs = sorted((self.home / "logs").glob("**/*.log"), key=lambda p: p.stat().st_mtime)
        parts += [f"===== task log {path.relative_to(self.home)} =====\n{task_log_problems(path)}"
                  for path in task_logs[-6:]]
        return "\n".join(parts)


def wait_for(what: str, predicate, airflow: Airflow, timeout: float, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        airflow.check_alive()
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def api_healthy(url: str) -> bool:
    try:
        return requests.get(f"{url}health", timeout=5).status_code == 200
    except requests.RequestException:
        return False


def backfill_env(airflow_home: Path, staging: Path, connection_env: dict[str, str], execution_api: str,
                 ledger_conn: dict, **overrides: str) -> dict[str, str]:
    """The environment of every Airflow process of a backfill test: this project's DAGs and plugins, a
    lean scheduler, the sandboxes' connections, a ledger and a staging folder of the test's own.
    ``overrides`` set the executor and metadata database (SQLite + LocalExecutor by default)."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_", "AIRFLOW__"))},
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "PYTHONPATH": f"{ROOT / 'plugins'}:{ROOT}",
        "GX_ANALYTICS_ENABLED": "false",
        "PYTHONUNBUFFERED": "1",
        # SQLite + LocalExecutor (what `airflow standalone` uses) unless overridden; tasks reach the API server.
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": execution_api,
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        # Two CPUs: two task processes at a time is all the machine can usefully run.
        "AIRFLOW__CORE__PARALLELISM": "2",
        # The DAG is active as soon as it is serialized, and the scheduler makes no scheduled runs of its
        # own (with catchup=False it would add one for the latest hour): only the backfill's runs exist.
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        # A snappier scheduler loop; tasks report back through the API server.
        "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.25",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
        # The DAG's connections and storage.
        **connection_env,
        "AIRFLOW_CONN_LEADBOXER_PIPEDRIVE_LEDGER": json.dumps(ledger_conn),
        "LEADBOXER_PIPEDRIVE_STAGING_URL": f"file://{staging}",
        **overrides,
    }
