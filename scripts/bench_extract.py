"""Figure 5: the extract against a LeadBoxer sandbox answering with latency, as a real LeadBoxer does
(100–300 ms): LeadBoxer's API is N+1, so waiting on answers is what an extract costs.

* **5a, a live busy hour**: ``generate_dataset(leads=1000, hours=1)`` (every lead active in
  [10:00, 11:00)), read by ``extract.fetch_window`` as the extract task runs it, the hook's defaults
  (8 reads at once, at most 100 requests per second). Figures: wall time, requests (the sandbox's own
  count), and wall time as a share of ``requests × latency``, what reading one request at a time
  would wait. No ReadCache: a live hour's reads are too recent to keep.
* **5b, a 24-hour backfill of a day**: ``generate_dataset(leads=2000, hours=24)``, its 24 hours run
  one after the other by ``fetch_window`` with the ledger's ``ReadCache`` (a fresh SQLite ledger), as
  ``airflow backfill`` runs them with ``--max-active-runs 1``. Figure: LeadBoxer requests against the
  floor computed from the data: for each hour, the lead-list pages that hold the leads last seen since
  it started; one sessions read per lead that can have been active in any hour; one events read per
  session that can overlap any hour.

The sandbox runs in its own process (``python -m sandbox.leadboxer``), as a real server would. Prints
one JSON object (the figures) on its last line.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from sandbox.leadboxer.generator import DEFAULT_SEGMENT_ID, DEFAULT_SITE, WEB_VISITORS_SEGMENT_ID, generate_dataset
from scripts.bench_common import sandbox_process, use_plugins

BUSY_START = "2026-11-20T10:00:00Z"
DAY_START = "2026-11-20T00:00:00Z"
HOUR_MS = 3_600_000


def sandbox_requests(url: str) -> dict:
    import requests

    return requests.get(url + "/_sandbox/state", timeout=60).json()["counters"]


def hook_for(url: str):
    from leadboxer_pipedrive.hooks.leadboxer import LeadBoxerHook

    os.environ["AIRFLOW_CONN_LEADBOXER_DEFAULT"] = json.dumps(
        {"conn_type": "leadboxer", "host": url, "password": "sandbox-key"})
    return LeadBoxerHook()


def busy_hour(leads: int, latency: float, segment: int) -> dict:
    from leadboxer_pipedrive.extract import fetch_window

    start = datetime.fromisoformat(BUSY_START)
    args = ["--leads", str(leads), "--start", BUSY_START, "--hours", "1", "--latency", str(latency)]
    with sandbox_process("sandbox.leadboxer", *args) as url:
        hook = hook_for(url)
        started = time.perf_counter()
        window = fetch_window(hook, DEFAULT_SITE, segment, start, start + timedelta(hours=1))
        seconds = time.perf_counter() - started
        counts = sandbox_requests(url)
    requests = counts["requests"]
    return {"leads": len(window.leads), "events": len(window.events), "seconds": round(seconds, 2),
            "requests": requests, "by_endpoint": counts["by_endpoint"], "latency": latency,
            "one_at_a_time_seconds": round(requests * latency, 1),
            "share_of_one_at_a_time": seconds / (requests * latency),
            "max_concurrency": hook.max_concurrency}


def backfill_floor(data: dict, segment: int, day_start_ms: int, page_size: int) -> dict:
    """Lead pages + one sessions read per lead that can have been active in an hour + one events read
    per session that can overlap an hour, for the 24 hours of the day, from the served data."""
    from leadboxer_pipedrive.extract import _LeadReader, _seconds
    from leadboxer_pipedrive.frames import epoch_ms

    members = [lead for lead in data["leads"] if segment in lead["segments"]]
    pages, leads_read, sessions_touched = 0, set(), set()
    for hour in range(24):
        start, end = day_start_ms + hour * HOUR_MS, day_start_ms + (hour + 1) * HOUR_MS
        listed = [lead for lead in members if int(lead["eventEsTimestamp"]) >= start]
        pages += max(1, math.ceil(len(listed) / page_size))
        reader = _LeadReader(None, "", (start, end), True, None)
        for lead in listed:
            if epoch_ms(lead.get("first_session_unix_timestamp")) >= end:
                continue
            leads_read.add(lead["use_id"])
            for session in lead["sessions"]:
                if reader._may_overlap(session):
                    sessions_touched.add(session["session_id"])
    assert all(_seconds(s["duration"]) is not None for lead in members for s in lead["sessions"])
    return {"lead_pages": pages, "sessions_reads": len(leads_read), "events_reads": len(sessions_touched),
            "floor": pages + len(leads_read) + len(sessions_touched)}


def read_the_day(url: str, segment: int, *, cache: bool) -> dict:
    """The day's 24 hours read one after the other by ``fetch_window``, with the ledger's ReadCache (a fresh
    SQLite ledger) or without; LeadBoxer's requests counted by the sandbox."""
    from leadboxer_pipedrive.extract import ReadCache, fetch_window
    from leadboxer_pipedrive.hooks.ledger import LedgerHook

    day = datetime.fromisoformat(DAY_START)
    ledger = LedgerHook("bench_extract_ledger")
    os.environ["AIRFLOW_CONN_BENCH_EXTRACT_LEDGER"] = json.dumps(
        {"conn_type": "sqlite", "host": str(Path(tempfile.mkdtemp(prefix="lbpd-bench-extract-")) / "ledger.sqlite")})
    before = sandbox_requests(url)["requests"]
    started = time.perf_counter()
    events = kept = 0
    for hour in range(24):
        read_cache = ReadCache(ledger, DEFAULT_SITE) if cache else None
        start = day + timedelta(hours=hour)
        window = fetch_window(hook_for(url), DEFAULT_SITE, segment, start, start + timedelta(hours=1),
                              read_cache=read_cache)
        events += len(window.events)
        kept += read_cache.hits if read_cache else 0
    return {"seconds": round(time.perf_counter() - started, 1), "events": events, "reads_kept": kept,
            "requests": sandbox_requests(url)["requests"] - before}


def backfill(leads: int, latency: float, segment: int) -> dict:
    data = generate_dataset(seed=7, leads=leads, start=DAY_START, hours=24)
    args = ["--leads", str(leads), "--start", DAY_START, "--hours", "24"]
    with sandbox_process("sandbox.leadboxer", *args, "--latency", str(latency)) as url:
        cached = read_the_day(url, segment, cache=True)
        page_size = hook_for(url).page_size
    # The same without the ReadCache, at no latency: only the count matters.
    with sandbox_process("sandbox.leadboxer", *args) as url:
        without = read_the_day(url, segment, cache=False)
    assert without["events"] == cached["events"]
    floor = backfill_floor(data, segment, int(datetime.fromisoformat(DAY_START).timestamp() * 1000), page_size)
    return {"leads": leads, **cached, **floor, "ratio": cached["requests"] / floor["floor"],
            "requests_without_cache": without["requests"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--busy-leads", type=int, default=1000)
    parser.add_argument("--backfill-leads", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.15)
    args = parser.parse_args(argv)
    use_plugins()
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="lbpd-bench-home-"))
    figures = {"busy_hour": busy_hour(args.busy_leads, args.latency, WEB_VISITORS_SEGMENT_ID),
               "backfill": backfill(args.backfill_leads, args.latency, DEFAULT_SEGMENT_ID)}
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
