"""``python -m sandbox.pipedrive --port P``: run the Pipedrive sandbox in the foreground."""

from __future__ import annotations

import argparse
import json
import sys

from sandbox.pipedrive.app import (
    DEFAULT_DAILY_BUDGET,
    DEFAULT_OAUTH_CLIENT_ID,
    DEFAULT_OAUTH_CLIENT_SECRET,
    DEFAULT_OAUTH_REFRESH_TOKEN,
    DEFAULT_OAUTH_TOKEN_TTL,
    DEFAULT_TOKEN,
)
from sandbox.pipedrive.existing import DEFAULT_SEED, read_emails
from sandbox.pipedrive.server import PipedriveSandbox


def _fault(text: str) -> list[dict]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--fault must be JSON: {exc}") from exc
    rules = value if isinstance(value, list) else [value]
    if not all(isinstance(rule, dict) for rule in rules):
        raise argparse.ArgumentTypeError("--fault must be a JSON object (or a list of them)")
    return rules


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.pipedrive", description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--token", default=DEFAULT_TOKEN)
    parser.add_argument("--burst-limit", type=int, default=100, help="requests per window (default 100)")
    parser.add_argument("--search-burst-limit", type=int, default=10, help="searches per window (default 10)")
    parser.add_argument("--window", type=float, default=2.0, help="burst window in seconds (default 2)")
    parser.add_argument("--daily-budget", type=int, default=DEFAULT_DAILY_BUDGET)
    parser.add_argument("--search-lag", type=float, default=0.0, help="seconds before new records are searchable")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every API answer")
    parser.add_argument("--fault", type=_fault, action="append", default=[], help="fault rule JSON (repeatable)")
    parser.add_argument("--oauth-client-id", default=DEFAULT_OAUTH_CLIENT_ID)
    parser.add_argument("--oauth-client-secret", default=DEFAULT_OAUTH_CLIENT_SECRET)
    parser.add_argument("--oauth-refresh-token", default=DEFAULT_OAUTH_REFRESH_TOKEN,
                        help="the refresh token valid at start (rotated on each use)")
    parser.add_argument("--oauth-token-ttl", type=float, default=DEFAULT_OAUTH_TOKEN_TTL,
                        help="seconds an OAuth access token lives (default 3599)")
    parser.add_argument("--no-contact-sync", dest="contact_sync", action="store_false",
                        help="a company without contact sync: persons have no im, postal_address, notes, "
                             "birthday nor job_title")
    parser.add_argument("--existing-persons", type=int, default=0, metavar="N",
                        help="persons the account holds at start (default 0; at least one per --existing-emails)")
    parser.add_argument("--existing-emails", metavar="FILE",
                        help="emails of the first existing persons, one per line")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help=f"seed of the existing persons (default {DEFAULT_SEED})")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    faults = [rule for rules in args.fault for rule in rules]
    try:
        existing_emails = read_emails(args.existing_emails) if args.existing_emails else None
    except (OSError, UnicodeDecodeError) as exc:
        parser.error(f"--existing-emails: {exc}")
    try:
        sandbox = PipedriveSandbox(token=args.token, burst_limit=args.burst_limit,
                                   search_burst_limit=args.search_burst_limit, daily_budget=args.daily_budget,
                                   search_lag=args.search_lag, latency=args.latency, faults=faults,
                                   port=args.port, host=args.host, window=args.window, verbose=args.verbose,
                                   oauth_client_id=args.oauth_client_id,
                                   oauth_client_secret=args.oauth_client_secret,
                                   oauth_refresh_token=args.oauth_refresh_token,
                                   oauth_token_ttl=args.oauth_token_ttl, contact_sync=args.contact_sync,
                                   existing_persons=args.existing_persons, existing_emails=existing_emails,
                                   seed=args.seed)
    except ValueError as exc:
        parser.error(str(exc))
    print(f"Pipedrive sandbox listening on http://127.0.0.1:{sandbox.port}", flush=True)
    sandbox.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
