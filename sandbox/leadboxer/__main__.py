"""``python -m sandbox.leadboxer --port P [...]``: serve the LeadBoxer stand-in in the foreground."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sandbox.common import SandboxServer
from sandbox.leadboxer.app import DEFAULT_API_KEY, LeadBoxerApp
from sandbox.leadboxer.generator import DEFAULT_SEGMENT_ID, DEFAULT_SITE, DEFAULT_START, generate_dataset


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sandbox.leadboxer", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    parser.add_argument("--data", type=Path, help="serve this JSON data file instead of generating data")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--leads", type=int, default=200)
    parser.add_argument("--start", default=DEFAULT_START, help="ISO-8601 start of the generated span")
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--site", default=DEFAULT_SITE, help="dataset id of the generated data")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every API request")
    parser.add_argument("--fault", action="append", default=[], metavar="JSON",
                        help="a fault rule (or list of rules) as JSON; repeatable")
    parser.add_argument("--dump", type=Path, metavar="FILE", help="write the dataset as a data file and exit")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.data:
        data = json.loads(args.data.read_text(encoding="utf-8"))
        config = {"source": "data", "data_file": str(args.data)}
    else:
        data = generate_dataset(seed=args.seed, leads=args.leads, start=args.start, hours=args.hours,
                                site=args.site)
        config = {"source": "generated", "seed": args.seed, "leads": args.leads, "start": args.start,
                  "hours": args.hours}
    if args.dump:
        args.dump.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
        print(f"wrote {len(data.get('leads') or [])} leads to {args.dump}", flush=True)
        return 0
    faults = []
    for text in args.fault:
        spec = json.loads(text)
        faults.extend(spec if isinstance(spec, list) else [spec])
    config["default_segment_id"] = DEFAULT_SEGMENT_ID
    app = LeadBoxerApp(data, api_key=args.api_key, latency=args.latency, faults=faults, config=config)
    server = SandboxServer(app, host=args.host, port=args.port, verbose=args.verbose)
    print(f"LeadBoxer sandbox listening on http://{args.host}:{server.port}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
