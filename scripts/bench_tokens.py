"""Figure 1: Pipedrive tokens per pushed activity over a simulated 24 hours (24 hourly runs of the real
ActivityLoader against a PipedriveSandbox, fresh SQLite ledger), beside the scenario's lower bound and a
lookup-everything baseline, both counted from the same data, and the bound of a sync that finds records
in a local index of the account instead of searching (issue 21), counted from the same data too.

Prints one JSON object (the figures) on its last line.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from scripts.bench_common import DAY_START, connect, load, use_plugins, window_activities

PERSON_SEARCH = ORG_SEARCH = 20
CREATE = 5
DEALS_LIST = 10
LIST_PAGE, PAGE_SIZE = 10, 500  # GET /api/v2/persons (organizations, deals): 10 tokens a page of up to 500
ACTIVITY = 5
ACTIVITY_TYPES = 20  # GET /api/v1/activityTypes; the loader remembers the answer in the ledger for a day


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=800, help="leads of the generated 24 h dataset")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--pipeline-id", type=int, default=2, help="deals are created in this pipeline")
    args = parser.parse_args(argv)
    use_plugins()
    import pandas as pd

    from sandbox.leadboxer import LeadBoxerSandbox
    from sandbox.pipedrive import PipedriveSandbox

    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="lbpd-bench-tokens-"))
    # Tokens do not depend on the burst limits: generous limits keep the run short.
    with PipedriveSandbox(burst_limit=10_000, search_burst_limit=10_000) as pipedrive, \
            LeadBoxerSandbox(leads=args.leads, hours=24, seed=args.seed) as leadboxer:
        connect(pipedrive.url, workdir / "ledger.sqlite", burst_limit=10_000, search_burst_limit=10_000,
                leadboxer_url=leadboxer.url)
        pushed_frames, runs = [], []
        for n in range(24):
            hour = DAY_START + timedelta(hours=n)
            activities, extracted, rejected = window_activities(hour)
            before = pipedrive.app.counters()["tokens_spent"]
            result, hook = load(activities, f"hour-{n:02d}", pipeline_id=args.pipeline_id, workers=8)
            spent = pipedrive.app.counters()["tokens_spent"] - before
            runs.append({"hour": n, "extracted": extracted, "valid": len(activities), "pushed": result.pushed,
                         "tokens": spent, "hook_tokens": hook.tokens_spent})
            pushed_frames.append(activities[activities["event_id"].isin(set(result.pushed_ids))])
        counters = pipedrive.app.counters()
    pushed = pd.concat(pushed_frames, ignore_index=True)
    activities_pushed = len(pushed)
    emails = pushed["email"].nunique()
    orgs = pushed["org_key"].dropna().nunique()
    deals = emails if args.pipeline_id else 0
    hours_with_persons = sum(1 for r in runs if r["valid"])
    fixed = ACTIVITY_TYPES  # once: the check is cached in the ledger for 24 h
    lower = ACTIVITY * activities_pushed + (PERSON_SEARCH + CREATE) * emails + (ORG_SEARCH + CREATE) * orgs \
        + CREATE * deals + fixed
    # Lookup everything, every event: person search, org search (when it has one), deals list, activity;
    # plus the creates of whatever is missing, and the activity-type check every run.
    with_org = int(pushed["org_key"].notna().sum())
    baseline = (PERSON_SEARCH + DEALS_LIST + ACTIVITY) * activities_pushed + ORG_SEARCH * with_org \
        + CREATE * (emails + orgs + deals) + ACTIVITY_TYPES * hours_with_persons
    index_pages = account_index_pages(workdir / "ledger.sqlite", [f"hour-{n:02d}" for n in range(24)])
    index_bound = ACTIVITY * activities_pushed + CREATE * (emails + orgs + deals) + fixed + LIST_PAGE * index_pages
    measured = counters["tokens_spent"]
    figures = {
        "activities_pushed": activities_pushed, "distinct_emails": emails, "distinct_orgs": orgs,
        "deals_created_bound": deals, "fixed_overhead_tokens": fixed, "tokens_spent": measured,
        "lower_bound_tokens": lower, "baseline_tokens": baseline, "index_pages": index_pages,
        "index_bound_tokens": index_bound, "index_bound_per_activity": index_bound / activities_pushed,
        "tokens_per_activity": measured / activities_pushed, "lower_bound_per_activity": lower / activities_pushed,
        "baseline_per_activity": baseline / activities_pushed, "ratio_to_lower_bound": measured / lower,
        "by_endpoint": counters["by_endpoint"], "runs": runs, "seconds": round(time.monotonic() - started, 1),
    }
    shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(figures))
    return 0


def account_index_pages(ledger_path: Path, run_ids: list[str]) -> int:
    """List pages an index of the account would read over the day: before each run, persons, organizations
    and deals changed since the last read (``updated_since``). Counted high: every record an activity of
    the previous run touched (a new activity may count as a change of its person, organization and deal),
    at least one page each."""
    import sqlite3
    from math import ceil

    with sqlite3.connect(ledger_path) as db:
        touched = {run_id: counts for run_id, *counts in db.execute(
            "SELECT run_id, COUNT(DISTINCT person_id), COUNT(DISTINCT org_id), COUNT(DISTINCT deal_id) "
            "FROM lbpd_pushed_event GROUP BY run_id")}
    previous = [(0, 0, 0)] + [touched.get(run_id, (0, 0, 0)) for run_id in run_ids[:-1]]
    return sum(max(1, ceil(changed / PAGE_SIZE)) for counts in previous for changed in counts)


if __name__ == "__main__":
    sys.exit(main())
