"""Figure 6: the sync dashboard on a large ledger: a DAG with 10,000 runs and 100,000 rejected rows (and 2,000
rows in the retry queue), against the same requests on a small ledger (48 runs, 500 rejected rows), in the
same run, on SQLite and, where a server answers on 127.0.0.1:5432, on PostgreSQL.

Each request goes through the plugin's own FastAPI app (its routes, ledger hook and named queries; the
sign-in is taken as done, and Airflow's run states are given as the API server's database would). Timed:
the page as it opens, the page filtered by email, by reason and entity, the page of rejected rows 5,000 rows
down, and the runs and rejected-rows API calls: the median of ``--repeat`` requests each, after one warm-up.

Prints one JSON object on its last line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

from scripts.bench_common import use_plugins

DAG_ID = "leadboxer_pipedrive_activities"
DATASET = "bench-dataset"
REASONS = ("email: not a valid address", "event time outside the window", "lead id (use_id) missing",
           "duplicate event id", "Pipedrive refused the activity: subject too long",
           "Pipedrive refused the activity: person is merged", "visit without a page", "unknown event type")


def fill(ledger, runs: int, rejected: int, retries: int) -> dict:
    """The DAG's runs (one an hour up to now), its rejected rows spread over them, and its queued rows."""
    now = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    run_rows, rejected_rows = [], []
    for index in range(runs):
        end = now - timedelta(hours=index)
        run_id = f"scheduled__{end.isoformat()}"
        bad = rejected // runs + (1 if index < rejected % runs else 0)
        summary = {"dataset_id": DATASET, "entity": "event", "rejected_invalid": bad, "requests": 60,
                   "run_duration_seconds": 9.5, "rejected_by_reason": {REASONS[0]: bad}}
        run_rows.append({"dag_id": DAG_ID, "run_id": run_id, "interval_start": (end - timedelta(hours=1)).isoformat(),
                         "interval_end": end.isoformat(), "extracted": 40 + bad, "pushed": 40, "already_pushed": 0,
                         "rejected": bad, "tokens_spent": 600, "rate_limited": 0, "summary": json.dumps(summary),
                         "now": (end + timedelta(seconds=20)).isoformat(timespec="seconds")})
        for _ in range(bad):
            number = len(rejected_rows)
            rejected_rows.append({
                "dag_id": DAG_ID, "run_id": run_id, "entity": "lead" if number % 10 == 0 else "event",
                "record_id": f"e{number}", "use_id": f"u{number % 20_000}",
                "email": f"visitor{number % 5_000}@acme.example",
                "outcome": "invalid", "reason": REASONS[number % len(REASONS)], "record": None,
                "now": (end + timedelta(seconds=15)).isoformat(timespec="seconds")})
    ledger.write("upsert_run", run_rows)
    for start in range(0, len(rejected_rows), 10_000):
        ledger.write("insert_rejected_row", rejected_rows[start:start + 10_000])
    ledger.queue_retries([{"dataset_id": DATASET, "entity": "event", "record_id": f"e{index}",
                           "payload": json.dumps({"email": f"visitor{index}@acme.example"}), "attempts": 3,
                           "last_error": "Pipedrive refused the activity", "status":
                               "quarantined" if index % 10 == 0 else "pending"} for index in range(retries)])
    return {"runs": runs, "rejected_rows": len(rejected_rows), "retries": retries}


