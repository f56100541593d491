"""Operators of the activity sync: extract → validate → transform → load.

Each task reads its input frames from staging (paths in the upstream task's return value), writes its
output frames there, and returns a small JSON summary that the next task receives as ``upstream``.
Heavy modules (pandas, great-expectations) are imported inside ``execute`` so DAG files stay light.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from leadboxer_pipedrive.operators.common import (
    ValidationReportLink,
    as_bool,
    check_budget,
    data_interval,
    finish_dry_run,
    finish_run,
    finish_validation,
    load_settings,
    optional_int,
    optional_text,
    staged_path,
    to_ms,
    with_task_duration,
)


class LeadBoxerExtractOperator(BaseOperator):
    """Extracts a LeadBoxer segment's leads active in the data interval (and their events in it) into
    staged frames.

    :param dataset_id: LeadBoxer dataset id (the API's ``site``). (templated)
    :param segment_id: segment whose leads are synced. (templated)
    :param with_events: read the leads' events in the interval (activity sync) or only the leads
        active in it (leads sync).
    :param preflight: the preflight task's return value (pass ``preflight.output``): carried on to the run
        summary, which counts the Pipedrive tokens it spent.
    :param leadboxer_conn_id: Airflow connection to LeadBoxer. (templated)
    :param ledger_conn_id: Airflow connection to the ledger database, where LeadBoxer reads that can no
        longer change are kept for later runs (``extract.ReadCache``). (templated)
    :param read_cache_hours: how long those reads are kept; 0: keep none. (templated)
    :param staging_url: where frames are staged (default ``LEADBOXER_PIPEDRIVE_STAGING_URL`` or a folder
        in ``$AIRFLOW_HOME``). (templated)
    :param max_leads: stop after this many active leads (None: all). (templated)
    """

    template_fields: Sequence[str] = ("preflight", "dataset_id", "segment_id", "leadboxer_conn_id", "ledger_conn_id",
                                      "read_cache_hours", "staging_url", "max_leads")
    ui_color = "#e8f4fd"

    def __init__(self, *, dataset_id: str, segment_id: int | str | None, with_events: bool = True,
                 leadboxer_conn_id: str = "leadboxer_default", ledger_conn_id: str = "leadboxer_pipedrive_ledger",
                 read_cache_hours: float | str = 24, staging_url: str | None = None,
                 max_leads: int | str | None = None, preflight: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.preflight = preflight
        self.dataset_id = dataset_id
        self.segment_id = segment_id
        self.with_events = with_events
        self.leadboxer_conn_id = leadboxer_conn_id
        self.ledger_conn_id = ledger_conn_id
        self.read_cache_hours = read_cache_hours
        self.staging_url = staging_url
        self.max_leads = max_leads

    def execute(self, context) -> dict[str, Any]:
        from leadboxer_pipedrive.extract import ReadCache, fetch_window
        from leadboxer_pipedrive.frames import events_frame
        from leadboxer_pipedrive.hooks.leadboxer import LeadBoxerHook
        from leadboxer_pipedrive.hooks.ledger import LedgerHook
        from leadboxer_pipedrive.staging import run_folder, staging_root, write_frame

        start, end = data_interval(context)
        # str(): a DAG rendering templates as native objects could turn an all-digit id into an int.
        dataset_id = str(self.dataset_id or "").strip()
        if not dataset_id:
            raise AirflowFailException("dataset_id is empty: set the DAG's dataset_id Param")
        segment_id = self.segment_id if self.segment_id not in ("", "None", None) else None
        hook = LeadBoxerHook(self.leadboxer_conn_id)
        cache_hours = float(self.read_cache_hours or 0)
        cache = ReadCache(LedgerHook(self.ledger_conn_id), dataset_id, cache_hours) if cache_hours > 0 else None
        window = fetch_window(hook, dataset_id, segment_id, start, end, optional_int(self.max_leads),
                              with_events=self.with_events, read_cache=cache)
        leads = window.leads
        events = events_frame(window.events, leads, dataset_id)
        leads["dataset_id"] = dataset_id
        folder = run_folder(staging_root(self.staging_url), context["dag"].dag_id, context["run_id"])
        leads["segment_ids"] = leads["segment_ids"].map(list)
        requests = sum(hook.responses_by_status.values())
        self.log.info("Extracted %d leads and %d events for [%s, %s): %d LeadBoxer requests, %d reads kept "
                      "from earlier runs", len(leads), len(events), start, end, requests, cache.hits if cache else 0)
        return with_task_duration(context, {
            "entity": "event" if self.with_events else "lead",
            "dataset_id": dataset_id,
            "segment_id": str(segment_id),
            "interval_start": start.isoformat(),
            "interval_end": end.isoformat(),
            "leads": len(leads),
            "sessions_read": window.sessions_read,
            "leadboxer_requests": requests,
            "leadboxer_reads_kept": cache.hits if cache else 0,
            "extracted": len(events) if self.with_events else len(leads),
            "preflight": self.preflight,
            "staging_folder": str(folder),
            "leads_path": write_frame(leads, folder / "leads.parquet"),
            "events_path": write_frame(events, folder / "events.parquet"),
        })


class ValidateEventsOperator(BaseOperator):
    """Validates extracted events with great-expectations; failing rows go to the ledger with reasons.

    :param upstream: the extract task's return value (pass ``extract.output``). (templated)
    :param ledger_conn_id: Airflow connection to the ledger database. (templated)
    """

    template_fields: Sequence[str] = ("upstream", "ledger_conn_id")
    ui_color = "#fdf6e3"
    operator_extra_links = (ValidationReportLink(),)

    def __init__(self, *, upstream: Any, ledger_conn_id: str = "leadboxer_pipedrive_ledger",
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.upstream = upstream
        self.ledger_conn_id = ledger_conn_id

    def execute(self, context) -> dict[str, Any]:
        from leadboxer_pipedrive.staging import read_frame
        from leadboxer_pipedrive.validation import validate_events

        start, end = data_interval(context)
        outcome = validate_events(read_frame(self.upstream["events_path"]), to_ms(start), to_ms(end))
        return finish_validation(self, context, self.upstream, outcome, "event", self.ledger_conn_id, "")


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
        from leadboxer_pipedrive.staging import read_frame, write_frame
        from leadboxer_pipedrive.transforms import activity_payloads

        activities = activity_payloads(read_frame(self.upstream["valid_path"]), self.activity_type)
        return with_task_duration(context, {
            **self.upstream, "activities": len(activities),
            "payloads_path": write_frame(activities, staged_path(self.upstream, "activities.parquet"))})


class PipedriveActivityLoadOperator(BaseOperator):
    """Pushes activity rows to Pipedrive (person, organization, deal, activity) and records the run.

    :param upstream: the transform task's return value. (templated)
    :param pipeline_id: pipeline for new deals; empty: link existing open deals, never create. (templated)
    :param activity_mode: ``per_event`` (one activity per event) or ``digest`` (one per lead and
        hour, listing its events). (templated)
    :param organization_domain_field: name of a Pipedrive organization custom (text) field holding the
        domain: organizations are matched by it first and new ones get it; empty: none. (templated)
    :param workers: persons loaded concurrently; the hook's limiters keep the burst limits. (templated)
    :param dry_run: write nothing to Pipedrive; log and return the priced plan instead. (templated)
    :param max_rejected_share: fail the run when Pipedrive refuses more than this share of the rows.
    :param max_attempts: refusals before a row is quarantined (no more retries).
    :param pipedrive_conn_id: Airflow connection to Pipedrive. (templated)
    :param ledger_conn_id: Airflow connection to the ledger database. (templated)
    """

    template_fields: Sequence[str] = ("upstream", "pipeline_id", "activity_mode", "organization_domain_field",
                                      "workers", "dry_run", "max_rejected_share", "max_attempts",
                                      "pipedrive_conn_id", "ledger_conn_id")
    ui_color = "#fde8e8"

    def __init__(self, *, upstream: Any, pipeline_id: int | str | None = None, activity_mode: str = "per_event",
                 organization_domain_field: str | None = None, workers: int | str = 4, dry_run: bool | str = False,
                 max_rejected_share: float | str = 0.2, max_attempts: int | str = 3,
                 pipedrive_conn_id: str = "pipedrive_default",
                 ledger_conn_id: str = "leadboxer_pipedrive_ledger", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.upstream = upstream
        self.pipeline_id = pipeline_id
        self.activity_mode = activity_mode
        self.organization_domain_field = organization_domain_field
        self.workers = workers
        self.dry_run = dry_run
        self.max_rejected_share = max_rejected_share
        self.max_attempts = max_attempts
        self.pipedrive_conn_id = pipedrive_conn_id
        self.ledger_conn_id = ledger_conn_id

    def execute(self, context) -> dict[str, Any]:
        from leadboxer_pipedrive.hooks.ledger import LedgerHook
        from leadboxer_pipedrive.hooks.pipedrive import PipedriveHook
        from leadboxer_pipedrive.loading import ActivityLoader
        from leadboxer_pipedrive.loading.plan import plan_activity_load
        from leadboxer_pipedrive.staging import read_frame

        pipedrive = PipedriveHook(self.pipedrive_conn_id)
        ledger = LedgerHook(self.ledger_conn_id)
        settings = load_settings(context, self.upstream, pipeline_id=optional_int(self.pipeline_id),
                                 activity_mode=str(self.activity_mode or "per_event"),
                                 organization_domain_field=optional_text(self.organization_domain_field),
                                 workers=optional_int(self.workers) or 1,
                                 max_attempts=optional_int(self.max_attempts) or 1)
        frame = read_frame(self.upstream["payloads_path"])
        plan = plan_activity_load(frame, ledger, settings.dataset_id, settings.pipeline_id, settings.activity_mode,
                                  settings.organization_domain_field)
        priced = plan.as_dict(pipedrive.token_costs)
        if as_bool(self.dry_run):
            return finish_dry_run(self, context, ledger, self.upstream, priced,
                                  {**pipedrive.usage(), "spent_on": pipedrive.spent_on()})
        check_budget(ledger, pipedrive, priced["estimated_tokens"], self.log)
        try:
            result = ActivityLoader(pipedrive, ledger, settings).load(frame)
        finally:
            self.log.info("Pipedrive usage this try: %s", pipedrive.usage())
        return finish_run(self, context, ledger, self.upstream, result.as_dict(),
                          {**pipedrive.usage(), "spent_on": pipedrive.spent_on()},
                          estimated_tokens=priced["estimated_tokens"],
                          max_rejected_share=float(self.max_rejected_share))
