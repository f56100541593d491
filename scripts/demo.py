"""`make demo`: one hour of LeadBoxer data lands in the Pipedrive sandbox, through the real DAGs.

Starts both sandboxes, migrates a fresh SQLite Airflow database, then runs
``airflow dags test`` for [05:00, 06:00) on 2026-11-20 (the sandbox's generated day) for the activity
sync and the leads sync, each twice to show that the second run creates nothing. The leads sync's first
run is its first for the segment, so it pushes every member of the segment (a whole-segment run); the
second reads the hour. It shows each task as it
finishes, then the run's summary (what every Pipedrive token went on), where its log and validation report
are, and at the end checks the invariants. Exits non-zero if any fails.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path

import requests

from leadboxer_pipedrive.plugin import report_path
from sandbox.pipedrive.seeds import field_code
from scripts.sandboxes import airflow_env, running_sandboxes

ROOT = Path(__file__).resolve().parents[1]
RUN_DATE = "2026-11-20T06:00:00+00:00"  # a manual run's logical date is its interval's end
RUNS = [
    # The sandbox's "LeadBoxer test pipeline": try a test pipeline first.
    # Deals and persons carry LeadBoxer facts in fields of their own (the sandbox's seeded custom fields).
    ("leadboxer_pipedrive_activities", {"pipeline_id": 2, "custom_fields": {
        "deal": {"lead_score": "LeadBoxer lead score", "last_visit": "LeadBoxer last visit"},
        "person": {"first_channel": "LeadBoxer first channel"}}}),
    ("leadboxer_pipedrive_leads", {"link_to": "both",
                                   "custom_fields": {"lead_score": "LeadBoxer lead score",
                                                     "leadcard_url": "LeadBoxer lead card"}}),
]


AIRFLOW = str(Path(sys.executable).parent / "airflow")
_TASK = re.compile(r"^(\S+) .*\[DAG TEST\] (starting|end task) task_id=(\w+)")


def airflow(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([AIRFLOW, *args], env=env, cwd=ROOT, capture_output=True, text=True)


def dags_test(env: dict[str, str], dag_id: str, conf: dict, log_file: Path, run_date: str = RUN_DATE) -> int:
    """``airflow dags test`` of the hour ending at ``run_date``, its output in ``log_file``; each task shown as
    it ends."""
    started: dict[str, datetime] = {}
    with log_file.open("w") as log, subprocess.Popen(
            [AIRFLOW, "dags", "test", dag_id, run_date, "-c", json.dumps(conf)], env={**env, "PYTHONUNBUFFERED": "1"},
            cwd=ROOT, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as process:
        for line in iter(process.stdout.readline, ""):  # each line as it comes
            log.write(line)
            if found := _TASK.search(line):
                stamp, moment, task = found.groups()
                at = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
                if moment == "starting":
                    started[task] = at
                else:
                    print(f"  {task:<10} done in {(at - started.get(task, at)).total_seconds():.1f} s", flush=True)
        return process.wait()


def main() -> int:
    home = ROOT / ".airflow" / "demo"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    env = airflow_env(home)
    print("Migrating a fresh SQLite Airflow database in", home, flush=True)
    migrated = airflow(env, "db", "migrate")
    if migrated.returncode:
        print(migrated.stdout[-3000:], migrated.stderr[-3000:])
        return 1
    with running_sandboxes() as sandboxes:
        env.update(sandboxes.connection_env())
        print(f"Pipedrive sandbox {sandboxes.pipedrive_url}, LeadBoxer sandbox {sandboxes.leadboxer_url}")
        crm = seed_crm_persons(sandboxes)
        summaries: dict[str, list[dict]] = {}
        for dag_id, conf in RUNS:
            for attempt in ("first run", "same hour again"):
                print(f"\n== {dag_id}, {attempt}: airflow dags test {dag_id} {RUN_DATE} -c '{json.dumps(conf)}'",
                      flush=True)
                log_file = home / f"{dag_id}-{len(summaries.get(dag_id, [])) + 1}.log"
                returncode = dags_test(env, dag_id, conf, log_file)
                if returncode:
                    print(log_file.read_text()[-6000:])
                    print(f"FAILED: the DAG run exited {returncode}; full log in {log_file}")
                    return 1
                summary = latest_run_summary(home, dag_id)
                summaries.setdefault(dag_id, []).append(summary)
                print_summary(summary)
                report = report_path(dag_id, summary["run_id"], env["LEADBOXER_PIPEDRIVE_STAGING_URL"])
                print(f"  report file     {report.path}")
                print(f"  log             {log_file}")
        state = requests.get(f"{sandboxes.pipedrive_url}/_sandbox/state", timeout=10).json()
    return check_invariants(summaries, state, crm)


TYPED_NAME = "Typed in the CRM"


def seed_crm_persons(sandboxes) -> tuple[str, str]:
    """Two persons of the demo hour's leads as a CRM already holds them: one named only by its email, whose
    name the sync fills in, and one named ``TYPED_NAME`` by someone, which it keeps. Their emails."""
    from sandbox.leadboxer.generator import DEFAULT_SITE, DEFAULT_START, generate_dataset, synced_events

    data = generate_dataset(seed=7, leads=200, start=DEFAULT_START, hours=24, site=DEFAULT_SITE)  # as served
    end = int(datetime.fromisoformat(RUN_DATE).timestamp() * 1000)
    named = sorted({lead["email"] for lead, _ in synced_events(data, end - 3_600_000, end) if lead.get("fullName")})
    token = sandboxes.connections()["pipedrive_default"]["password"]
    for email, name in ((named[0], named[0]), (named[1], TYPED_NAME)):
        requests.post(f"{sandboxes.pipedrive_url}/api/v2/persons", headers={"x-api-token": token}, timeout=10,
                      json={"name": name, "emails": [{"value": email, "primary": True}]}).raise_for_status()
        print(f"Pipedrive already holds {email}, named {name!r}")
    return named[0], named[1]


def latest_run_summary(home: Path, dag_id: str) -> dict:
    """The summary the DAG's latest run left in the ledger, with its dag_id and run_id."""
    with sqlite3.connect(home / "leadboxer_pipedrive_ledger.sqlite") as db:
        run_id, summary = db.execute("SELECT run_id, summary FROM lbpd_run WHERE dag_id = ? ORDER BY rowid DESC "
                                     "LIMIT 1", (dag_id,)).fetchone()
    return {**json.loads(summary), "dag_id": dag_id, "run_id": run_id}


