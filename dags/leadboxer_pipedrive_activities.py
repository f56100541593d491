"""
### LeadBoxer → Pipedrive: activity sync

Every hour, on the hour, for the data interval that just ended (a run at 06:00 syncs
[05:00, 06:00) UTC): each behavioural event (page view, email open/click, form submit...) of the
segment's email-identified leads becomes a Pipedrive activity on the lead's person, the person's
organization and the person's open deal. Persons and organizations are found first and created only
when missing; deals are created only when `pipeline_id` is set. Those records are kept current: fields
empty in Pipedrive are filled from LeadBoxer (never one someone typed), and the `custom_fields` Param maps
LeadBoxer facts onto person, organization and deal fields the sync keeps up to date (README, "Keeping
Pipedrive records current").

Tasks: **preflight** (both connections answer; the segment, pipeline and activity type exist: a setting
that cannot work fails here, at once, naming what to fix) → **extract** (LeadBoxer → staged frames) →
**validate** (great-expectations; failing rows go to the ledger with their reason) → **transform**
(activity payloads) → **load** (Pipedrive, recorded in the ledger, so a re-run or backfill pushes
nothing twice). The load task's log and return value hold the run summary: extracted = pushed + already
pushed + rejected.

**Trying it on the sandboxes** (`make airflow`): trigger it with the logical date
`2026-11-20T06:00:00+00:00`, which syncs [05:00, 06:00) of the sandbox's generated day (a manual run's
logical date is its interval's end; the form's default, now, finds nothing there). Leave "Unpause" off
when triggering: an unpaused DAG also runs every hour for the hour that just ended.

Connections: `leadboxer_default`, `pipedrive_default`, and optionally `leadboxer_pipedrive_ledger`
(default: a SQLite file in `$AIRFLOW_HOME`).

Failures alert through `LeadBoxerPipedriveFailureNotifier` (the log by default; see the README,
"Alerts"). The DAG is built by `leadboxer_pipedrive.dag_factory`, shared with the generated integration DAGs.
"""

from __future__ import annotations

from leadboxer_pipedrive.dag_factory import build_activities_dag

dag = build_activities_dag(
    "leadboxer_pipedrive_activities",
    description="LeadBoxer behavioural events → Pipedrive activities, hourly",
    doc_md=__doc__,
)
