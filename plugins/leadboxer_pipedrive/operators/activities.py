"""Operators of the activity sync: extract → validate → transform → load.

Each task reads its input frames from staging (paths in the upstream task's return value), writes its
output frames there, and returns a small JSON summary that the next task receives as ``upstream``.
Heavy modules (pandas, great-expectations) are imported inside ``execute`` so DAG files stay light.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException


def _interval(context) -> tuple[Any, Any]:
    start, end = context["data_interval_start"], context["data_interval_end"]
    if start is None or end is None or start >= end:
        raise AirflowFailException(
            f"data interval [{start}, {end}) is empty: schedule the DAG with CronDataIntervalTimetable "
            "(a plain cron string gives zero-width intervals in Airflow 3)")
    return start, end


def _ms(moment) -> int:
    return int(moment.timestamp() * 1000)


class LeadBoxerExtractOperator(BaseOperator):
    """Extracts the data interval's events of a LeadBoxer segment's leads into staged frames.

    :param dataset_id: LeadBoxer dataset id (the API's ``site``). (templated)
    :param segment_id: segment whose leads are synced. (templated)
    :param leadboxer_conn_id: Airflow connection to LeadBoxer. (templated)
    :param staging_url: where frames are staged (default ``LEADBOXER_PIPEDRIVE_STAGING_URL`` or a folder
        in ``$AIRFLOW_HOME``). (templated)
    :param max_leads: stop after this many leads with events in the window (None: all). (templated)
    """

    template_fields: Sequence[str] = ("dataset_id", "segment_id", "leadboxer_conn_id", "staging_url",
                                      "max_leads")
    ui_color = "#e8f4fd"

    def __init__(self, *, dataset_id: str, segment_id: int | str | None,
                 leadboxer_conn_id: str = "leadboxer_default", staging_url: str | None = None,
                 max_leads: int | str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dataset_id = dataset_id
        self.segment_id = segment_id
        self.leadboxer_conn_id = leadboxer_conn_id
        self.staging_url = staging_url
        self.max_leads = max_leads

    def execute(self, context) -> dict[str, Any]:
        from leadboxer_pipedrive.extract import fetch_window
        from leadboxer_pipedrive.frames import events_frame, leads_frame
        from leadboxer_pipedrive.hooks.leadboxer import LeadBoxerHook
        from leadboxer_pipedrive.staging import run_folder, staging_root, write_frame

        start, end = _interval(context)
        if not str(self.dataset_id or "").strip():
            raise AirflowFailException("dataset_id is empty: set the DAG's dataset_id Param")
        hook = LeadBoxerHook(self.leadboxer_conn_id)
        max_leads = int(self.max_leads) if self.max_leads not in (None, "", "None") else None
        window = fetch_window(hook, self.dataset_id, self.segment_id or None, start, end, max_leads)
        leads = leads_frame(window.leads, self.segment_id or None)
        events = events_frame(window.events, leads, self.dataset_id)
        folder = run_folder(staging_root(self.staging_url), context["dag"].dag_id, context["run_id"])
        leads["segment_ids"] = leads["segment_ids"].map(list)
        summary = {
            "dataset_id": self.dataset_id,
            "segment_id": str(self.segment_id),
            "interval_start": start.isoformat(),
            "interval_end": end.isoformat(),
            "leads": len(leads),
            "sessions_read": window.sessions_read,
            "staging_folder": str(folder),
            "extracted": len(events),
            "leads_path": write_frame(leads, folder / "leads.parquet"),
            "events_path": write_frame(events, folder / "events.parquet"),
        }
        self.log.info("Extracted %d events of %d leads for [%s, %s)", len(events), len(leads), start, end)
        return summary


class ValidateEventsOperator(BaseOperator):
    """Validates extracted events with great-expectations; failing rows go to the ledger with reasons.

    :param upstream: the extract task's return value (pass ``extract.output``). (templated)
    :param ledger_conn_id: Airflow connection to the ledger database. (templated)
    """

    template_fields: Sequence[str] = ("upstream", "ledger_conn_id")
    ui_color = "#fdf6e3"

    def __init__(self, *, upstream: Any, ledger_conn_id: str = "leadboxer_pipedrive_ledger",
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.upstream = upstream
        self.ledger_conn_id = ledger_conn_id

    def execute(self, context) -> dict[str, Any]:
        from airflow.sdk import ObjectStoragePath

        from leadboxer_pipedrive.hooks.ledger import LedgerHook
        from leadboxer_pipedrive.staging import read_frame, write_frame
        from leadboxer_pipedrive.validation import validate_events

        start, end = _interval(context)
        events = read_frame(self.upstream["events_path"])
        outcome = validate_events(events, _ms(start), _ms(end))
        folder = ObjectStoragePath(self.upstream["staging_folder"])
        dag_id, run_id = context["dag"].dag_id, context["run_id"]
        LedgerHook(self.ledger_conn_id).record_rejections([
            {"dag_id": dag_id, "run_id": run_id, "entity": "event",
             "record_id": "" if row["event_id"] is None else str(row["event_id"]),
             "use_id": row["use_id"], "reason": row["reason"], "record": None}
            for row in outcome.rejected.astype(object).where(outcome.rejected.notna(), None).to_dict("records")
        ])
        for reason, count in outcome.statistics.get("by_reason", {}).items():
            self.log.info("Rejected %d event(s): %s", count, reason)
        return {
            **self.upstream,
            "valid": len(outcome.valid),
            "rejected": len(outcome.rejected),
            "rejected_by_reason": outcome.statistics.get("by_reason", {}),
            "valid_path": write_frame(outcome.valid, folder / "valid.parquet"),
            "rejected_path": write_frame(outcome.rejected, folder / "rejected.parquet"),
        }


class TransformActivitiesOperator(BaseOperator):
    """Turns valid events into Pipedrive activity payload rows (pure transforms, no API calls).

    :param upstream: the validate task's return value. (templated)
    :param activity_type: Pipedrive activity type ``key_string`` (e.g. ``task``). (templated)
    """

    template_fields: Sequence[str] = ("upstream", "activity_type")
    ui_color = "#eef8e8"

    def __init__(self, *, upstream: Any, activity_type: str = "task", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.upstream = upstream
        self.activity_type = activity_type

    def execute(self, context) -> dict[str, Any]:
        from airflow.sdk import ObjectStoragePath

        from leadboxer_pipedrive.staging import read_frame, write_frame
        from leadboxer_pipedrive.transforms import activity_payloads

        valid = read_frame(self.upstream["valid_path"])
        activities = activity_payloads(valid, self.activity_type)
        path = ObjectStoragePath(self.upstream["staging_folder"]) / "activities.parquet"
        return {**self.upstream, "activities": len(activities),
                "activities_path": write_frame(activities, path)}


class PipedriveActivityLoadOperator(BaseOperator):
    """Pushes activity rows to Pipedrive (person, organization, deal, activity) and records the run.

    :param upstream: the transform task's return value. (templated)
    :param pipeline_id: pipeline for new deals; empty: link existing open deals, never create. (templated)
    :param pipedrive_conn_id: Airflow connection to Pipedrive. (templated)
    :param ledger_conn_id: Airflow connection to the ledger database. (templated)
    """

    template_fields: Sequence[str] = ("upstream", "pipeline_id", "pipedrive_conn_id", "ledger_conn_id")
    ui_color = "#fde8e8"

    def __init__(self, *, upstream: Any, pipeline_id: int | str | None = None,
                 pipedrive_conn_id: str = "pipedrive_default",
                 ledger_conn_id: str = "leadboxer_pipedrive_ledger", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.upstream = upstream
        self.pipeline_id = pipeline_id
        self.pipedrive_conn_id = pipedrive_conn_id
        self.ledger_conn_id = ledger_conn_id

    def execute(self, context) -> dict[str, Any]:
        from leadboxer_pipedrive.hooks.ledger import LedgerHook
        from leadboxer_pipedrive.hooks.pipedrive import PipedriveHook
        from leadboxer_pipedrive.loading import ActivityLoader, LoadSettings
        from leadboxer_pipedrive.staging import read_frame

        dag_id, run_id = context["dag"].dag_id, context["run_id"]
        pipeline_id = self.pipeline_id
        pipeline_id = int(pipeline_id) if pipeline_id not in (None, "", "None", 0, "0") else None
        activities = read_frame(self.upstream["activities_path"])
        pipedrive = PipedriveHook(self.pipedrive_conn_id)
        ledger = LedgerHook(self.ledger_conn_id)
        settings = LoadSettings(dataset_id=self.upstream["dataset_id"], dag_id=dag_id, run_id=run_id,
                                pipeline_id=pipeline_id)
        try:
            result = ActivityLoader(pipedrive, ledger, settings).load(activities)
        finally:
            usage = pipedrive.usage()
            self.log.info("Pipedrive usage this try: %s", usage)
        summary = run_summary(self.upstream, result.as_dict(), usage)
        ledger.record_run(dag_id=dag_id, run_id=run_id, interval_start=self.upstream["interval_start"],
                          interval_end=self.upstream["interval_end"], extracted=summary["extracted"],
                          pushed=summary["pushed"], already_pushed=summary["already_pushed"],
                          rejected=summary["rejected"], tokens_spent=usage["tokens_spent"],
                          rate_limited=usage["rate_limited"], summary=json.dumps(summary))
        self.log.info("Run summary:\n%s", format_summary(summary))
        if summary["extracted"] != summary["pushed"] + summary["already_pushed"] + summary["rejected"]:
            raise AirflowFailException(f"accounting mismatch, nothing may be lost silently: {summary}")
        return summary


def run_summary(upstream: dict[str, Any], loaded: dict[str, Any], usage: dict[str, int]) -> dict[str, Any]:
    """One run's figures: extracted = pushed + already pushed + rejected (invalid or refused)."""
    return {
        "interval_start": upstream["interval_start"],
        "interval_end": upstream["interval_end"],
        "dataset_id": upstream["dataset_id"],
        "segment_id": upstream["segment_id"],
        "leads": upstream["leads"],
        "extracted": upstream["extracted"],
        "pushed": loaded["pushed"],
        "already_pushed": loaded["already_pushed"],
        "rejected": upstream["rejected"] + loaded["refused"],
        "rejected_invalid": upstream["rejected"],
        "rejected_by_pipedrive": loaded["refused"],
        "rejected_by_reason": upstream.get("rejected_by_reason", {}),
        "loaded": loaded,
        "tokens_spent": usage["tokens_spent"],
        "requests": usage["requests"],
        "rate_limited": usage["rate_limited"],
    }


def format_summary(summary: dict[str, Any]) -> str:
    lines = [
        f"interval        [{summary['interval_start']}, {summary['interval_end']})",
        f"extracted       {summary['extracted']} events of {summary['leads']} leads",
        f"pushed          {summary['pushed']}",
        f"already pushed  {summary['already_pushed']}",
        f"rejected        {summary['rejected']} ({summary['rejected_invalid']} invalid, "
        f"{summary['rejected_by_pipedrive']} refused by Pipedrive)",
    ]
    lines += [f"  - {count} x {reason}" for reason, count in summary["rejected_by_reason"].items()]
    loaded = {k: v for k, v in summary["loaded"].items()
              if k not in ("received", "pushed", "already_pushed", "refused")}
    if loaded:
        lines.append("resolved        " + ", ".join(f"{k}={v}" for k, v in loaded.items()))
    lines.append(f"pipedrive       {summary['tokens_spent']} tokens, {summary['requests']} requests, "
                 f"{summary['rate_limited']} answered 429")
    return "\n".join(lines)
