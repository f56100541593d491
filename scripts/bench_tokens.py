"""Figure 1: Pipedrive tokens per pushed activity over a simulated 24 hours (24 hourly runs of the real
ActivityLoader against a PipedriveSandbox, fresh SQLite ledger), both ways of finding records: through the
account index (the default) and by searching. Beside them, counted from the same data: the search-based
lower bound, a lookup-everything baseline, and the account index's bound (creates + 5 per activity + the
index pages the run read).

Then the same day on an account already holding 50,000 persons (``--existing-persons``; one in four of the
day's emails among them), both ways: the first run's tokens and the day's.

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

from scripts.bench_common import DAY_START, connect, connect_leadboxer, load, use_plugins, window_activities

PERSON_SEARCH = ORG_SEARCH = 20
CREATE = 5
DEALS_LIST = 10
LIST_PAGE = 10  # GET /api/v2/persons, /organizations: 10 tokens a page of up to 500
ACTIVITY = 5
ACTIVITY_TYPES = 20  # GET /api/v1/activityTypes; the loader remembers the answer in the ledger for a day
INDEX_LISTS = ("GET /api/v2/persons", "GET /api/v2/organizations")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=800, help="leads of the generated 24 h dataset")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--pipeline-id", type=int, default=2, help="deals are created in this pipeline")
    parser.add_argument("--existing-persons", type=int, default=50_000,
                        help="persons the second scenario's account already holds")
    args = parser.parse_args(argv)
    use_plugins()

    from sandbox.leadboxer import LeadBoxerSandbox

    started = time.monotonic()
    with LeadBoxerSandbox(leads=args.leads, hours=24, seed=args.seed) as leadboxer:
        connect_leadboxer(leadboxer.url)
        # Each hour extracted, validated and transformed as the DAG does, once: every scenario loads the same.
        hours = [window_activities(DAY_START + timedelta(hours=n)) for n in range(24)]
    emails = sorted({email for activities, _, _ in hours for email in activities["email"].unique()})
    index = day(hours, args.pipeline_id, account_index=True)
    search = day(hours, args.pipeline_id, account_index=False)
    existing = emails[::4]
    large = {way: day(hours, args.pipeline_id, account_index=way == "index", existing_persons=args.existing_persons,
                      existing_emails=existing) for way in ("index", "search")}

    pushed = index["pushed"]
    activities_pushed = len(pushed)
    distinct = pushed["email"].nunique()
    orgs = pushed["org_key"].dropna().nunique()
    deals = distinct if args.pipeline_id else 0
    hours_with_persons = sum(1 for activities, _, _ in hours if len(activities))
    fixed = ACTIVITY_TYPES  # once: the check is cached in the ledger for 24 h
    lower = ACTIVITY * activities_pushed + (PERSON_SEARCH + CREATE) * distinct + (ORG_SEARCH + CREATE) * orgs \
        + CREATE * deals + fixed
    # Lookup everything, every event: person search, org search (when it has one), deals list, activity;
    # plus the creates of whatever is missing, and the activity-type check every run.
    with_org = int(pushed["org_key"].notna().sum())
    baseline = (PERSON_SEARCH + DEALS_LIST + ACTIVITY) * activities_pushed + ORG_SEARCH * with_org \
        + CREATE * (distinct + orgs + deals) + ACTIVITY_TYPES * hours_with_persons
    index_pages = sum(index["by_endpoint"].get(call, 0) for call in INDEX_LISTS)
    index_bound = ACTIVITY * activities_pushed + CREATE * (distinct + orgs + deals) + fixed + LIST_PAGE * index_pages
    figures = {
        "activities_pushed": activities_pushed, "distinct_emails": distinct, "distinct_orgs": orgs,
        "deals_created_bound": deals, "fixed_overhead_tokens": fixed,
        "tokens_spent": index["tokens"], "tokens_per_activity": index["tokens"] / activities_pushed,
        "search_tokens_spent": search["tokens"], "search_activities_pushed": len(search["pushed"]),
        "search_tokens_per_activity": search["tokens"] / len(search["pushed"]),
        "lower_bound_tokens": lower, "lower_bound_per_activity": lower / activities_pushed,
        "index_pages": index_pages, "index_bound_tokens": index_bound,
        "index_bound_per_activity": index_bound / activities_pushed,
        "baseline_tokens": baseline, "baseline_per_activity": baseline / activities_pushed,
        "ratio_to_index_bound": index["tokens"] / index_bound, "ratio_to_lower_bound": search["tokens"] / lower,
        "by_endpoint": index["by_endpoint"], "search_by_endpoint": search["by_endpoint"],
        "runs": index["runs"], "search_runs": search["runs"],
        "large_account": {"existing_persons": args.existing_persons, "existing_dataset_emails": len(existing),
                          **{f"{way}_{key}": large[way][key] for way in large for key in ("tokens", "by_endpoint")},
                          **{f"{way}_first_run_tokens": large[way]["runs"][0]["tokens"] for way in large},
                          **{f"{way}_activities": large[way]["activities_created"] for way in large},
                          **{f"{way}_persons_created": large[way]["persons_created"] for way in large},
                          "index_run_tokens": [run["tokens"] for run in large["index"]["runs"]],
                          "search_run_tokens": [run["tokens"] for run in large["search"]["runs"]],
                          "index_runs": large["index"]["runs"]},
        "seconds": round(time.monotonic() - started, 1),
    }
    print(json.dumps(figures))
    return 0


def day(hours: list, pipeline_id: int, *, account_index: bool, existing_persons: int = 0,
        existing_emails: list[str] | None = None) -> dict:
    """The 24 hourly loads on a fresh account and ledger; the tokens and calls each run and the day spent."""
    import pandas as pd

    from sandbox.pipedrive import PipedriveSandbox

    workdir = Path(tempfile.mkdtemp(prefix="lbpd-bench-tokens-"))
    # Tokens do not depend on the burst limits: generous limits keep the run short.
    with PipedriveSandbox(burst_limit=10_000, search_burst_limit=10_000, existing_persons=existing_persons,
                          existing_emails=existing_emails) as pipedrive:
        connect(pipedrive.url, workdir / "ledger.sqlite", burst_limit=10_000, search_burst_limit=10_000)
        pushed_ids, runs = set(), []
        for n, (activities, extracted, _) in enumerate(hours):
            pipedrive.app.store.clock_offset = n * 3600  # the account's clock: each run an hour after the last
            before = pipedrive.app.counters()["tokens_spent"]
            result, hook = load(activities, f"hour-{n:02d}", pipeline_id=pipeline_id, workers=8,
                                account_index=account_index)
            runs.append({"hour": n, "extracted": extracted, "valid": len(activities), "pushed": result.pushed,
                         "retries_pushed": result.counts.get("retries_pushed", 0),
                         "deferred": result.counts.get("deferred", 0),
                         "tokens": pipedrive.app.counters()["tokens_spent"] - before,
                         "index_pages": result.counts.get("account_index_pages", 0)})
            pushed_ids.update(result.pushed_ids)  # this hour's rows, and earlier hours' sent again
        counters = pipedrive.app.counters()
    shutil.rmtree(workdir, ignore_errors=True)
    rows = pd.concat([activities for activities, _, _ in hours], ignore_index=True)
    return {"tokens": counters["tokens_spent"], "by_endpoint": counters["by_endpoint"], "runs": runs,
            "pushed": rows[rows["event_id"].isin(pushed_ids)],
            "activities_created": counters["by_endpoint"].get("POST /api/v2/activities", 0),
            "persons_created": counters["by_endpoint"].get("POST /api/v2/persons", 0)}


if __name__ == "__main__":
    sys.exit(main())
