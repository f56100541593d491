"""`airflow backfill create` over three past hours syncs exactly those three hours.

Unlike the dag.test() tests, this one runs the real thing: a fresh SQLite Airflow (``airflow db
migrate``), an API server (execution API only: tasks talk to it) and a scheduler with the
LocalExecutor, as subprocesses, and the real ``airflow backfill create`` CLI. The DAG is serialized
once with ``airflow dags reserialize`` instead of running a dag-processor (nothing changes the DAG
file during the test, and one process less matters on a 2-core CI machine); no triggerer is needed
(no deferrable task). The scheduler starts last, once the runs exist and the API server answers (see
below). Both sandboxes run in threads of the test process. Progress is read from the
metadata database (SQLite, read-only), which is cheaper than one ``airflow dags list-runs`` per poll.
"""

from __future__ import annotations

import html
import sqlite3
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path

import pytest
import requests

from scripts.sandboxes import Sandboxes, free_port
from tests.support.airflow_stack import (
    DAG_ID,
    EVENT_MARKER,
    EXPECTED_INTERVALS,
    FROM_DATE,
    RUNS_TIMEOUT,
    STARTUP_TIMEOUT,
    TO_DATE,
    Airflow,
    api_healthy,
    backfill_env,
    expected_events,
    utc,
    wait_for,
)

pytestmark = pytest.mark.integration

def metadata(home: Path, query: str, *params) -> list[tuple]:
    with closing(sqlite3.connect(f"file:{home / 'airflow.db'}?mode=ro", uri=True, timeout=10)) as db:
        return db.execute(query, params).fetchall()


def finished_runs(home: Path) -> list[tuple] | None:
    """The DAG's runs once all of them have finished (None while any is unfinished). Fails fast when a
    task fails or waits for a retry: the DAG retries after 30 s, which this test should not wait for."""
    troubled = metadata(home, "SELECT run_id, task_id, state FROM task_instance WHERE dag_id = ? AND state IN "
                              "('failed', 'up_for_retry', 'upstream_failed', 'up_for_reschedule')", DAG_ID)
    assert not troubled, f"task instances in trouble: {troubled}"
    runs = metadata(home, "SELECT run_id, run_type, state, data_interval_start, data_interval_end FROM dag_run "
                          "WHERE dag_id = ? ORDER BY data_interval_start", DAG_ID)
    if len(runs) < len(EXPECTED_INTERVALS) or any(state not in ("success", "failed") for _, _, state, _, _ in runs):
        return None
    return runs


@pytest.fixture
def airflow_home(tmp_path):
    home = tmp_path / "airflow"
    home.mkdir()
    return home


