"""The backfill of three past hours on real services: PostgreSQL as Airflow's metadata database and as
the ledger, the CeleryExecutor with a Redis broker, and a real ``airflow celery worker``.

The same scenario as tests/dags/test_backfill.py (which runs on SQLite with the LocalExecutor), with the
production-shaped components of docker-compose.yaml: a fresh metadata database and a fresh ledger
database (both dropped at the end), Celery results in the metadata database, and a Redis database number
of its own (flushed before and after). Processes: ``airflow db migrate``, an API server (execution API
only: the tasks' counterpart), ``airflow dags reserialize`` (instead of a dag-processor),
``airflow backfill create``, a scheduler and a Celery worker with two worker processes. Both sandboxes
run in threads of the test process. Progress is read from the metadata database with psycopg2.

Needs PostgreSQL on 127.0.0.1:5432 (trust auth, user postgres) and Redis on 127.0.0.1:6379; skipped
otherwise. Run it with ``make test-services``.
"""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from scripts.sandboxes import Sandboxes, free_port
from tests.support.airflow_stack import (
    DAG_ID,
    EXPECTED_INTERVALS,
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

psycopg2 = pytest.importorskip("psycopg2")

pytestmark = [pytest.mark.services, pytest.mark.integration]

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}


class Database:
    """One autocommit psycopg2 connection to a database of the test (every query sees the latest commits)."""

    def __init__(self, name: str):
        self.name = name
        self.connection = None

    def query(self, sql: str, *params) -> list[tuple]:
        if self.connection is None or self.connection.closed:
            self.connection = psycopg2.connect(dbname=self.name, connect_timeout=5, **PG)
            self.connection.autocommit = True
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()


def celery_results(meta: Database) -> Counter | None:
    """The Celery result backend's task states (its table exists once the first result is stored)."""
    if not meta.query("SELECT 1 FROM information_schema.tables WHERE table_name = 'celery_taskmeta'"):
        return None
    return Counter(dict(meta.query("SELECT status, count(*) FROM celery_taskmeta GROUP BY status")))


@pytest.mark.timeout(900)
def test_celery_backfill_on_postgres_syncs_exactly_those_hours(
        airflow_home, tmp_path, postgres_databases, redis_db, pipedrive_sandbox, leadboxer_sandbox):
    meta_name = postgres_databases("lbpd_meta")
    ledger_name = postgres_databases("lbpd_ledger")
    meta, ledger = Database(meta_name), Database(ledger_name)
    api_port = free_port()
    execution_api = f"http://127.0.0.1:{api_port}/execution/"
    env = backfill_env(
        airflow_home, tmp_path / "staging", Sandboxes(pipedrive_sandbox.url, leadboxer_sandbox.url).connection_env(),
        execution_api,
        {"conn_type": "postgres", "host": "127.0.0.1", "port": 5432, "login": "postgres", "schema": ledger_name},
        # The production shape of docker-compose.yaml: PostgreSQL metadata, Celery on Redis, results in
        # the metadata database.
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"postgresql+psycopg2://postgres@127.0.0.1:5432/{meta_name}",
        AIRFLOW__CORE__EXECUTOR="CeleryExecutor",
        AIRFLOW__CELERY__BROKER_URL=f"redis://127.0.0.1:6379/{redis_db}",
        AIRFLOW__CELERY__RESULT_BACKEND=f"db+postgresql://postgres@127.0.0.1:5432/{meta_name}",
    )
    airflow = Airflow(airflow_home, env, run_timeout=180, stop_grace=15)  # a warm Celery shutdown
    started = time.monotonic()
    timings: dict[str, float] = {}
    background = ThreadPoolExecutor(max_workers=1)

    def done(step: str) -> None:
        timings[step] = round(time.monotonic() - started, 1)

    try:
        airflow.run("db", "migrate")
        done("db migrate")
        airflow.start("api-server", "api-server", "--apps", "execution", "--workers", "1",
                      "--host", "127.0.0.1", "--port", str(api_port))
        api_ready = background.submit(wait_for, "the API server", lambda: api_healthy(execution_api), airflow,
                                      STARTUP_TIMEOUT)
        # The worker starts up meanwhile (tasks wait in Redis until it consumes them). No serve-logs
        # sub-process (it would listen on the fixed port 8793); no gossip or mingle with other workers.
        airflow.start("celery-worker", "celery", "worker", "--concurrency", "2", "--skip-serve-logs",
                      "--celery-hostname", f"lbpd-{meta_name}@%h", "--without-gossip", "--without-mingle")
        airflow.run("dags", "reserialize")
        done("dags reserialize")
        paused = meta.query("SELECT is_paused FROM dag WHERE dag_id = %s", DAG_ID)
        assert paused == [(False,)], f"the DAG should be known and active: {paused}"
        airflow.run("backfill", "create", "--dag-id", DAG_ID, "--from-date", FROM_DATE, "--to-date", TO_DATE)
        done("backfill create")
        api_ready.result()
        done("api-server healthy")
        airflow.start("scheduler", "scheduler", "--skip-serve-logs")
        runs = wait_for("the three backfill runs to finish", lambda: finished_runs(meta.query, "%s"), airflow,
                        RUNS_TIMEOUT, interval=1)
        done("runs finished")
        airflow.remember_descendants()

        # Every task ran through Celery: one successful result per task instance, in the metadata database.
        # (The task count comes from the database, so that the DAG's shape may change: four tasks today.)
        task_states = meta.query("SELECT state, count(*) FROM task_instance WHERE dag_id = %s GROUP BY state",
                                 DAG_ID)
        assert len(task_states) == 1 and task_states[0][0] == "success", task_states
        expected_tasks = task_states[0][1]
        assert expected_tasks >= 4 * len(EXPECTED_INTERVALS), task_states
        # (A task's result turns from STARTED to SUCCESS just after the task itself reported success.)
        results = wait_for("the Celery results", lambda: (r := celery_results(meta)) and sum(r.values()) >=
                           expected_tasks and not set(r) - {"SUCCESS", "FAILURE"} and r, airflow, 60)
        assert results == Counter({"SUCCESS": expected_tasks}), results

        # Two Celery worker processes run the backfill's hours concurrently; the ledger is PostgreSQL.
        ledger_runs = ledger.query(LEDGER_RUNS_SQL.format(p="%s"), DAG_ID)
        assert_the_three_hours_were_synced_exactly(runs, pipedrive_sandbox.url, leadboxer_sandbox.data, ledger_runs)
    except BaseException:
        print(airflow.logs())
        raise
    finally:
        airflow.stop()
        background.shutdown(wait=False, cancel_futures=True)
        meta.close()
        ledger.close()
        done("stopped")
        print("seconds since the start:", timings)
