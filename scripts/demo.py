"""`make demo`: one hour of LeadBoxer activity lands in the Pipedrive sandbox, through the real DAG.

Starts both sandboxes, migrates a fresh SQLite Airflow database, runs
``airflow dags test leadboxer_pipedrive_activities`` for [05:00, 06:00) on 2026-11-20 (the sandbox's
generated data), runs the same hour again to show that nothing is pushed twice, and prints a summary.
Exits non-zero if any invariant fails.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import requests

from scripts.sandboxes import running_sandboxes

ROOT = Path(__file__).resolve().parents[1]
DAG_ID = "leadboxer_pipedrive_activities"
RUN_DATE = "2026-11-20T06:00:00+00:00"  # a manual run's logical date is its interval's end
CONF = {"pipeline_id": 2}  # the sandbox's "LeadBoxer test pipeline": try a test pipeline first


def airflow(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).parent / "airflow"), *args], env=env, cwd=ROOT,
                          capture_output=True, text=True)


def main() -> int:
    home = ROOT / ".airflow" / "demo"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
           "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
           "PYTHONPATH": f"{ROOT / 'plugins'}:{ROOT}", "GX_ANALYTICS_ENABLED": "false"}
    print("Migrating a fresh SQLite Airflow database in", home, flush=True)
    migrated = airflow(env, "db", "migrate")
    if migrated.returncode:
        print(migrated.stdout[-3000:], migrated.stderr[-3000:])
        return 1
    with running_sandboxes() as sandboxes:
        env.update(sandboxes.connection_env())
        print(f"Pipedrive sandbox {sandboxes.pipedrive_url}, LeadBoxer sandbox {sandboxes.leadboxer_url}")
        summaries = []
        for attempt in ("first run", "same hour again"):
            print(f"\n== {attempt}: airflow dags test {DAG_ID} {RUN_DATE} -c '{json.dumps(CONF)}'", flush=True)
            ran = airflow(env, "dags", "test", DAG_ID, RUN_DATE, "-c", json.dumps(CONF))
            log_file = home / f"demo-{len(summaries) + 1}.log"
            log_file.write_text(ran.stdout + ran.stderr)
            if ran.returncode:
                print((ran.stdout + ran.stderr)[-6000:])
                print(f"FAILED: the DAG run exited {ran.returncode}; full log in {log_file}")
                return 1
            summary = latest_run_summary(home)
            summaries.append(summary)
            print_summary(summary)
        state = requests.get(f"{sandboxes.pipedrive_url}/_sandbox/state", timeout=10).json()
    return check_invariants(summaries, state)


def latest_run_summary(home: Path) -> dict:
    with sqlite3.connect(home / "leadboxer_pipedrive_ledger.sqlite") as db:
        row = db.execute("SELECT summary FROM lbpd_run ORDER BY finished_at DESC, rowid DESC LIMIT 1").fetchone()
    return json.loads(row[0])


def print_summary(summary: dict) -> None:
    print(f"  interval        [{summary['interval_start']}, {summary['interval_end']})")
    print(f"  extracted       {summary['extracted']} events of {summary['leads']} leads")
    print(f"  pushed          {summary['pushed']}")
    print(f"  already pushed  {summary['already_pushed']}")
    print(f"  rejected        {summary['rejected']}")
    for reason, count in summary["rejected_by_reason"].items():
        print(f"    - {count} x {reason}")
    loaded = {k: v for k, v in summary["loaded"].items() if k not in ("received", "pushed", "already_pushed")}
    print("  resolved        " + ", ".join(f"{k}={v}" for k, v in loaded.items()))
    print(f"  pipedrive       {summary['tokens_spent']} tokens, {summary['requests']} requests, "
          f"{summary['rate_limited']} answered 429")


def check_invariants(summaries: list[dict], state: dict) -> int:
    first, second = summaries
    emails = Counter(e.lower() for p in state["persons"] for e in _emails(p))
    checks = {
        "extracted = pushed + already pushed + rejected (each run)": all(
            s["extracted"] == s["pushed"] + s["already_pushed"] + s["rejected"] for s in summaries),
        "one activity per pushed event": len(state["activities"]) == first["pushed"],
        "the second run pushed nothing": second["pushed"] == 0 and second["already_pushed"] == first["pushed"],
        "at most one person per email": all(count == 1 for count in emails.values()),
        "every activity has a person": all(a.get("person_id") for a in state["activities"]),
    }
    print(f"\nPipedrive sandbox now holds {len(state['persons'])} persons, {len(state['organizations'])} "
          f"organizations, {len(state['deals'])} deals, {len(state['activities'])} activities.")
    for name, ok in checks.items():
        print(f"  [{'ok' if ok else 'FAILED'}] {name}")
    return 0 if all(checks.values()) else 1


def _emails(person: dict) -> list[str]:
    return [e["value"] if isinstance(e, dict) else e for e in person.get("emails") or []]


if __name__ == "__main__":
    sys.exit(main())
