"""
### LeadBoxer → Pipedrive: activity sync

Every hour, on the hour, for the data interval that just ended (a run at 06:00 syncs
[05:00, 06:00) UTC): each behavioural event (page view, email open/click, form submit...) of the
segment's email-identified leads becomes a Pipedrive activity on the lead's person, the person's
organization and the person's open deal. Persons and organizations are found first and created only
when missing; deals are created only when `pipeline_id` is set.

Tasks: **extract** (LeadBoxer → staged frames) → **validate** (great-expectations; failing rows go to
the ledger with their reason) → **transform** (activity payloads) → **load** (Pipedrive, recorded in the
ledger, so a re-run or backfill pushes nothing twice). The load task's log and return value hold the
run summary: extracted = pushed + already pushed + rejected.

Connections: `leadboxer_default`, `pipedrive_default`, and optionally `leadboxer_pipedrive_ledger`
(default: a SQLite file in `$AIRFLOW_HOME`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, CronDataIntervalTimetable, Param

from leadboxer_pipedrive.operators.activities import (
    LeadBoxerExtractOperator,
    PipedriveActivityLoadOperator,
    TransformActivitiesOperator,
    ValidateEventsOperator,
)

with DAG(
    dag_id="leadboxer_pipedrive_activities",
    description="LeadBoxer behavioural events → Pipedrive activities, hourly",
    doc_md=__doc__,
    # A plain "0 * * * *" would give zero-width data intervals in Airflow 3.
    schedule=CronDataIntervalTimetable("0 * * * *", timezone="UTC"),
    start_date=datetime(2026, 11, 1),
    catchup=False,
    max_active_runs=1,
    default_args={
        "retries": 3,
        "retry_delay": timedelta(seconds=30),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=10),
    },
    params={
        "dataset_id": Param("07bacbd9d46a4e26b58b15d69f69250f", type="string", minLength=1,
                            description="LeadBoxer dataset id (the API's site)."),
        "segment_id": Param(14118, type=["integer", "string"],
                            description="LeadBoxer segment whose email-identified leads are synced."),
        "pipeline_id": Param(None, type=["null", "integer", "string"],
                             description="Pipedrive pipeline for new deals; empty: never create deals."),
        "activity_type": Param("task", type="string", minLength=1,
                               description="Pipedrive activity type key_string for the activities."),
        "activity_mode": Param("per_event", enum=["per_event", "digest"],
                               description="One activity per event, or one per lead and hour (digest)."),
        "dry_run": Param(False, type="boolean",
                         description="Write nothing to Pipedrive: log and return the priced plan instead."),
        "max_leads": Param(None, type=["null", "integer"], minimum=1,
                           description="Sync only the first N active leads (try it on a handful first)."),
    },
    tags=["leadboxer", "pipedrive"],
) as dag:
    extract = LeadBoxerExtractOperator(
        task_id="extract",
        dataset_id="{{ params.dataset_id }}",
        segment_id="{{ params.segment_id }}",
        max_leads="{{ params.max_leads }}",
    )
    validate = ValidateEventsOperator(task_id="validate", upstream=extract.output)
    transform = TransformActivitiesOperator(task_id="transform", upstream=validate.output,
                                            activity_type="{{ params.activity_type }}")
    load = PipedriveActivityLoadOperator(task_id="load", upstream=transform.output,
                                         pipeline_id="{{ params.pipeline_id }}",
                                         activity_mode="{{ params.activity_mode }}",
                                     dry_run="{{ params.dry_run }}")
