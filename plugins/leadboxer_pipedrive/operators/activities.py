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
    PipedriveLoadOperator,
    SyncOperator,
    ValidationReportLink,
    data_interval,
    finish_validation,
    record_rejections,
    staged_path,
    to_ms,
    with_task_duration,
)


class LeadBoxerExtractOperator(SyncOperator):
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
    :param scope: leads sync only (``with_events`` False): ``hour`` reads the leads active in the interval,
        ``segment`` every lead of the segment, ``auto`` decides (``segment_sync.scope_of_run``). (templated)
    :param segment_sync_hours: with ``auto``, how old the last whole-segment sync may get before the next
        (0: only the first one and unfinished ones). (templated)
    """

    template_fields: Sequence[str] = ("preflight", "dataset_id", "segment_id", "leadboxer_conn_id", "ledger_conn_id",
                                      "read_cache_hours", "staging_url", "max_leads", "scope", "segment_sync_hours")
    ui_color = "#e8f4fd"

    def __init__(self, *, dataset_id: str, segment_id: int | str | None, with_events: bool = True,
                 leadboxer_conn_id: str = "leadboxer_default", ledger_conn_id: str = "leadboxer_pipedrive_ledger",
                 read_cache_hours: float | str = 24, staging_url: str | None = None,
                 max_leads: int | str | None = None, preflight: Any = None, scope: str = "auto",
                 segment_sync_hours: float = 24, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scope = scope
        self.segment_sync_hours = segment_sync_hours
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
        from leadboxer_pipedrive.extract import ReadCache, fetch_segment, fetch_window
        from leadboxer_pipedrive.frames import events_frame, leads_without_id
        from leadboxer_pipedrive.segment_sync import scope_of_run
        from leadboxer_pipedrive.staging import run_folder, staging_root, write_frame

        start, end = data_interval(context)
        # str(): a DAG rendering templates as native objects could turn an all-digit id into an int.
        dataset_id = str(self.dataset_id or "").strip()
        if not dataset_id:
            raise AirflowFailException("dataset_id is empty: set the DAG's dataset_id Param")
        hook = self.leadboxer_hook
        cache_hours = float(self.read_cache_hours or 0)
        cache = ReadCache(self.ledger_hook, dataset_id, cache_hours) if cache_hours > 0 else None
        scope, why = ("hour", "events are read by the hour") if self.with_events else scope_of_run(
            self.ledger_hook, dataset_id, self.segment_id, self.scope or "auto", float(self.segment_sync_hours or 0))
        self.log.info("Reading %s: %s", "the whole segment" if scope == "segment" else "the hour", why)
        if scope == "segment":
            window = fetch_segment(hook, dataset_id, self.segment_id, self.max_leads)
        else:
            window = fetch_window(hook, dataset_id, self.segment_id, start, end, self.max_leads,
                                  with_events=self.with_events, read_cache=cache)
        leads = window.leads
        events = events_frame(window.events, leads, dataset_id)
        leads["dataset_id"] = dataset_id
        without_id = len(leads_without_id(leads)) if self.with_events else 0  # in extracted: see validate
        folder = run_folder(staging_root(self.staging_url), context["dag"].dag_id, context["run_id"])
        leads["segment_ids"] = leads["segment_ids"].map(list)
        requests = sum(hook.responses_by_status.values())
        self.log.info("Extracted %d leads and %d events for [%s, %s): %d LeadBoxer requests, %d reads kept "
                      "from earlier runs", len(leads), len(events), start, end, requests, cache.hits if cache else 0)
        return with_task_duration(context, {
            "entity": "event" if self.with_events else "lead",
            "scope": scope,
            "dataset_id": dataset_id,
            "segment_id": str(self.segment_id),
            "interval_start": start.isoformat(),
            "interval_end": end.isoformat(),
            "leads": len(leads),
            "sessions_read": window.sessions_read,
            "leadboxer_requests": requests,
            "leadboxer_reads_kept": cache.hits if cache else 0,
            "extracted": len(events) + without_id if self.with_events else len(leads),
            "leads_without_id": without_id,
            "preflight": self.preflight,
            "staging_folder": str(folder),
            "leads_path": write_frame(leads, folder / "leads.parquet"),
            "events_path": write_frame(events, folder / "events.parquet"),
        })


class ValidateEventsOperator(SyncOperator):
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
        from leadboxer_pipedrive.validation import REASON_LEAD_ID_MISSING, reject_leads_without_id, validate_events

        start, end = data_interval(context)
        # The segment's leads without an id: no event of theirs could be read; each is rejected as a lead.
        without_id = reject_leads_without_id(read_frame(self.upstream["leads_path"]))
        record_rejections(self.ledger_hook, context, without_id, "lead")
        outcome = validate_events(read_frame(self.upstream["events_path"]), to_ms(start), to_ms(end))
        validated = finish_validation(self, context, self.upstream, outcome, "event", "")
        if len(without_id):
            reasons = dict(validated["rejected_by_reason"])
            reasons[REASON_LEAD_ID_MISSING] = reasons.get(REASON_LEAD_ID_MISSING, 0) + len(without_id)
            validated.update(rejected=validated["rejected"] + len(without_id), rejected_by_reason=reasons)
        return validated


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


class PipedriveActivityLoadOperator(PipedriveLoadOperator):
    """Pushes activity rows to Pipedrive (person, organization, deal, activity) and records the run.

    :param pipeline_id: pipeline for new deals; None: link existing open deals, never create. (templated)
    :param activity_mode: ``per_event`` (one activity per event) or ``digest`` (one per lead and
        hour, listing its events). (templated)
    :param workers: persons loaded concurrently; the hook's limiters keep the burst limits. (templated)
    :param custom_fields: record kind (``person``, ``organization``, ``deal``) → LeadBoxer fact → Pipedrive
        custom field name; those fields are the sync's own and follow the fact. (templated)

    The other parameters: see :class:`~leadboxer_pipedrive.operators.common.PipedriveLoadOperator`.
    """

    template_fields: Sequence[str] = (*PipedriveLoadOperator.template_fields, "pipeline_id", "activity_mode",
                                      "workers", "custom_fields")

    def __init__(self, *, pipeline_id: int | None = None, activity_mode: str = "per_event", workers: int = 4,
                 custom_fields: dict[str, dict[str, str]] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pipeline_id = pipeline_id
        self.activity_mode = activity_mode
        self.workers = workers
        self.custom_fields = custom_fields

    def load_settings(self, context, **overrides: Any):
        from leadboxer_pipedrive.loading.fields import mapping_by_entity

        return super().load_settings(context, pipeline_id=self.pipeline_id, activity_mode=self.activity_mode,
                                     workers=self.workers, custom_fields=mapping_by_entity(self.custom_fields),
                                     **overrides)

    def plan(self, frame, settings):
        from leadboxer_pipedrive.loading.plan import plan_activity_load

        return plan_activity_load(frame, self.ledger_hook, settings.dataset_id, settings.pipeline_id,
                                  settings.activity_mode, settings.organization_domain_field, settings.custom_fields,
                                  self.pipedrive_hook.token_costs if settings.account_index else None)

    def loader(self, settings):
        from leadboxer_pipedrive.loading import ActivityLoader

        return ActivityLoader(self.pipedrive_hook, self.ledger_hook, settings)
