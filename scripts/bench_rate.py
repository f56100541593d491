"""Figure 2: achieved request rate against the burst limit, and the share of 429 answers.

A PipedriveSandbox with 0.25 s latency, 100 requests per 2 s and 10 searches per 2 s; a backlog hour of
a few thousand events of persons the ledger already knows (mostly activity creates) through the real
ActivityLoader with 32 workers, on the search path (``account_index=False``) so that the new leads'
searches meet their own, tighter limit. The persons are made known by a warm-up run under generous limits first.
The sandbox runs in its own process (``python -m sandbox.pipedrive``), as a real server would: in this
process its threads would compete with the loader's for the GIL and skew its clock against ours.

Prints one JSON object (the figures) on its last line.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from scripts.bench_common import DATASET, connect, load, sandbox_process, use_plugins

START = 1_795_150_800_000  # 2026-11-20T05:00Z


def activity_frame(leads: int, events_per_lead: int, prefix: str, offset: int = 0, first: int = 0):
    from leadboxer_pipedrive.frames import events_frame, leads_frame
    from leadboxer_pipedrive.transforms import activity_payloads

    records = [{"use_id": f"{START}.{100_000_000 + n}", "email": f"lead{n}@company{n % 60}.example.com",
                "firstName": "Lead", "lastName": str(n), "organizationName": f"Company {n % 60}",
                "organizationDomain": f"company{n % 60}.example.com", "segments": [14118]}
               for n in range(first, first + leads)]
    events = [{"event_id": f"{prefix}-{lead['use_id']}-{k}", "_lead_id": lead["use_id"],
               "eventUnixTimestamp": str(START + 1000 * (offset + k) + 1), "event_type": "pageview",
               "title": f"Page {k}", "original_url": f"https://www.example.com/p{k}"}
              for lead in records for k in range(events_per_lead)]
    return activity_payloads(events_frame(events, leads_frame(records, 14118), DATASET), "task")


def counters(url: str) -> dict:
    import requests

    return requests.get(url + "/_sandbox/state", timeout=60).json()["counters"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=300)
    parser.add_argument("--events-per-lead", type=int, default=10)
    parser.add_argument("--new-leads", type=int, default=20,
                        help="leads new to Pipedrive (of known organizations) in the backlog: their person searches "
                             "meet the search limit")
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.25)
    parser.add_argument("--burst-limit", type=int, default=100)
    parser.add_argument("--search-burst-limit", type=int, default=10)
    args = parser.parse_args(argv)
    use_plugins()

    import requests

    workdir = Path(tempfile.mkdtemp(prefix="lbpd-bench-rate-"))
    with sandbox_process("sandbox.pipedrive", "--burst-limit", "10000", "--search-burst-limit", "10000") as url:
        connect(url, workdir / "ledger.sqlite", burst_limit=10_000, search_burst_limit=10_000)
        # Warm-up: persons, organizations and deals become known to Pipedrive and the ledger.
        load(activity_frame(args.leads, 1, "warm"), "warm-up", pipeline_id=2, workers=8, account_index=False)
        requests.post(url + "/_sandbox/config", json={
            "latency": args.latency, "burst_limit": args.burst_limit,
            "search_burst_limit": args.search_burst_limit}, timeout=30).raise_for_status()
        connect(url, workdir / "ledger.sqlite", burst_limit=args.burst_limit,
                search_burst_limit=args.search_burst_limit)
        backlog = activity_frame(args.leads, args.events_per_lead, "backlog", offset=10)
        if args.new_leads:
            import pandas as pd

            new = activity_frame(args.new_leads, args.events_per_lead, "new", offset=10, first=100_000)
            backlog = pd.concat([backlog, new], ignore_index=True)
        time.sleep(2.5)  # the warm-up's requests leave the server's window
        before = counters(url)
        started = time.monotonic()
        result, hook = load(backlog, "backlog", pipeline_id=2, workers=args.workers, account_index=False)
        elapsed = time.monotonic() - started
        after = counters(url)
    requests = after["requests"] - before["requests"]
    by_status = {k: v - before["responses_by_status"].get(k, 0) for k, v in after["responses_by_status"].items()}
    limited = by_status.get("429", 0)
    accepted = requests - limited
    searches = after["searches"] - before["searches"]
    search_calls = sum(v - before["by_endpoint"].get(k, 0) for k, v in after["by_endpoint"].items()
                       if k.endswith("/search"))
    per_window = accepted / elapsed * 2.0
    figures = {
        "events": len(backlog), "pushed": result.pushed, "workers": args.workers, "latency": args.latency,
        "seconds": round(elapsed, 2), "requests": requests, "accepted": accepted, "rate_limited_429": limited,
        "searches": searches, "accepted_per_2s": per_window,
        "share_of_burst_limit": per_window / args.burst_limit, "share_429": limited / requests if requests else 0.0,
        "searches_per_2s": searches / elapsed * 2.0, "search_429": search_calls - searches, "by_status": by_status,
        "by_endpoint": {k: v - before["by_endpoint"].get(k, 0) for k, v in after["by_endpoint"].items()
                        if v - before["by_endpoint"].get(k, 0)},
        "limiter_window_seconds": hook.burst_window_seconds + hook.limiter_slack_seconds,
    }
    shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
