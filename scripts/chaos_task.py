"""One try of one sync run, as its own process (see scripts/chaos.py): the operators' steps (extract →
validate → transform → load) through the same library code, without Airflow's runner. ``--sync leads``
runs the leads sync, of the hour or (``--scope segment``) of the whole segment."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timedelta


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hour", required=True, help="interval start, ISO 8601")
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--try-number", type=int, default=1)
    parser.add_argument("--pipeline-id", type=int)
    parser.add_argument("--dataset-id", default="07bacbd9d46a4e26b58b15d69f69250f")
    parser.add_argument("--segment-id", default="14118")
    parser.add_argument("--sync", choices=("activities", "leads"), default="activities")
    parser.add_argument("--scope", choices=("hour", "segment"), default="hour", help="leads sync only")
    parser.add_argument("--max-leads", type=int, help="leads sync: the first N leads read")
    args = parser.parse_args()
    if args.sync == "leads":
        return leads(args)

    from leadboxer_pipedrive.extract import fetch_window
    from leadboxer_pipedrive.frames import events_frame
    from leadboxer_pipedrive.hooks import LeadBoxerHook, LedgerHook, PipedriveHook
    from leadboxer_pipedrive.loading import ActivityLoader, LoadSettings
    from leadboxer_pipedrive.transforms import activity_payloads
    from leadboxer_pipedrive.validation import validate_events

    start = datetime.fromisoformat(args.hour)
    end = start + timedelta(hours=1)
    window = fetch_window(LeadBoxerHook(), args.dataset_id, args.segment_id, start, end)
    events = events_frame(window.events, window.leads, args.dataset_id)
    outcome = validate_events(events, int(start.timestamp() * 1000), int(end.timestamp() * 1000))
    ledger = LedgerHook()
    dag_id = "chaos_activities"
    ledger.record_rejections([{"dag_id": dag_id, "run_id": args.run_id, "entity": "event",
                               "record_id": str(r["record_id"]), "use_id": r["use_id"], "outcome": "invalid",
                               "reason": r["reason"], "record": None}
                              for r in outcome.rejected.astype(object).to_dict("records")])
    pipedrive = PipedriveHook()
    settings = LoadSettings(dataset_id=args.dataset_id, dag_id=dag_id, run_id=args.run_id, task_id="load",
                            try_number=args.try_number, pipeline_id=args.pipeline_id, workers=4)
    result = ActivityLoader(pipedrive, ledger, settings).load(activity_payloads(outcome.valid, "task"))
    return record_run(ledger, dag_id, args.run_id, start, end, {
        "extracted": len(events), "pushed": result.pushed, "already_pushed": result.already_pushed,
        "rejected": len(outcome.rejected) + result.refused, **pipedrive.usage()})


def leads(args: argparse.Namespace) -> int:
    """A leads sync run linking each lead to its organization: the hour's active leads, or every member."""
    from leadboxer_pipedrive.extract import fetch_segment, fetch_window
    from leadboxer_pipedrive.hooks import LeadBoxerHook, LedgerHook, PipedriveHook
    from leadboxer_pipedrive.loading import LeadLoader, LoadSettings
    from leadboxer_pipedrive.transforms import lead_payloads
    from leadboxer_pipedrive.validation import validate_leads

    start = datetime.fromisoformat(args.hour)
    end = start + timedelta(hours=1)
    hook = LeadBoxerHook()
    if args.scope == "segment":
        window = fetch_segment(hook, args.dataset_id, args.segment_id, args.max_leads)
    else:
        window = fetch_window(hook, args.dataset_id, args.segment_id, start, end, args.max_leads, with_events=False)
    leads_frame = window.leads.assign(dataset_id=args.dataset_id)
    outcome = validate_leads(leads_frame, "organization")
    ledger, pipedrive, dag_id = LedgerHook(), PipedriveHook(), "chaos_leads"
    settings = LoadSettings(dataset_id=args.dataset_id, dag_id=dag_id, run_id=args.run_id, task_id="load",
                            try_number=args.try_number, workers=4)
    result = LeadLoader(pipedrive, ledger, settings, link_to="organization").load(
        lead_payloads(outcome.valid, "organization"))
    return record_run(ledger, dag_id, args.run_id, start, end, {
        "sync": "leads", "scope": args.scope, "extracted": len(leads_frame), "pushed": result.pushed,
        "already_pushed": result.already_pushed, "rejected": len(outcome.rejected) + result.refused,
        **pipedrive.usage()})


def record_run(ledger, dag_id: str, run_id: str, start: datetime, end: datetime, summary: dict) -> int:
    """The run's summary into the ledger (as the load operators record theirs), and printed."""
    ledger.record_run(dag_id=dag_id, run_id=run_id, interval_start=start.isoformat(), interval_end=end.isoformat(),
                      extracted=summary["extracted"], pushed=summary["pushed"],
                      already_pushed=summary["already_pushed"], rejected=summary["rejected"],
                      tokens_spent=summary["tokens_spent"], rate_limited=summary["rate_limited"],
                      summary=json.dumps(summary))
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
