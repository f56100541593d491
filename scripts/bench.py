"""`make bench`: the benchmark suite against the sandboxes; prints ONE table.

Each figure is measured in the same run as its reference, each part in its own process:

1. tokens per pushed activity over a simulated 24 hours (``scripts.bench_tokens``), finding records
   through the account index, beside its bound, the search path's figure and bound and a lookup-everything
   baseline counted from the same data; then the same day on an account holding 50,000 persons, both ways;
2. achieved request rate as a share of the burst limit, and the share of 429 answers
   (``scripts.bench_rate``);
3. a guard, not a target: extract-parse + validate + transform of 1,000,000 events against a bare
   ``json.loads`` of the same documents, and peak memory (``scripts.bench_pipeline``);
4. import time of the DAG files against ``airflow.sdk`` alone (``scripts.bench_imports``);
5. the extract against a LeadBoxer sandbox answering in 0.15 s: a live busy hour's wall time against
   reading one request at a time, and a 24-hour backfill's requests against the floor
   (``scripts.bench_extract``);
6. the sync dashboard (page and API) on a ledger of 10,000 runs and 100,000 rejected rows, against the
   same requests on a small ledger, on SQLite and PostgreSQL (``scripts.bench_dashboard``).

``--json FILE`` also writes every figure's details. ``--quick`` runs smaller sizes (a smoke test).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def part(module: str, *args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'plugins'}:{ROOT}", "GX_ANALYTICS_ENABLED": "false"}
    env.setdefault("AIRFLOW_HOME", str(ROOT / ".airflow" / "bench"))
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=False)
    if out.returncode:
        sys.stderr.write(out.stderr[-4000:])
        raise SystemExit(f"{module} failed ({out.returncode})")
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"  {module}: {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    return figures


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "?") \
        if Path("/proc/cpuinfo").exists() else platform.processor()
    ram = next((int(line.split()[1]) / 1024 / 1024 for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")), 0.0) if Path("/proc/meminfo").exists() else 0.0
    return {"nproc": os.cpu_count(), "cpu": cpu, "ram_gb": round(ram, 1), "python": platform.python_version(),
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def rows(tokens: dict, rate: dict, pipeline: dict, imports: dict, extract: dict,
         dashboard: dict) -> list[tuple[str, str, str, str, str, bool]]:
    """figure | measured | reference | ratio | goal | met?"""
    out = []
    ratio = tokens["tokens_per_activity"] / tokens["index_bound_per_activity"]
    per_activity, searching = tokens["tokens_per_activity"], tokens["search_tokens_per_activity"]
    out.append(("1a. tokens per pushed activity, 24 h (24 hourly runs), account index",
                f"{tokens['tokens_per_activity']:.2f} ({tokens['tokens_spent']} tokens / "
                f"{tokens['activities_pushed']} activities)",
                f"index bound {tokens['index_bound_per_activity']:.2f}; searching {searching:.2f} "
                f"(search bound {tokens['lower_bound_per_activity']:.2f}); lookup-everything "
                f"{tokens['baseline_per_activity']:.2f}",
                f"{ratio:.3f} of index bound; {per_activity / searching:.3f} of searching", "<= 6.5",
                per_activity <= 6.5))
    large = tokens["large_account"]
    first, day = large["index_first_run_tokens"], large["index_tokens"]
    out.append((f"1b. the same day, {large['existing_persons']:,} persons already in Pipedrive: first run; day",
                f"{first} tokens; {day} tokens ({large['index_persons_created']} persons created)",
                f"searching: {large['search_first_run_tokens']}; {large['search_tokens']} "
                f"({large['search_persons_created']} created)",
                f"{first / large['search_first_run_tokens']:.3f}; {day / large['search_tokens']:.3f}",
                "<= 1; < 1; same persons",
                first <= large["search_first_run_tokens"] and day < large["search_tokens"]
                and large["index_persons_created"] == large["search_persons_created"]))
    out.append(("2a. request rate, backlog load (latency 0.25 s, 32 workers)",
                f"{rate['accepted_per_2s']:.1f} req / 2 s ({rate['accepted']} in {rate['seconds']:.1f} s)",
                "burst limit 100 / 2 s", f"{rate['share_of_burst_limit']:.3f}", ">= 0.90",
                rate["share_of_burst_limit"] >= 0.90))
    out.append(("2b. share of requests answered 429", f"{rate['rate_limited_429']} of {rate['requests']}",
                "all requests", f"{rate['share_429']:.4f}", "<= 0.01", rate["share_429"] <= 0.01))
    out.append(("2c. searches (average per 2 s; 429s on searches)",
                f"{rate['searches_per_2s']:.2f} per 2 s ({rate['searches']} searches, "
                f"{rate.get('search_429', 0)} refused)",
                "search limit 10 / 2 s", f"{rate['searches_per_2s'] / 10:.3f}", "<= 1.0",
                rate["searches_per_2s"] <= 10 and rate.get("search_429", 0) == 0))
    out.append((f"3a. guard: extract-parse + validate + transform, {pipeline['events']:,} events / "
                f"{pipeline['leads']:,} leads",
                f"{pipeline['pipeline_seconds']:.1f} s ({pipeline['pipeline']['cpu_seconds']:.1f} s CPU)",
                f"bare json.loads of the same {pipeline['answers']:,} answers {pipeline['loads_seconds']:.1f} s",
                f"{pipeline['ratio']:.2f}", "<= 5.0", pipeline["ratio"] <= 5.0))
    out.append(("3b. peak memory of 3a (RSS)", f"{pipeline['pipeline_peak_rss_mb'] / 1024:.2f} GB",
                f"after imports {pipeline['pipeline']['before_rss_mb'] / 1024:.2f} GB; bare json.loads peak "
                f"{pipeline['loads_peak_rss_mb'] / 1024:.2f} GB",
                f"{pipeline['pipeline_peak_rss_mb'] / 2048:.2f} of goal", "< 2 GB",
                pipeline["pipeline_peak_rss_mb"] < 2048))
    heavy = imports["dags_import_pandas_or_ge"]
    out.append((f"4. DAG file import (slowest: {imports['worst_dag']})", f"{imports['worst_dag_seconds']:.2f} s",
                f"import airflow.sdk {imports['sdk_seconds']:.2f} s", f"{imports['ratio']:.2f}",
                "<= 1.5; no pandas/GE", imports["ratio"] <= 1.5 and not heavy))
    busy, backfill = extract["busy_hour"], extract["backfill"]
    out.append((f"5a. extract, live busy hour ({busy['leads']:,} leads active, latency {busy['latency']} s, "
                f"{busy['max_concurrency']} reads at once)",
                f"{busy['seconds']:.1f} s ({busy['requests']:,} requests, {busy['events']:,} events)",
                f"one request at a time: {busy['requests']:,} x {busy['latency']} s = "
                f"{busy['one_at_a_time_seconds']:.0f} s",
                f"{busy['share_of_one_at_a_time']:.3f}", "<= 0.15 and <= 60 s",
                busy["share_of_one_at_a_time"] <= 0.15 and busy["seconds"] <= 60))
    out.append((f"5b. extract, 24-hour backfill ({backfill['leads']:,} leads a day, hours one after the other)",
                f"{backfill['requests']:,} requests ({backfill['seconds']:.0f} s; "
                f"{backfill['requests_without_cache']:,} without the ReadCache)",
                f"floor {backfill['floor']:,} = {backfill['lead_pages']} lead pages + "
                f"{backfill['sessions_reads']:,} leads + {backfill['events_reads']:,} sessions",
                f"{backfill['ratio']:.3f}", "<= 1.3 x floor", backfill["ratio"] <= 1.3))
    for kind, figures in dashboard.items():
        if not figures:
            continue
        large, small = figures["large"], figures["small"]
        out.append((f"6. dashboard on {kind}, {large['runs']:,} runs / {large['rejected_rows']:,} rejected rows "
                    f"(slowest: {figures['worst']})",
                    f"{figures['worst_seconds']:.3f} s",
                    f"{small['runs']} runs / {small['rejected_rows']} rows: {figures['reference_seconds']:.3f} s",
                    f"{figures['worst_seconds'] / figures['reference_seconds']:.1f}", "< 1 s",
                    figures["worst_seconds"] < 1.0))
    return out


def table(lines: list[tuple]) -> str:
    header = ("figure", "measured", "reference", "ratio", "goal", "met?")
    cells = [header] + [(*line[:5], "yes" if line[5] else "NO") for line in lines]
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in cells[1:]]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write all figures here too")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test of the suite")
    args = parser.parse_args(argv)
    started = time.monotonic()
    quick = ["--leads", "200", "--existing-persons", "5000"] if args.quick else []
    print("running the benchmark suite (about 8-15 minutes)...", file=sys.stderr, flush=True)
    tokens = part("scripts.bench_tokens", *quick)
    rate = part("scripts.bench_rate", *(["--leads", "60"] if args.quick else []))
    pipeline = part("scripts.bench_pipeline", *(["--leads", "5000", "--events", "100000"] if args.quick else []))
    imports = part("scripts.bench_imports", *(["--repeat", "2"] if args.quick else []))
    extract = part("scripts.bench_extract",
                   *(["--busy-leads", "100", "--backfill-leads", "150", "--latency", "0.05"] if args.quick else []))
    dashboard = part("scripts.bench_dashboard", *(["--runs", "1000", "--rejected", "10000"] if args.quick else []))
    host = machine()
    lines = rows(tokens, rate, pipeline, imports, extract, dashboard)
    print(f"\nMachine: nproc {host['nproc']}, {host['cpu']}, {host['ram_gb']} GB RAM, Python {host['python']}, "
          f"{host['date']}; suite took {time.monotonic() - started:.0f} s\n")
    print(table(lines))
    if args.json:
        figures = {"machine": host, "tokens": tokens, "rate": rate, "pipeline": pipeline, "imports": imports,
                   "extract": extract, "dashboard": dashboard}
        Path(args.json).write_text(json.dumps(figures, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
