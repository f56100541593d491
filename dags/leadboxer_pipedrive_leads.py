"""
### LeadBoxer → Pipedrive: leads sync

Every hour, on the hour, for the data interval that just ended: each lead of the LeadBoxer segment
that was active in the interval becomes exactly one Pipedrive lead, linked as `link_to` says:

- `organization`: the lead's organization (found by exact name, else created);
- `person`: the person with the lead's email (found, else created); a lead without a known email is
  rejected with that reason, never pushed with a made-up person;
- `both`: the organization, and the person where an email is known, the person linked to the
  organization. A lead with an organization but no email becomes an organization-only lead; a lead with
  an email but no organization a person-only lead; a lead with neither is rejected.

A known lead whose facts changed (organization identified later, email learned, score changed) is
updated and re-linked, never duplicated: the ledger maps each LeadBoxer `use_id` to its Pipedrive lead.
LeadBoxer's lead score reaches the title and a score label (Hot/Warm/Cold by default); lead score,
lead-card link, first and last channel, visits and country can be mapped onto Pipedrive custom fields
(`custom_fields` Param: fact → field name; leads use the deal fields).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, CronDataIntervalTimetable, Param

from leadboxer_pipedrive.operators.activities import LeadBoxerExtractOperator
from leadboxer_pipedrive.operators.leads import (
    PipedriveLeadLoadOperator,
    TransformLeadsOperator,
    ValidateLeadsOperator,
)

with DAG(
    dag_id="leadboxer_pipedrive_leads",
    description="LeadBoxer segment leads → Pipedrive leads, hourly",
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
        "segment_id": Param(14119, type=["integer", "string"],
                            description="LeadBoxer segment whose leads become Pipedrive leads."),
        "link_to": Param("both", enum=["organization", "person", "both"],
                         description="What each Pipedrive lead is linked to."),
        "title_template": Param("{organization_or_name} – LeadBoxer lead (score {score})", type="string",
                                description="Lead title; placeholders: {name} {organization} "
                                            "{organization_or_name} {email} {score} {country} {channel} {visits}."),
        "lead_labels": Param([], type="array", items={"type": "string"},
                             description="Lead label names put on every lead (must exist in Pipedrive)."),
        "score_labels": Param({"Hot": 70, "Warm": 40, "Cold": 0}, type="object",
                              description="Lead label by minimum LeadBoxer score; {} for none."),
        "custom_fields": Param({}, type="object",
                               description="LeadBoxer fact (lead_score, leadcard_url, first_channel, "
                                           "last_channel, visits, country) → Pipedrive deal field name."),
        "owner_id": Param(None, type=["null", "integer"], description="Pipedrive user owning new leads."),
        "dry_run": Param(False, type="boolean",
                         description="Write nothing to Pipedrive: log and return the priced plan instead."),
        "max_leads": Param(None, type=["null", "integer"], minimum=1,
                           description="Sync only the first N active leads (try it on a handful first)."),
    },
    render_template_as_native_obj=True,
    tags=["leadboxer", "pipedrive"],
) as dag:
    extract = LeadBoxerExtractOperator(
        task_id="extract",
        dataset_id="{{ params.dataset_id }}",
        segment_id="{{ params.segment_id }}",
        max_leads="{{ params.max_leads }}",
        with_events=False,
    )
    validate = ValidateLeadsOperator(task_id="validate", upstream=extract.output, link_to="{{ params.link_to }}")
    transform = TransformLeadsOperator(task_id="transform", upstream=validate.output,
                                       link_to="{{ params.link_to }}",
                                       title_template="{{ params.title_template }}",
                                       score_labels="{{ params.score_labels }}")
    load = PipedriveLeadLoadOperator(task_id="load", upstream=transform.output, link_to="{{ params.link_to }}",
                                     lead_labels="{{ params.lead_labels }}",
                                     custom_fields="{{ params.custom_fields }}",
                                     owner_id="{{ params.owner_id }}",
                                     dry_run="{{ params.dry_run }}")
