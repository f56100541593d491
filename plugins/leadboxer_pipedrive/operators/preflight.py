"""The first task of every sync DAG: the run's connections answer and what its settings name exists."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from leadboxer_pipedrive.operators.common import SyncOperator


class SyncPreflightOperator(SyncOperator):
    """Checks, before anything is read or written, that both connections answer and authenticate, that the
    LeadBoxer dataset holds the segment, and that what the settings name exists in Pipedrive (the
    pipeline and its first stage, the activity type, lead labels, custom fields). A failure fails the run
    at once, not retried, with one sentence naming what to fix (see ``leadboxer_pipedrive.preflight``).

    :param dataset_id: LeadBoxer dataset id. (templated)
    :param segment_id: the segment synced. (templated)
    :param activity_type: activity type ``key_string`` (activity sync). (templated)
    :param pipeline_id: pipeline new deals go to (activity sync). (templated)
    :param organization_domain_field: organization custom field holding the domain. (templated)
    :param lead_labels: lead label names the run puts on leads (leads sync). (templated)
    :param score_labels: label name → minimum score (leads sync); the names must exist. (templated)
    :param custom_fields: LeadBoxer fact → deal field name (leads sync). (templated)
    :param leadboxer_conn_id: Airflow connection to LeadBoxer. (templated)
    :param pipedrive_conn_id: Airflow connection to Pipedrive. (templated)
    :param ledger_conn_id: the ledger, where slow checks are remembered for a day. (templated)
    """

    template_fields: Sequence[str] = ("dataset_id", "segment_id", "activity_type", "pipeline_id",
                                      "organization_domain_field", "lead_labels", "score_labels", "custom_fields",
                                      "leadboxer_conn_id", "pipedrive_conn_id", "ledger_conn_id")
    ui_color = "#f0f0f0"

    def __init__(self, *, dataset_id: str, segment_id: int | str | None, activity_type: str | None = None,
                 pipeline_id: int | str | None = None, organization_domain_field: str | None = None,
                 lead_labels: Any = None, score_labels: Any = None, custom_fields: Any = None,
                 leadboxer_conn_id: str = "leadboxer_default", pipedrive_conn_id: str = "pipedrive_default",
                 ledger_conn_id: str = "leadboxer_pipedrive_ledger", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dataset_id = dataset_id
        self.segment_id = segment_id
        self.activity_type = activity_type
        self.pipeline_id = pipeline_id
        self.organization_domain_field = organization_domain_field
        self.lead_labels = lead_labels
        self.score_labels = score_labels
        self.custom_fields = custom_fields
        self.leadboxer_conn_id = leadboxer_conn_id
        self.pipedrive_conn_id = pipedrive_conn_id
        self.ledger_conn_id = ledger_conn_id

    def execute(self, context) -> dict[str, Any]:
        from leadboxer_pipedrive.preflight import check_leadboxer, check_pipedrive

        dataset_id = str(self.dataset_id or "").strip()
        if not dataset_id:
            raise AirflowFailException("dataset_id is empty: set the DAG's dataset_id Param")
        pipedrive = self.pipedrive_hook
        segment_id = None if self.segment_id is None else str(self.segment_id)
        found = [check_leadboxer(self.leadboxer_hook, dataset_id, segment_id)]
        found += check_pipedrive(pipedrive, self.ledger_hook,
                                 activity_type=self.activity_type or None, pipeline_id=self.pipeline_id,
                                 organization_domain_field=self.organization_domain_field or None,
                                 lead_labels=[*(self.lead_labels or []), *(self.score_labels or {})],
                                 custom_fields=dict(self.custom_fields or {}))
        usage = pipedrive.usage()
        self.log.info("Preflight: all set.\n%s\nPipedrive: %d tokens, %d requests (%s)",
                      "\n".join(f"  - {line}" for line in found), usage["tokens_spent"], usage["requests"],
                      pipedrive.spent_on() or "nothing")
        return {"checked": found, "pipedrive_tokens": usage["tokens_spent"], "pipedrive_requests": usage["requests"],
                "pipedrive_spent_on": pipedrive.spent_on()}
