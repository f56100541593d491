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

import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from functools import partial
from pathlib import Path

import pytest

from scripts.sandboxes import Sandboxes, free_port
from tests.support.airflow_stack import (
    DAG_ID,
    FROM_DATE,
    LEDGER_RUNS_SQL,
    RUNS_TIMEOUT,
    STARTUP_TIMEOUT,
    TO_DATE,
    Airflow,
    api_healthy,
    assert_the_three_hours_were_synced_exactly,
    backfill_env,
    finished_runs,
    wait_for,
)

pytestmark = pytest.mark.integration

def metadata(home: Path, query: str, *params) -> list[tuple]:
    with closing(sqlite3.connect(f"file:{home / 'airflow.db'}?mode=ro", uri=True, timeout=10)) as db:
        return db.execute(query, params).fetchall()


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
        runs = wait_for("the three backfill runs to finish",
                        lambda: finished_runs(partial(metadata, airflow_home), "?"), airflow, RUNS_TIMEOUT, interval=1)
        done("runs finished")
        airflow.remember_descendants()

        # The backfill runs its hours concurrently (its own max_active_runs, default 10, not the DAG's 1).
        with closing(sqlite3.connect(ledger)) as db:
            ledger_runs = db.execute(LEDGER_RUNS_SQL.format(p="?"), (DAG_ID,)).fetchall()
        assert_the_three_hours_were_synced_exactly(runs, pipedrive_sandbox.url, leadboxer_sandbox.data, ledger_runs)
    except BaseException:
        print(airflow.logs())
        raise
    finally:
        airflow.stop()
        background.shutdown(wait=False, cancel_futures=True)
        done("stopped")
        print("seconds since the start:", timings)