def test_backfill_of_three_past_hours_syncs_exactly_those_hours(
        airflow_home, tmp_path, pipedrive_sandbox, leadboxer_sandbox):
    api_port = free_port()
    execution_api = f"http://127.0.0.1:{api_port}/execution/"
    ledger = tmp_path / "ledger.sqlite"
    env = backfill_env(airflow_home, tmp_path / "staging",
                       Sandboxes(pipedrive_sandbox.url, leadboxer_sandbox.url).connection_env(), execution_api,
                       {"conn_type": "sqlite", "host": str(ledger)})
    airflow = Airflow(airflow_home, env)
    started = time.monotonic()
    timings: dict[str, float] = {}
    background = ThreadPoolExecutor(max_workers=1)

    def done(step: str) -> None:
        timings[step] = round(time.monotonic() - started, 1)

    try:
        airflow.run("db", "migrate")
        done("db migrate")
        # Only the execution API: the tasks' only counterpart. One worker is plenty.
        airflow.start("api-server", "api-server", "--apps", "execution", "--workers", "1",
                      "--host", "127.0.0.1", "--port", str(api_port))
        # Its first answer takes seconds (the app initialises lazily): wait for it in the background.
        api_ready = background.submit(wait_for, "the API server", lambda: api_healthy(execution_api), airflow,
                                      STARTUP_TIMEOUT)
        airflow.run("dags", "reserialize")  # meanwhile the API server starts up
        done("dags reserialize")
        paused = metadata(airflow_home, "SELECT is_paused FROM dag WHERE dag_id = ?", DAG_ID)
        assert paused == [(0,)], f"the DAG should be known and active: {paused}"
        airflow.run("backfill", "create", "--dag-id", DAG_ID, "--from-date", FROM_DATE, "--to-date", TO_DATE)
        done("backfill create")
        # The scheduler starts only now: on SQLite, a scheduler writing while `backfill create` inserts its
        # runs makes the CLI fail with "database is locked" (seen, with the runs half created). And only
        # once the API server answers, so that no task starts before it can reach the execution API.
        api_ready.result()
        done("api-server healthy")
        # No serve-logs sub-process: it would listen on the fixed port 8793.
        airflow.start("scheduler", "scheduler", "--skip-serve-logs")
        runs = wait_for("the three backfill runs to finish", lambda: finished_runs(airflow_home), airflow,
                        RUNS_TIMEOUT, interval=1)
        done("runs finished")
        airflow.remember_descendants()

        # Exactly the three runs, backfill runs, successful, on the three hours.
        assert [(run_type, state) for _, run_type, state, _, _ in runs] == [("backfill", "success")] * 3, runs
        assert [(utc(start), utc(end)) for *_, start, end in runs] == EXPECTED_INTERVALS

        # Pipedrive holds one activity per event of the three hours, and nothing else.
        data = leadboxer_sandbox.data
        window = (EXPECTED_INTERVALS[0][0], EXPECTED_INTERVALS[-1][1])
        expected = expected_events(data, *window)
        assert expected, "the generated hours should hold events"
        outside = (set(expected_events(data, datetime(2000, 1, 1, tzinfo=timezone.utc), window[0]))
                   | set(expected_events(data, window[1], datetime(2100, 1, 1, tzinfo=timezone.utc))))
        assert outside, "the generated day should hold events outside the three hours too"
        state = requests.get(f"{pipedrive_sandbox.url}/_sandbox/state", timeout=10).json()
        synced = Counter()
        for activity in state["activities"]:
            marker = EVENT_MARKER.search(activity.get("note") or "")
            assert marker, f"activity without a LeadBoxer event marker: {activity}"
            synced[html.unescape(marker.group(1))] += 1
        assert not set(synced) & outside, "events outside the three hours were synced"
        assert set(synced) == set(expected)
        assert all(count == 1 for count in synced.values()), [e for e, n in synced.items() if n > 1]
        assert len(state["activities"]) == len(expected)
        # The backfill runs its hours concurrently (its own max_active_runs, default 10, not the DAG's 1):
        # still one person per email.
        emails = Counter((e["value"] if isinstance(e, dict) else e).lower()
                         for person in state["persons"] for e in person.get("emails") or [])
        assert all(count == 1 for count in emails.values()), [e for e, n in emails.items() if n > 1]

        # The ledger holds one run per hour, each accounting for every extracted event.
        with closing(sqlite3.connect(ledger)) as db:
            rows = db.execute("SELECT interval_start, interval_end, extracted, pushed, already_pushed, rejected "
                              "FROM lbpd_run WHERE dag_id = ? ORDER BY interval_start", (DAG_ID,)).fetchall()
        assert [(utc(start), utc(end)) for start, end, *_ in rows] == EXPECTED_INTERVALS
        for start, end, extracted, pushed, already_pushed, rejected in rows:
            assert extracted == pushed + already_pushed + rejected, (start, end)
            assert pushed == len(expected_events(data, utc(start), utc(end))), (start, end)
    except BaseException:
        print(airflow.logs())
        raise
    finally:
        airflow.stop()
        background.shutdown(wait=False, cancel_futures=True)
        done("stopped")
        print("seconds since the start:", timings)
