"""`make chaos`: the syncs under faults, overlapping runs and a killed task, at scale.

Both sandboxes run in this process; every sync try is its own process (the same library code the
operators run: extract → validate → transform → load), so one can be killed with SIGKILL mid-load. A
supervisor plays Airflow's part: a failed or killed try is retried (same run, next try number) up to
``--tries`` times. Each hour gets a "live" activity-sync run and, for every other hour, an overlapping
"backfill" run of the same hour. Among them, a whole-segment leads-sync run (the first
``--segment-members`` members) overlaps hourly leads-sync runs of the first hours. The Pipedrive sandbox
injects 5xx, 429 bursts, dropped connections and slow answers (past the client's timeout) throughout. At
the end it prints the invariants: duplicates per entity (must be 0), valid events and segment members
lost (must be 0), every record accounted for in every run (extracted = pushed + already pushed + rejected
+ deferred). The activity syncs find records through the account index (the default) where cheaper.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START = datetime(2026, 11, 20, tzinfo=timezone.utc)
DATASET_ID = "07bacbd9d46a4e26b58b15d69f69250f"
LEADS_SEGMENT_ID = "14119"  # "Top leads"
LEADS_ARGS = ["--sync", "leads", "--segment-id", LEADS_SEGMENT_ID]
FAULTS = [
    {"kind": "status", "status": 503, "probability": 0.04},
    {"kind": "status", "status": 500, "probability": 0.02},
    {"kind": "status", "status": 429, "probability": 0.04},
    {"kind": "drop", "probability": 0.02},
    {"kind": "slow", "delay": 1.3, "probability": 0.01},
]


def run(args: argparse.Namespace) -> dict:
    sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]
    import requests

    from sandbox.leadboxer import LeadBoxerSandbox
    from sandbox.pipedrive import PipedriveSandbox

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="lbpd-chaos-"))
    workdir.mkdir(parents=True, exist_ok=True)
    ledger = workdir / "ledger.sqlite"
    with PipedriveSandbox(burst_limit=100, search_lag=args.search_lag) as pipedrive, \
            LeadBoxerSandbox(leads=args.leads, hours=24, seed=args.seed) as leadboxer:
        for fault in FAULTS:
            pipedrive.add_fault(fault)
        env = {**os.environ, "PYTHONPATH": f"{ROOT / 'plugins'}:{ROOT}", "AIRFLOW_HOME": str(workdir),
               "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
               "AIRFLOW_CONN_PIPEDRIVE_DEFAULT": json.dumps({
                   "conn_type": "pipedrive", "host": pipedrive.url, "password": "sandbox-token",
                   "extra": {"burst_limit": 100, "timeout": 1.0}}),
               "AIRFLOW_CONN_LEADBOXER_DEFAULT": json.dumps({
                   "conn_type": "leadboxer", "host": leadboxer.url, "password": "sandbox-key"}),
               "AIRFLOW_CONN_LEADBOXER_PIPEDRIVE_LEDGER": json.dumps({"conn_type": "sqlite", "host": str(ledger)})}
        hours = [START + timedelta(hours=args.first_hour + n) for n in range(args.hours)]
        jobs = []
        for n, hour in enumerate(hours):
            jobs.append({"run_id": f"live-{hour:%H}", "hour": hour, "try": 1, "args": ["--pipeline-id", "2"]})
            if n % 2 == 0:
                jobs.append({"run_id": f"backfill-{hour:%H}", "hour": hour, "try": 1, "args": ["--pipeline-id", "2"]})
            if n == 0:  # the whole segment, while the first hours' leads runs overlap it
                jobs.append({"run_id": "leads-segment", "hour": hour, "try": 1, "args": [
                    *LEADS_ARGS, "--scope", "segment", "--max-leads", str(args.segment_members)]})
            if n < 3:
                jobs.append({"run_id": f"leads-{hour:%H}", "hour": hour, "try": 1, "args": LEADS_ARGS})
        killed = False
        finished: dict[str, int] = {}
        running: list[tuple[dict, subprocess.Popen, int]] = []
        pending = list(jobs)
        while pending or running:
            while pending and len(running) < args.parallel:
                job = pending.pop(0)
                cmd = [sys.executable, "-m", "scripts.chaos_task", "--hour", job["hour"].isoformat(),
                       "--run-id", job["run_id"], "--try-number", str(job["try"]), *job["args"]]
                log = open(workdir / f"{job['run_id']}-try{job['try']}.log", "w")  # noqa: SIM115
                before = len(requests.get(f"{pipedrive.url}/_sandbox/state", timeout=30).json()["activities"])
                running.append((job, subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=log, stderr=log), before))
            time.sleep(0.2)
            for entry in list(running):
                job, process, before = entry
                if not killed and job["try"] == 1:
                    now = len(requests.get(f"{pipedrive.url}/_sandbox/state", timeout=30).json()["activities"])
                    if now - before > 20:  # mid-load: it has been creating activities
                        process.send_signal(signal.SIGKILL)
                        killed = True
                        print(f"killed {job['run_id']} try {job['try']} mid-load (pid {process.pid})", flush=True)
                code = process.poll()
                if code is None:
                    continue
                running.remove(entry)
                if code == 0:
                    finished[job["run_id"]] = job["try"]
                elif job["try"] < args.tries:
                    print(f"{job['run_id']} try {job['try']} ended with {code}: retrying", flush=True)
                    pending.append({**job, "try": job["try"] + 1})
                else:
                    print(f"{job['run_id']} failed after {job['try']} tries", flush=True)
        state = requests.get(f"{pipedrive.url}/_sandbox/state", timeout=60).json()
        data = leadboxer.data
        members = segment_members(leadboxer.url, args.segment_members)
    return report(state, data, hours, ledger, jobs, finished, killed, members)


def segment_members(url: str, count: int) -> set[str]:
    """The use ids of the first ``count`` members of the leads segment that can become Pipedrive leads
    (linked to an organization): what the whole-segment run must have pushed."""
    from leadboxer_pipedrive.extract import fetch_segment
    from leadboxer_pipedrive.hooks import LeadBoxerHook
    from leadboxer_pipedrive.validation import validate_leads

    os.environ["AIRFLOW_CONN_CHAOS_LEADBOXER"] = json.dumps({"conn_type": "leadboxer", "host": url,
                                                             "password": "sandbox-key"})
    listed = fetch_segment(LeadBoxerHook("chaos_leadboxer"), DATASET_ID, LEADS_SEGMENT_ID, count).leads
    return set(validate_leads(listed, "organization").valid["use_id"])


def report(state: dict, data: dict, hours: list[datetime], ledger: Path, jobs: list, finished: dict,
           killed: bool, members: set[str]) -> dict:
    import sqlite3

    from leadboxer_pipedrive.reports import accounted_for
    from leadboxer_pipedrive.transforms import event_ids_in_note
    from sandbox.leadboxer import synced_events

    starts = [int(hour.timestamp() * 1000) for hour in hours]
    expected = {event["event_id"] for start in starts for _, event in synced_events(data, start, start + 3_600_000)}
    markers = Counter(m for a in state["activities"] for m in event_ids_in_note(a["note"]))
    emails = Counter(e["value"].lower() for p in state["persons"] for e in p["emails"])
    org_names = Counter(o["name"].strip().casefold() for o in state["organizations"])
    deals = Counter(d["person_id"] for d in state["deals"])
    leads = Counter(lead["origin_id"].split(":", 1)[-1] for lead in state["leads"])
    with sqlite3.connect(ledger) as db:
        runs = [json.loads(r[0]) for r in db.execute("SELECT summary FROM lbpd_run")]
        rejected = dict(db.execute("SELECT record_id, reason FROM lbpd_rejected_row WHERE entity = 'event'"))
    figures = {
        "runs finished": f"{len(finished)} of {len(jobs)}",
        "task killed mid-load": killed,
        "events extracted (all runs, all tries)": sum(r["extracted"] for r in runs if r.get("sync") != "leads"),
        "valid events in the hours": len(expected),
        "activities in Pipedrive": len(state["activities"]),
        "events pushed (distinct markers)": len(markers),
        "duplicate activities": sum(n - 1 for n in markers.values()),
        "duplicated event ids": sorted(m for m, n in markers.items() if n > 1)[:10],
        "duplicate persons": sum(n - 1 for n in emails.values()),
        "duplicate organizations": sum(n - 1 for n in org_names.values()),
        "duplicate deals": sum(n - 1 for n in deals.values()),
        "duplicate leads": sum(n - 1 for n in leads.values()),
        "segment members lost": len(members - set(leads)),
        "segment members (first of the segment)": len(members),
        "valid events lost": len(expected - set(markers) - set(rejected)),
        "events rejected (with reason)": len(rejected),
        "runs where every record is accounted for": sum(r["extracted"] == accounted_for(r) for r in runs),
        "runs recorded": len(runs),
        "429 answers": state["counters"]["responses_by_status"].get("429", 0),
        "5xx answers": sum(v for k, v in state["counters"]["responses_by_status"].items() if k.startswith("5")),
        "dropped connections": state["counters"]["responses_by_status"].get("dropped", 0),
    }
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=3000, help="generated LeadBoxer leads (24 h of data)")
    parser.add_argument("--hours", type=int, default=8, help="hours synced, from --first-hour")
    parser.add_argument("--first-hour", type=int, default=4)
    parser.add_argument("--parallel", type=int, default=3, help="sync processes at once")
    parser.add_argument("--tries", type=int, default=4, help="tries per run (Airflow retries + 1)")
    parser.add_argument("--search-lag", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--segment-members", type=int, default=300,
                        help="members the whole-segment leads run reads (the first of the segment)")
    parser.add_argument("--workdir")
    args = parser.parse_args(argv)
    started = time.monotonic()
    figures = run(args)
    width = max(map(len, figures))
    for name, value in figures.items():
        print(f"{name:<{width}}  {value}")
    print(f"{'seconds':<{width}}  {time.monotonic() - started:.0f}")
    ok = (figures["duplicate activities"] == figures["duplicate persons"] == figures["duplicate organizations"]
          == figures["duplicate deals"] == figures["valid events lost"] == figures["duplicate leads"]
          == figures["segment members lost"] == 0
          and figures["runs where every record is accounted for"] == figures["runs recorded"]
          and figures["runs finished"].split(" of ")[0] == figures["runs finished"].split(" of ")[1])
    print("INVARIANTS HOLD" if ok else "INVARIANTS BROKEN")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
