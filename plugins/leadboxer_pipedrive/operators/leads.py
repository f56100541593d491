"""Operators of the leads sync: (extract, shared with the activity sync) → validate → transform → load."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator

from leadboxer_pipedrive.operators.common import (
    ValidationReportLink,
    as_bool,
    as_dict,
    as_list,
    check_budget,
    finish_dry_run,
    finish_run,
    finish_validation,
    load_settings,
    optional_int,
    optional_text,
    staged_path,
    with_task_duration,
)


class ValidateLeadsOperator(BaseOperator):
    """Validates extracted leads for the chosen linking; failing rows go to the ledger with reasons.

    :param upstream: the extract task's return value. (templated)
    :param link_to: ``organization``, ``person`` or ``both``. (templated)
    :param ledger_conn_id: Airflow connection to the ledger database. (templated)
    """

    template_fields: Sequence[str] = ("upstream", "link_to", "ledger_conn_id")
    ui_color = "#fdf6e3"
    operator_extra_links = (ValidationReportLink(),)

    def __init__(self, *, upstream: Any, link_to: str = "both",
                 ledger_conn_id: str = "leadboxer_pipedrive_ledger", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.upstream = upstream
        self.link_to = link_to
        self.ledger_conn_id = ledger_conn_id

    def execute(self, context) -> dict[str, Any]:
        from leadboxer_pipedrive.staging import read_frame
        from leadboxer_pipedrive.validation import validate_leads

        outcome = validate_leads(read_frame(self.upstream["leads_path"]), self.link_to)
        return finish_validation(self, context, self.upstream, outcome, "lead", self.ledger_conn_id, "_leads")


class TransformLeadsOperator(BaseOperator):
    """Turns valid leads into Pipedrive lead rows: title, score label, the facts to link and map.

    :param upstream: the validate task's return value. (templated)
    :param link_to: ``organization``, ``person`` or ``both``. (templated)
    :param title_template: e.g. ``{organization_or_name} – LeadBoxer lead (score {score})``. (templated)
    :param score_labels: label name → minimum lead score, e.g. ``{"Hot": 70, "Warm": 40, "Cold": 0}``;
        empty: no score label. (templated)
    """

    template_fields: Sequence[str] = ("upstream", "link_to", "title_template", "score_labels")
    ui_color = "#eef8e8"

    def __init__(self, *, upstream: Any, link_to: str = "both", title_template: str | None = None,
                 score_labels: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.upstream = upstream
        self.link_to = link_to
        self.title_template = title_template
        self.score_labels = score_labels

    def execute(self, context) -> dict[str, Any]:
        from leadboxer_pipedrive.staging import read_frame, write_frame
        from leadboxer_pipedrive.transforms import DEFAULT_LEAD_TITLE, lead_payloads

        rows = lead_payloads(read_frame(self.upstream["valid_path"]), self.link_to,
                             self.title_template or DEFAULT_LEAD_TITLE, as_dict(self.score_labels))
        return with_task_duration(context, {
            **self.upstream, "payloads_path": write_frame(rows, staged_path(self.upstream, "leads_out.parquet"))})


class PipedriveLeadLoadOperator(BaseOperator):
    """Creates or updates one Pipedrive lead per LeadBoxer lead and records the run.

    :param upstream: the transform task's return value. (templated)
    :param link_to: ``organization``, ``person`` or ``both``. (templated)
    :param lead_labels: lead label names put on every lead. (templated)
    :param custom_fields: LeadBoxer fact → Pipedrive deal custom field name. (templated)
    :param owner_id: Pipedrive user owning new leads. (templated)
    :param organization_domain_field: name of a Pipedrive organization custom (text) field holding the
        domain: organizations are matched by it first and new ones get it; empty: none. (templated)
    :param dry_run: write nothing to Pipedrive; log and return the priced plan instead. (templated)
    :param max_rejected_share: fail the run when Pipedrive refuses more than this share of the rows.
    :param max_attempts: refusals before a row is quarantined (no more retries).
    :param pipedrive_conn_id: Airflow connection to Pipedrive. (templated)
    :param ledger_conn_id: Airflow connection to the ledger database. (templated)
    """

    template_fields: Sequence[str] = ("upstream", "link_to", "lead_labels", "custom_fields", "owner_id",
                                      "organization_domain_field", "dry_run", "max_rejected_share", "max_attempts",
                                      "pipedrive_conn_id", "ledger_conn_id")
    ui_color = "#fde8e8"

    def __init__(self, *, upstream: Any, link_to: str = "both", lead_labels: Any = None,
                 custom_fields: Any = None, owner_id: Any = None, organization_domain_field: str | None = None,
                 dry_run: bool | str = False,
                 max_rejected_share: float | str = 0.2, max_attempts: int | str = 3,
                 pipedrive_conn_id: str = "pipedrive_default",
                 ledger_conn_id: str = "leadboxer_pipedrive_ledger", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dry_run = dry_run
        self.max_rejected_share = max_rejected_share
        self.max_attempts = max_attempts
        self.upstream = upstream
        self.link_to = link_to
        self.lead_labels = lead_labels
        self.custom_fields = custom_fields
        self.owner_id = owner_id
        self.organization_domain_field = organization_domain_field
        self.pipedrive_conn_id = pipedrive_conn_id
        self.ledger_conn_id = ledger_conn_id

    def execute(self, context) -> dict[str, Any]:
        from leadboxer_pipedrive.hooks.ledger import LedgerHook
        from leadboxer_pipedrive.hooks.pipedrive import PipedriveHook
        from leadboxer_pipedrive.loading import LeadLoader
        from leadboxer_pipedrive.loading.leads import plan_lead_load
        from leadboxer_pipedrive.staging import read_frame

        pipedrive = PipedriveHook(self.pipedrive_conn_id)
        ledger = LedgerHook(self.ledger_conn_id)
        settings = load_settings(context, self.upstream, max_attempts=optional_int(self.max_attempts) or 1,
                                 organization_domain_field=optional_text(self.organization_domain_field))
        options = {"link_to": self.link_to, "label_names": as_list(self.lead_labels),
                   "custom_fields": as_dict(self.custom_fields), "owner_id": optional_int(self.owner_id)}
        frame = read_frame(self.upstream["payloads_path"])
        priced = plan_lead_load(frame, ledger, settings.dataset_id, **options,
                                organization_domain_field=settings.organization_domain_field,
                                ).as_dict(pipedrive.token_costs)
        if as_bool(self.dry_run):
            return finish_dry_run(self, context, ledger, self.upstream, priced,
                                  {**pipedrive.usage(), "spent_on": pipedrive.spent_on()})
        check_budget(ledger, pipedrive, priced["estimated_tokens"], self.log)
        try:
            result = LeadLoader(pipedrive, ledger, settings, **options).load(frame)
        finally:
            self.log.info("Pipedrive usage this try: %s", pipedrive.usage())
        return finish_run(self, context, ledger, self.upstream, result.as_dict(),
                          {**pipedrive.usage(), "spent_on": pipedrive.spent_on()},
                          estimated_tokens=priced["estimated_tokens"],
                          max_rejected_share=float(self.max_rejected_share))
