"""Builds the sync DAGs: the two standard DAGs and one DAG per entry of ``include/integrations.yaml``.

Parse-time code: Airflow's SDK and the operators' modules only (they import pandas and
great-expectations inside ``execute``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, BaseOperator, CronDataIntervalTimetable, CronTriggerTimetable, Param
from airflow.sdk.exceptions import AirflowFailException

from leadboxer_pipedrive.integrations import CONFIG_ERRORS_DAG_ID, DEFAULT_SCHEDULE, Integration
from leadboxer_pipedrive.notifications import LeadBoxerPipedriveFailureNotifier
from leadboxer_pipedrive.operators.activities import (
    LeadBoxerExtractOperator,
    PipedriveActivityLoadOperator,
    TransformActivitiesOperator,
    ValidateEventsOperator,
)
from leadboxer_pipedrive.operators.leads import (
    PipedriveLeadLoadOperator,
    TransformLeadsOperator,
    ValidateLeadsOperator,
)
from leadboxer_pipedrive.operators.preflight import SyncPreflightOperator
from leadboxer_pipedrive.segment_sync import DEFAULT_SEGMENT_SYNC_HOURS, SCOPES

SANDBOX_DATASET_ID = "07bacbd9d46a4e26b58b15d69f69250f"
START_DATE = datetime(2026, 11, 1)
DEFAULT_TAGS = ("leadboxer", "pipedrive")


# A failed task is tried twice more, 30 s and then 60 s later: with the hooks' own retries of each call
# (6 attempts, 0.5 to 8 s apart) a persistent outage (5xx, 429) fails a task within about three minutes.
# Errors that retrying cannot fix (credentials, settings, a host that cannot be reached) fail at once.
DEFAULT_RETRIES = 2


def default_args(on_failure_callback: Any = None, retries: int = DEFAULT_RETRIES) -> dict[str, Any]:
    """Retries for transient trouble, and the failure alert (``LeadBoxerPipedriveFailureNotifier``,
    to the log by default) on every task."""
    callbacks = on_failure_callback if on_failure_callback is not None else [LeadBoxerPipedriveFailureNotifier()]
    return {
        "retries": retries,
        "retry_delay": timedelta(seconds=30),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=10),
        "on_failure_callback": callbacks if isinstance(callbacks, list) else [callbacks],
    }


def _timetable(schedule: str) -> CronDataIntervalTimetable:
    # A plain cron string would give zero-width data intervals in Airflow 3.
    return CronDataIntervalTimetable(schedule, timezone="UTC")


def _sync_params(dataset_id: str, segment_id: int, segment_description: str,
                 organization_domain_field: str | None, **sync_params: Param) -> dict[str, Param]:
    """Both syncs' Params (the trigger form): the dataset and segment first, then the sync's own, then the
    trial knobs. Each has a title and a description; numbers are integer fields."""
    return {
        "dataset_id": Param(dataset_id, type="string", minLength=1, title="LeadBoxer dataset id",
                            description="The dataset (the API's site) whose leads are synced."),
        "segment_id": Param(int(segment_id), type="integer", minimum=1, title="LeadBoxer segment id",
                            description=segment_description),
        **sync_params,
        "organization_domain_field": Param(
            organization_domain_field, type=["null", "string"], title="Organization domain field",
            description="Pipedrive organization custom (text) field holding the domain: organizations are "
                        "matched by it before their name, and new ones get it. Empty: name only."),
        "dry_run": Param(False, type="boolean", title="Dry run",
                         description="Write nothing to Pipedrive: log and return the priced plan instead."),
        "max_leads": Param(None, type=["null", "integer"], minimum=1, title="At most this many leads",
                           description="Sync only the first N active leads (try it on a handful first)."),
    }


def _sync_dag(dag_id: str, *, description: str, doc_md: str | None, schedule: str, tags: Sequence[str],
              on_failure_callback: Any, retries: int, params: dict[str, Param], **dag_kwargs: Any) -> DAG:
    """An hourly sync DAG: real one-hour data intervals, one run at a time, retries and the alert. Params
    reach the operators as what they are (numbers, lists, None), not as text."""
    return DAG(
        dag_id=dag_id,
        description=description,
        doc_md=doc_md,
        schedule=_timetable(schedule),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args=default_args(on_failure_callback, retries),
        params=params,
        render_template_as_native_obj=True,
        tags=list(tags),
        **dag_kwargs,
    )


def _preflight_and_extract(leadboxer_conn_id: str, pipedrive_conn_id: str, ledger_conn_id: str, *,
                           with_events: bool, scope: dict[str, str] | None = None,
                           **checked: str) -> LeadBoxerExtractOperator:
    """The first two tasks: the preflight (``checked``: the sync's own settings to check), then the extract
    (``scope``: the leads sync's ``scope`` and ``segment_sync_hours``)."""
    connections = {"leadboxer_conn_id": leadboxer_conn_id, "ledger_conn_id": ledger_conn_id}
    preflight = SyncPreflightOperator(task_id="preflight", dataset_id="{{ params.dataset_id }}",
                                      segment_id="{{ params.segment_id }}",
                                      organization_domain_field="{{ params.organization_domain_field }}",
                                      pipedrive_conn_id=pipedrive_conn_id, **connections, **checked)
    return LeadBoxerExtractOperator(
        task_id="extract",
        preflight=preflight.output,
        dataset_id="{{ params.dataset_id }}",
        segment_id="{{ params.segment_id }}",
        max_leads="{{ params.max_leads }}",
        with_events=with_events,
        **(scope or {}),
        **connections,
    )


def build_activities_dag(dag_id: str, *, description: str, doc_md: str | None = None,
                         dataset_id: str = SANDBOX_DATASET_ID, segment_id: int = 14118,
                         pipeline_id: int | None = None, activity_type: str = "task",
                         activity_mode: str = "per_event", organization_domain_field: str | None = None,
                         custom_fields: dict[str, dict[str, str]] | None = None,
                         schedule: str = DEFAULT_SCHEDULE,
                         tags: Sequence[str] = DEFAULT_TAGS, leadboxer_conn_id: str = "leadboxer_default",
                         pipedrive_conn_id: str = "pipedrive_default",
                         ledger_conn_id: str = "leadboxer_pipedrive_ledger",
                         on_failure_callback: Any = None, retries: int = DEFAULT_RETRIES) -> DAG:
    """extract → validate → transform → load of LeadBoxer events as Pipedrive activities."""
    params = _sync_params(
        dataset_id, segment_id, "LeadBoxer segment whose email-identified leads are synced.", organization_domain_field,
        pipeline_id=Param(pipeline_id, type=["null", "integer"], minimum=1, title="Pipedrive pipeline id",
                          description="The pipeline new deals are created in; empty: never create deals, "
                                      "link a person's open deal only."),
        activity_type=Param(activity_type, type="string", minLength=1, title="Pipedrive activity type",
                            description="The activity type's key_string (task, or one you created)."),
        activity_mode=Param(activity_mode, enum=["per_event", "digest"], title="Activities",
                            description="One activity per event, or one per lead and hour (digest)."),
        custom_fields=Param(dict(custom_fields or {}), type="object", title="Custom fields",
                            description="Per record kind (person, organization, deal): LeadBoxer fact "
                                        "(lead_score, leadcard_url, first_channel, last_channel, visits, country, "
                                        "last_visit) → Pipedrive custom field name; the sync keeps them current. "
                                        'E.g. {"deal": {"lead_score": "LeadBoxer lead score"}}.'),
    )
    with _sync_dag(dag_id, description=description, doc_md=doc_md, schedule=schedule, tags=tags,
                   on_failure_callback=on_failure_callback, retries=retries, params=params) as dag:
        extract = _preflight_and_extract(leadboxer_conn_id, pipedrive_conn_id, ledger_conn_id, with_events=True,
                                         activity_type="{{ params.activity_type }}",
                                         pipeline_id="{{ params.pipeline_id }}",
                                         custom_fields="{{ params.custom_fields }}")
        validate = ValidateEventsOperator(task_id="validate", upstream=extract.output, ledger_conn_id=ledger_conn_id)
        transform = TransformActivitiesOperator(task_id="transform", upstream=validate.output,
                                                activity_type="{{ params.activity_type }}")
        PipedriveActivityLoadOperator(task_id="load", upstream=transform.output,
                                      pipeline_id="{{ params.pipeline_id }}",
                                      activity_mode="{{ params.activity_mode }}",
                                      custom_fields="{{ params.custom_fields }}",
                                      organization_domain_field="{{ params.organization_domain_field }}",
                                      dry_run="{{ params.dry_run }}",
                                      pipedrive_conn_id=pipedrive_conn_id, ledger_conn_id=ledger_conn_id)
    return dag


def build_leads_dag(dag_id: str, *, description: str, doc_md: str | None = None,
                    dataset_id: str = SANDBOX_DATASET_ID, segment_id: int = 14119, link_to: str = "both",
                    organization_domain_field: str | None = None,
                    segment_sync_hours: float = DEFAULT_SEGMENT_SYNC_HOURS,
                    schedule: str = DEFAULT_SCHEDULE, tags: Sequence[str] = DEFAULT_TAGS,
                    leadboxer_conn_id: str = "leadboxer_default", pipedrive_conn_id: str = "pipedrive_default",
                    ledger_conn_id: str = "leadboxer_pipedrive_ledger", on_failure_callback: Any = None,
                    retries: int = DEFAULT_RETRIES) -> DAG:
    """extract → validate → transform → load of a segment's leads as Pipedrive leads."""
    params = _sync_params(
        dataset_id, segment_id, "LeadBoxer segment whose leads become Pipedrive leads.", organization_domain_field,
        link_to=Param(link_to, enum=["organization", "person", "both"], title="Link each lead to",
                      description="What each Pipedrive lead is linked to."),
        title_template=Param("{organization_or_name} – LeadBoxer lead (score {score})", type="string",
                             title="Lead title",
                             description="Lead title; placeholders: {name} {organization} "
                                         "{organization_or_name} {email} {score} {country} {channel} {visits}."),
        lead_labels=Param([], type="array", items={"type": "string"}, title="Lead labels",
                          description="Lead label names put on every lead (must exist in Pipedrive)."),
        score_labels=Param({"Hot": 70, "Warm": 40, "Cold": 0}, type="object", title="Labels by lead score",
                           description="Lead label by minimum LeadBoxer score; {} for none."),
        custom_fields=Param({}, type="object", title="Custom fields",
                            description="LeadBoxer fact (lead_score, leadcard_url, first_channel, "
                                        "last_channel, visits, country) → Pipedrive deal field name."),
        owner_id=Param(None, type=["null", "integer"], minimum=1, title="Owner",
                       description="Id of the Pipedrive user owning new leads; empty: the token's user."),
        scope=Param("auto", enum=list(SCOPES), title="Leads read",
                    description="hour: the leads active in the hour; segment: every member of the segment; "
                                "auto: the whole segment on the first run, while a whole-segment sync is "
                                "unfinished and every segment_sync_hours, else the hour."),
        segment_sync_hours=Param(segment_sync_hours, type="number", minimum=0, title="Whole-segment sync every",
                                 description="Hours between whole-segment syncs with scope=auto (members who "
                                             "joined without activity); 0: only the first."),
    )
    with _sync_dag(dag_id, description=description, doc_md=doc_md, schedule=schedule, tags=tags,
                   on_failure_callback=on_failure_callback, retries=retries, params=params) as dag:
        extract = _preflight_and_extract(leadboxer_conn_id, pipedrive_conn_id, ledger_conn_id, with_events=False,
                                         scope={"scope": "{{ params.scope }}",
                                                "segment_sync_hours": "{{ params.segment_sync_hours }}"},
                                         lead_labels="{{ params.lead_labels }}",
                                         score_labels="{{ params.score_labels }}",
                                         custom_fields="{{ params.custom_fields }}")
        validate = ValidateLeadsOperator(task_id="validate", upstream=extract.output, link_to="{{ params.link_to }}",
                                         ledger_conn_id=ledger_conn_id)
        transform = TransformLeadsOperator(task_id="transform", upstream=validate.output,
                                           link_to="{{ params.link_to }}",
                                           title_template="{{ params.title_template }}",
                                           score_labels="{{ params.score_labels }}")
        PipedriveLeadLoadOperator(task_id="load", upstream=transform.output, link_to="{{ params.link_to }}",
                                  lead_labels="{{ params.lead_labels }}",
                                  custom_fields="{{ params.custom_fields }}",
                                  owner_id="{{ params.owner_id }}",
                                  organization_domain_field="{{ params.organization_domain_field }}",
                                  dry_run="{{ params.dry_run }}",
                                  pipedrive_conn_id=pipedrive_conn_id, ledger_conn_id=ledger_conn_id)
    return dag


def build_integration_dag(integration: Integration, on_failure_callback: Any = None) -> DAG:
    """The DAG ``leadboxer_pipedrive__<name>`` of one validated integration; its settings become the
    Params' defaults (a manual run may still override them)."""
    if on_failure_callback is None:
        on_failure_callback = [LeadBoxerPipedriveFailureNotifier(email_to=list(integration.alert_emails))]
    common = {
        "dataset_id": integration.dataset_id, "segment_id": integration.segment_id,
        "schedule": integration.schedule, "tags": [*DEFAULT_TAGS, "integration", *integration.tags],
        "leadboxer_conn_id": integration.leadboxer_conn_id, "pipedrive_conn_id": integration.pipedrive_conn_id,
        "ledger_conn_id": integration.ledger_conn_id, "on_failure_callback": on_failure_callback,
        "organization_domain_field": integration.organization_domain_field,
        "retries": DEFAULT_RETRIES if integration.retries is None else integration.retries,
    }
    doc = (f"### LeadBoxer → Pipedrive integration `{integration.name}`\n\n"
           f"Generated from `include/integrations.yaml` ({integration.sync} sync of dataset "
           f"`{integration.dataset_id}`, segment `{integration.segment_id}`; connections "
           f"`{integration.leadboxer_conn_id}`, `{integration.pipedrive_conn_id}`, `{integration.ledger_conn_id}`).")
    if integration.sync == "activities":
        return build_activities_dag(
            integration.dag_id, doc_md=doc,
            description=integration.description or f"{integration.name}: LeadBoxer events → Pipedrive activities",
            pipeline_id=integration.pipeline_id, activity_type=integration.activity_type,
            activity_mode=integration.activity_mode, custom_fields=integration.custom_fields, **common)
    return build_leads_dag(
        integration.dag_id, doc_md=doc,
        description=integration.description or f"{integration.name}: LeadBoxer segment leads → Pipedrive leads",
        link_to=integration.link_to, segment_sync_hours=integration.segment_sync_hours, **common)


class ReportConfigErrorsOperator(BaseOperator):
    """Fails (no retries) with the integrations file's errors, so they reach the failure alerts.

    :param errors: one message per bad entry.
    """

    ui_color = "#f8d7da"

    def __init__(self, *, errors: Sequence[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.errors = list(errors)

    def execute(self, context) -> None:
        for error in self.errors:
            self.log.error("%s", error)
        raise AirflowFailException(
            f"{len(self.errors)} integration(s) in include/integrations.yaml are invalid and have no DAG; fix them "
            "(the valid integrations run as usual):\n- " + "\n- ".join(self.errors))


def build_config_errors_dag(errors: Sequence[str], on_failure_callback: Any = None) -> DAG:
    """``leadboxer_pipedrive__config_errors``: one task that fails with every error, hourly (like the syncs
    the broken entries should have run), so the failure alerts keep saying what is broken until it is fixed."""
    listing = "\n".join(f"- {error}" for error in errors)
    with DAG(
        dag_id=CONFIG_ERRORS_DAG_ID,
        description=f"{len(errors)} invalid integration(s) in include/integrations.yaml",
        doc_md="### Invalid integrations\n\nThese entries of `include/integrations.yaml` produced no DAG; "
               "the others are unaffected.\n\n" + listing,
        schedule=CronTriggerTimetable(DEFAULT_SCHEDULE, timezone="UTC"),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args={**default_args(on_failure_callback), "retries": 0},
        tags=[*DEFAULT_TAGS, "integration", "config-error"],
    ) as dag:
        ReportConfigErrorsOperator(task_id="report_config_errors", errors=errors)
    return dag
