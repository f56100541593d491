"""Operators of the leads sync: (extract, shared with the activity sync) → validate → transform → load."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator

from leadboxer_pipedrive.operators.common import (
    PipedriveLoadOperator,
    SyncOperator,
    ValidationReportLink,
    finish_validation,
    staged_path,
    with_task_duration,
)


class ValidateLeadsOperator(SyncOperator):
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
        return finish_validation(self, context, self.upstream, outcome, "lead", "_leads")


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
                             self.title_template or DEFAULT_LEAD_TITLE, dict(self.score_labels or {}))
        return with_task_duration(context, {
            **self.upstream, "payloads_path": write_frame(rows, staged_path(self.upstream, "leads_out.parquet"))})


class PipedriveLeadLoadOperator(PipedriveLoadOperator):
    """Creates or updates one Pipedrive lead per LeadBoxer lead and records the run.

    :param link_to: ``organization``, ``person`` or ``both``. (templated)
    :param lead_labels: lead label names put on every lead. (templated)
    :param custom_fields: LeadBoxer fact → Pipedrive deal custom field name. (templated)
    :param owner_id: Pipedrive user owning new leads; None: the token's user. (templated)

    The other parameters: see :class:`~leadboxer_pipedrive.operators.common.PipedriveLoadOperator`.
    """

    template_fields: Sequence[str] = (*PipedriveLoadOperator.template_fields, "link_to", "lead_labels",
                                      "custom_fields", "owner_id")

    def __init__(self, *, link_to: str = "both", lead_labels: list[str] | None = None,
                 custom_fields: dict[str, str] | None = None, owner_id: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.link_to = link_to
        self.lead_labels = lead_labels
        self.custom_fields = custom_fields
        self.owner_id = owner_id

    @property
    def options(self) -> dict[str, Any]:
        return {"link_to": self.link_to, "label_names": list(self.lead_labels or []),
                "custom_fields": dict(self.custom_fields or {}), "owner_id": self.owner_id}

    def plan(self, frame, settings):
        from leadboxer_pipedrive.loading.leads import plan_lead_load

        return plan_lead_load(frame, self.ledger_hook, settings.dataset_id, **self.options,
                              organization_domain_field=settings.organization_domain_field)

    def loader(self, settings):
        from leadboxer_pipedrive.loading import LeadLoader

        return LeadLoader(self.pipedrive_hook, self.ledger_hook, settings, **self.options)
