"""`make airflow`: Airflow standalone on SQLite with our DAGs, the plugin and connections to fresh sandboxes.

Starts both sandboxes on free ports, migrates a fresh database in ``.airflow/home`` (the sandboxes start
empty, so the ledger does too; the login Airflow generated is kept), stores the ``pipedrive_default``
(with a daily token budget) and ``leadboxer_default`` connections in it (listed in the UI, which can test
them), syncs the demo's hours (the activity sync the three hours up to the demo's, the leads sync the
demo's), pauses every DAG, then runs ``airflow standalone``: UI on http://localhost:8080, the sync dashboard
under Plugins and on each sync DAG. The Pipedrive sandbox refuses the first two activity creates (a fault):
the dashboard shows them rejected in the first hour and delivered by the next. Ctrl-C stops Airflow, its
components and the sandboxes within seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from leadboxer_pipedrive.plugin import URL_PREFIX
from scripts.demo import AIRFLOW, RUN_DATE, RUNS, airflow, dags_test, latest_run_summary, print_summary
from scripts.sandboxes import Sandboxes, airflow_env, running_sandboxes

ROOT = Path(__file__).resolve().parents[1]
# The hours the activity sync has synced when the UI opens (logical dates: each interval's end), the demo's last.
ACTIVITY_HOURS = ("2026-11-20T04:00:00+00:00", "2026-11-20T05:00:00+00:00", RUN_DATE)
DAILY_TOKEN_BUDGET = 20_000  # on the Pipedrive connection: the dashboard's budget chart
# Pipedrive refuses the first two activity creates: rows the dashboard shows rejected, then delivered.
REFUSALS = {"kind": "status", "status": 400, "count": 2, "path": "^/api/v2/activities$", "method": "POST"}
PASSWORDS = "simple_auth_manager_passwords.json.generated"  # the login `airflow standalone` made
STOP_GRACE_SECONDS = 5


@dataclass
class RunningAirflow:
    url: str
    home: Path
    sandboxes: Sandboxes
    process: subprocess.Popen

    def login(self) -> tuple[str, str]:
        """The admin user and password `airflow standalone` generated."""
        ((user, password),) = json.loads((self.home / PASSWORDS).read_text()).items()
        return user, password


def fresh_home(home: Path) -> None:
    """An empty AIRFLOW_HOME, keeping only the generated login."""
    kept = (home / PASSWORDS).read_bytes() if (home / PASSWORDS).exists() else None
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    if kept is not None:
        (home / PASSWORDS).write_bytes(kept)


def checked(env: dict[str, str], *args: str) -> None:
    result = airflow(env, *args)
    if result.returncode:
        raise SystemExit(f"airflow {' '.join(args)} exited {result.returncode}:\n{result.stdout[-3000:]}"
                         f"\n{result.stderr[-3000:]}")


def store_connections(env: dict[str, str], sandboxes: Sandboxes) -> None:
    """The sandbox connections in the metadata database (replacing those of an earlier start)."""
    connections = sandboxes.connections()
    connections["pipedrive_default"]["extra"]["daily_token_budget"] = DAILY_TOKEN_BUDGET
    with tempfile.NamedTemporaryFile("w", suffix=".json") as file:
        json.dump(connections, file)
        file.flush()
        checked(env, "connections", "import", "--overwrite", file.name)


def sync_demo_hours(env: dict[str, str], home: Path) -> None:
    for dag_id, conf in RUNS:
        for run_date in ACTIVITY_HOURS if dag_id == "leadboxer_pipedrive_activities" else (RUN_DATE,):
            print(f"Syncing {dag_id} for the hour ending {run_date}", flush=True)
            log_file = home / f"{dag_id}-{run_date[11:13]}.log"
            if dags_test(env, dag_id, conf, log_file, run_date):
                raise SystemExit(f"{dag_id} failed; its log: {log_file}")
            summary = latest_run_summary(home, dag_id)
            print_summary(summary)
            print(f"  validation      {summary['validation_report']}")


def stop(process: subprocess.Popen) -> None:
    """Airflow standalone and every component it started (its process group): TERM, then KILL."""
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    signal_group(process, signal.SIGTERM)
    while time.monotonic() < deadline:
        process.poll()  # reaps the leader, so that only living components count
        if not signal_group(process, 0):
            return
        time.sleep(0.2)
    signal_group(process, signal.SIGKILL)
    process.wait()


def signal_group(process: subprocess.Popen, sig: int) -> bool:
    """Sends ``sig`` to the process group; false when none of it is left."""
    try:
        os.killpg(process.pid, sig)
        return True
    except ProcessLookupError:
        return False


@contextmanager
def running_airflow(home: Path, port: int = 8080, output=None) -> Iterator[RunningAirflow]:
    """Airflow standalone as described above, its output on ``output`` (a file; default: this console)."""
    fresh_home(home)
    url = f"http://localhost:{port}"
    env = {**airflow_env(home), "AIRFLOW__API__PORT": str(port), "AIRFLOW__API__BASE_URL": url,
           "AIRFLOW__CORE__TEST_CONNECTION": "Enabled", "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True"}
    with running_sandboxes(pipedrive_args=["--fault", json.dumps(REFUSALS)]) as sandboxes:
        print(f"Pipedrive sandbox {sandboxes.pipedrive_url} (state: {sandboxes.pipedrive_url}/_sandbox/state)")
        print(f"LeadBoxer sandbox {sandboxes.leadboxer_url}")
        print("Migrating a fresh SQLite Airflow database in", home, flush=True)
        checked(env, "db", "migrate")
        store_connections(env, sandboxes)
        sync_demo_hours(env, home)
        checked(env, "dags", "reserialize")
        checked(env, "dags", "pause", "--treat-dag-id-as-regex", "--yes", ".*")
        # Its own session: Ctrl-C reaches this script only, which stops the whole group in order.
        process = subprocess.Popen([AIRFLOW, "standalone"], env=env, cwd=ROOT, start_new_session=True,
                                   stdout=output, stderr=subprocess.STDOUT if output else None)
        try:
            yield RunningAirflow(url, home, sandboxes, process)
        finally:
            stop(process)


def interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main() -> int:
    home = Path(os.environ.get("AIRFLOW_HOME", ROOT / ".airflow" / "home"))
    # A closed terminal or a `kill` stops everything as Ctrl-C does.
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGHUP, interrupt)
    try:
        with running_airflow(home) as running:
            print(f"\nAirflow UI: {running.url} (the login is printed below and kept in {home / PASSWORDS}).\n"
                  "Connections pipedrive_default and leadboxer_default point at the sandboxes; the hours [03:00, "
                  "06:00) of 2026-11-20 are synced (the leads: [05:00, 06:00)). The sync dashboard: "
                  f"{running.url}{URL_PREFIX}/dashboard/ (Plugins menu, and a tab of each sync DAG). Every DAG "
                  f"is paused: trigger one with the logical date {RUN_DATE} to sync that hour again. Ctrl-C stops "
                  "everything.\n", flush=True)
            return running.process.wait()
    except KeyboardInterrupt:
        print("\nStopped Airflow and the sandboxes.")
        return 0


if __name__ == "__main__":
    sys.exit(main())