def print_summary(summary: dict) -> None:
    """The run summary as the load task logs it."""
    from leadboxer_pipedrive.operators.common import format_summary

    for line in format_summary(summary).splitlines():
        print(f"  {line}")


def check_invariants(summaries: dict[str, list[dict]], state: dict, crm: tuple[str, str]) -> int:
    activities_first, activities_second = summaries["leadboxer_pipedrive_activities"]
    leads_first, leads_second = summaries["leadboxer_pipedrive_leads"]
    everything = [s for runs in summaries.values() for s in runs]
    emails = Counter(e.lower() for p in state["persons"] for e in _emails(p))
    origins = Counter(lead.get("origin_id") for lead in state["leads"])
    checks = {
        "extracted = pushed + already pushed + rejected + deferred (each run)": all(
            s["extracted"] == s["pushed"] + s["already_pushed"] + s["rejected"] + s.get("deferred", 0)
            for s in everything),
        "one activity per pushed event": len(state["activities"]) == activities_first["pushed"],
        "one Pipedrive lead per pushed LeadBoxer lead": len(state["leads"]) == leads_first["pushed"]
        and all(count == 1 for count in origins.values()),
        "every lead linked to a person or an organization": all(
            lead.get("person_id") or lead.get("organization_id") for lead in state["leads"]),
        "second runs created nothing": activities_second["pushed"] == 0 and leads_second["pushed"] == 0,
        "at most one person per email": all(count == 1 for count in emails.values()),
        "every activity has a person": all(a.get("person_id") for a in state["activities"]),
        "a person named only by its email got its name; a name someone typed was kept":
            _name_of(state, crm[0]) != crm[0] and _name_of(state, crm[1]) == TYPED_NAME,
        "second runs updated nothing": not any(key.endswith("s_updated") for key in activities_second["loaded"]),
        "the first leads run pushed the whole segment, the second read the hour": (
            leads_first["scope"], leads_second["scope"]) == ("segment", "hour")
        and leads_first.get("segment_progress", "").endswith("; complete"),
        "every deal holds its lead's score and last visit (mapped fields)": bool(state["deals"]) and all(
            {field_code("LeadBoxer lead score"), field_code("LeadBoxer last visit")} <= set(deal["custom_fields"])
            for deal in state["deals"]),
    }
    linked = Counter("person and organization" if lead.get("person_id") and lead.get("organization_id")
                     else "person only" if lead.get("person_id") else "organization only"
                     for lead in state["leads"])
    print(f"\nPipedrive sandbox now holds {len(state['persons'])} persons, {len(state['organizations'])} "
          f"organizations, {len(state['deals'])} deals, {len(state['activities'])} activities, "
          f"{len(state['leads'])} leads ({', '.join(f'{n} linked to {k}' for k, n in linked.items())}).")
    for name, ok in checks.items():
        print(f"  [{'ok' if ok else 'FAILED'}] {name}")
    return 0 if all(checks.values()) else 1


def _name_of(state: dict, email: str) -> str:
    return next(p["name"] for p in state["persons"] if email in _emails(p))


def _emails(person: dict) -> list[str]:
    return [e["value"] if isinstance(e, dict) else e for e in person.get("emails") or []]


if __name__ == "__main__":
    sys.exit(main())