def requests_timed(conn_id: str, repeat: int) -> dict[str, float]:
    """Median seconds of each request against the ledger of ``conn_id``."""
    from fastapi.testclient import TestClient

    from leadboxer_pipedrive import plugin

    app = plugin.plugin_app()
    states = [{"run_id": f"r{index}", "state": "success", "end_date": None} for index in range(48)]
    app.dependency_overrides.update({
        plugin.can_read_dag_runs: lambda: None, plugin.may_edit_dag: lambda: True, plugin.airflow_runs: lambda: states,
        plugin.sync_dag: lambda dag_id: plugin.SyncDag(dag_id, conn_id, "bench_pipedrive")})
    client = TestClient(app)
    asked = {"page": (f"/dashboard/{DAG_ID}", {}),
             "page, by email": (f"/dashboard/{DAG_ID}", {"email": "visitor42@acme.example"}),
             "page, by reason and entity": (f"/dashboard/{DAG_ID}", {"reason": REASONS[3], "entity": "event"}),
             "page, 5,000 rows down": (f"/dashboard/{DAG_ID}", {"offset": 5_000}),
             "api runs": (f"/api/dags/{DAG_ID}/runs", {}),
             "api rejected, by email": (f"/api/dags/{DAG_ID}/rejected", {"email": "visitor42@acme.example"})}
    seconds = {}
    for name, (path, params) in asked.items():
        assert client.get(path, params=params).status_code == 200, (name, client.get(path, params=params).text[:500])
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            client.get(path, params=params)
            times.append(time.perf_counter() - started)
        seconds[name] = statistics.median(times)
    return seconds


@contextmanager
def ledger_connections(kind: str, folder: Path):
    """``AIRFLOW_CONN_*`` JSON of a large and a small ledger of ``kind`` (sqlite or postgres), or nothing when
    no PostgreSQL answers."""
    if kind == "sqlite":
        yield [{"conn_type": "sqlite", "host": str(folder / f"{size}.sqlite")} for size in ("large", "small")]
        return
    import psycopg2

    try:
        admin = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres", connect_timeout=3)
    except psycopg2.OperationalError:
        yield None
        return
    admin.autocommit = True
    names = [f"lbpd_bench_{size}_{uuid.uuid4().hex[:6]}" for size in ("large", "small")]
    with admin.cursor() as cursor:
        for name in names:
            cursor.execute(f"CREATE DATABASE {name}")
    try:
        yield [{"conn_type": "postgres", "host": "127.0.0.1", "port": 5432, "login": "postgres", "schema": name}
               for name in names]
    finally:
        with admin.cursor() as cursor:
            for name in names:
                cursor.execute(f"DROP DATABASE {name} WITH (FORCE)")
        admin.close()


def measure(kind: str, args, folder: Path) -> dict | None:
    from leadboxer_pipedrive.hooks.ledger import LedgerHook

    with ledger_connections(kind, folder) as connections:
        if connections is None:
            return None
        figures = {}
        for size, conn, (runs, rejected, retries) in zip(("large", "small"), connections, (
                (args.runs, args.rejected, args.retries), (48, 500, 20))):
            conn_id = f"bench_{kind}_{size}"
            os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(conn)
            ledger = LedgerHook(conn_id)
            started = time.perf_counter()
            filled = fill(ledger, runs, rejected, retries)
            filled["fill_seconds"] = round(time.perf_counter() - started, 1)
            figures[size] = {**filled, "seconds": requests_timed(conn_id, args.repeat)}
            ledger.get_conn().dispose()
        worst = max(figures["large"]["seconds"], key=figures["large"]["seconds"].get)
        figures["worst"] = worst
        figures["worst_seconds"] = figures["large"]["seconds"][worst]
        figures["reference_seconds"] = figures["small"]["seconds"][worst]
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--rejected", type=int, default=100_000)
    parser.add_argument("--retries", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    use_plugins()
    os.environ["AIRFLOW_CONN_BENCH_PIPEDRIVE"] = json.dumps({  # the budget is read from it; nothing is sent
        "conn_type": "pipedrive", "host": "http://127.0.0.1:9", "password": "t",
        "extra": {"daily_token_budget": 50_000}})
    with tempfile.TemporaryDirectory() as folder:
        results = {kind: measure(kind, args, Path(folder)) for kind in ("sqlite", "postgres")}
    print(json.dumps(results))


if __name__ == "__main__":
    main()
