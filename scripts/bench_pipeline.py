"""Figure 3: extract-parse + validate + transform of 1,000,000 events from 50,000 leads, against a bare
``json.loads`` of the same payload, and the peak memory of doing it.

``python -m scripts.bench_pipeline`` writes the payload once (a JSON object ``{"leads": [...], "events":
[...]}`` in the shapes ``extract.fetch_window`` hands on: LeadBoxer's lead records, and its event records
with ``_lead_id``/``_session_channel``), then runs each measurement in a fresh subprocess:
``--measure loads`` (bare ``json.loads``) and ``--measure pipeline`` (``json.loads`` + ``frames.leads_frame``
+ ``frames.events_frame``, then ``validation.validate_events`` and ``transforms.activity_payloads``), each
reporting its seconds and its peak RSS (``resource.getrusage``). Prints one JSON object on its last line.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scripts.bench_common import DATASET, ROOT, SEGMENT

DAY_MS = 1_795_132_800_000  # 2026-11-20T00:00Z
HOUR_MS = 3_600_000
PAGES = [("/", "Example Analytics – Visitor identification"), ("/pricing", "Pricing"),
         ("/features", "Features"), ("/blog/b2b-leads", "How to find B2B leads"), ("/demo", "Book a demo"),
         ("/integrations/pipedrive", "Pipedrive integration"), ("/about", "About us"), ("/contact", "Contact")]
KINDS = ["pageview"] * 14 + ["email_open", "email_click", "form_submit", "download", "login"]
CHANNELS = ["direct", "organic", "social", "email", "referral", "paid"]
FIRST = ["Jan", "Sanne", "Pieter", "Emma", "Lucas", "Julia", "Søren", "Zoë", "Björn", "Anaïs", "Lucía", "Wei"]
LAST = ["de Vries", "Jansen", "Müller", "Smith", "García", "O'Brien", "Nielsen", "Chen", "Rossi", "Dubois"]


def write_payload(path: Path, leads: int, events: int, seed: int = 7) -> dict[str, int]:
    """Deterministic payload: ~3% of leads without email, ~0.5% of events outside the window, ~0.2%
    repeated event ids (what validation sets aside), the rest valid."""
    rng = random.Random(seed)
    lead_rows, event_rows = [], []
    per_lead = events // leads
    for n in range(leads):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        org = n % 9000
        rand9 = str(100_000_000 + n)
        use_id = f"{DAY_MS + n}.{rand9}"
        lead = {"use_id": use_id, "site": DATASET, "firstName": first, "lastName": last,
                "fullName": f"{first} {last}", "title": "Head of Operations",
                "phoneNumber": f"+31 6 {1000 + n % 9000} {2000 + n % 7000}",
                "organizationName": f"Company {org} BV", "organizationDomain": f"company{org}.nl",
                "organizationCity": "Amsterdam", "organizationCountry": "Netherlands",
                "organizationCountryCode": "NL", "organizationIndustryName": "Software Development",
                "organizationLinkedInUrl": f"https://www.linkedin.com/company/company{org}",
                "esScore": str(rng.randint(20, 100)), "lastEvent": DAY_MS + 23 * HOUR_MS,
                "eventEsTimestamp": str(DAY_MS + 23 * HOUR_MS), "total_number_visits": rng.randint(1, 4),
                "first_channel": rng.choice(CHANNELS), "last_channel": rng.choice(CHANNELS),
                "last_country_name": "Netherlands", "leadcard_url": f"https://app.leadboxer.com?q={use_id}&site={DATASET}",
                "segments": [int(SEGMENT), 14120], "type": {"name": "user"}}
        if rng.random() >= 0.03:
            lead["email"] = f"{first.lower()}.{n}@company{org}.nl"
        lead_rows.append(lead)
        session_ms = DAY_MS + rng.randint(0, 22 * HOUR_MS)
        channel = rng.choice(CHANNELS)
        session_id = f"{session_ms}.{rand9}"
        for k in range(per_lead):
            ts = session_ms + k * 61_000
            roll = rng.random()
            if roll < 0.005:
                ts += 2 * 24 * HOUR_MS  # outside the window
            page, title = rng.choice(PAGES)
            kind = rng.choice(KINDS)
            event_id = f"{ts}.{rand9}" if roll > 0.998 or k == 0 else f"{ts}.{rand9}.{k}"
            if 0.995 < roll <= 0.998 and event_rows:
                event_id = event_rows[-1]["event_id"]  # a repeated id
            event_rows.append({
                "event_id": event_id, "session_id": session_id, "use_id": use_id, "site": DATASET,
                "eventUnixTimestamp": str(ts), "event_type": kind, "title": title,
                "original_url": f"https://www.example.com{page}?utm_source=newsletter&utm_medium=email",
                "root_url": f"https://www.example.com{page}", "referrer": "https://www.google.com/" if k == 0 else "",
                "utm_source": "newsletter" if channel == "email" else None,
                "utm_medium": "email" if channel == "email" else None, "utm_campaign": None, "utm_term": None,
                "utm_content": None, "campaign": "November update" if kind.startswith("email") else None,
                "properties": {}, "_lead_id": use_id, "_session_channel": channel})
            # LeadBoxer omits unknown fields: no nulls, no empty objects.
            event_rows[-1] = {key: value for key, value in event_rows[-1].items() if value not in (None, {})}
    with open(path, "w", encoding="utf-8") as out:
        json.dump({"leads": lead_rows, "events": event_rows}, out, ensure_ascii=False, separators=(",", ":"))
    return {"leads": len(lead_rows), "events": len(event_rows), "bytes": path.stat().st_size}


def measure(kind: str, path: Path) -> dict:
    import gc
    import resource

    data = path.read_bytes()
    baseline_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if kind == "loads":
        times = []
        for _ in range(2):
            started = time.perf_counter()
            payload = json.loads(data)
            times.append(time.perf_counter() - started)
            del payload
            gc.collect()
        return {"seconds": min(times), "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "before_rss_mb": baseline_rss / 1024}
    sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    from leadboxer_pipedrive.frames import events_frame, leads_frame
    from leadboxer_pipedrive.transforms import activity_payloads
    from leadboxer_pipedrive.validation import _context, validate_events

    _context()  # great-expectations' one-off set-up is not part of the figure
    stages = {}
    started = time.perf_counter()
    payload = json.loads(data)
    del data
    stages["json.loads"] = time.perf_counter() - started
    leads = leads_frame(payload["leads"], SEGMENT)
    stages["leads_frame"] = time.perf_counter() - started - sum(stages.values())
    events = events_frame(payload["events"], leads, DATASET)
    del payload  # the raw records are not needed once framed (as in the extract task)
    stages["events_frame"] = time.perf_counter() - started - sum(stages.values())
    outcome = validate_events(events, DAY_MS, DAY_MS + 24 * HOUR_MS)
    stages["validate_events"] = time.perf_counter() - started - sum(stages.values())
    activities = activity_payloads(outcome.valid, "task")
    stages["activity_payloads"] = time.perf_counter() - started - sum(stages.values())
    total = time.perf_counter() - started
    return {"seconds": total, "stages": {k: round(v, 2) for k, v in stages.items()},
            "events": len(events), "valid": len(outcome.valid), "rejected": len(outcome.rejected),
            "activities": len(activities), "by_reason": outcome.statistics.get("by_reason"),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "before_rss_mb": baseline_rss / 1024}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=50_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--measure", choices=["loads", "pipeline"])
    parser.add_argument("--payload")
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(args.measure, Path(args.payload))))
        return 0
    workdir = Path(tempfile.mkdtemp(prefix="lbpd-bench-pipeline-"))
    path = workdir / "payload.json"
    started = time.monotonic()
    sizes = write_payload(path, args.leads, args.events)
    generated = time.monotonic() - started
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'plugins'}:{ROOT}", "GX_ANALYTICS_ENABLED": "false"}
    results = {}
    for kind in ("loads", "pipeline"):
        out = subprocess.run([sys.executable, "-m", "scripts.bench_pipeline", "--measure", kind, "--payload",
                              str(path)], cwd=ROOT, env=env, capture_output=True, text=True, check=False)
        if out.returncode:
            sys.stderr.write(out.stderr[-3000:])
            raise SystemExit(f"bench_pipeline --measure {kind} failed")
        results[kind] = json.loads(out.stdout.strip().splitlines()[-1])
    path.unlink()
    workdir.rmdir()
    figures = {**sizes, "generate_seconds": round(generated, 1), "loads_seconds": results["loads"]["seconds"],
               "pipeline_seconds": results["pipeline"]["seconds"],
               "ratio": results["pipeline"]["seconds"] / results["loads"]["seconds"],
               "pipeline_peak_rss_mb": results["pipeline"]["peak_rss_mb"],
               "loads_peak_rss_mb": results["loads"]["peak_rss_mb"], "pipeline": results["pipeline"]}
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
