"""Preflight: what a sync run needs, checked before anything is read or written.

Each check either says in one line what it found, or raises an error that names what to fix and is never
retried (``SyncConfigurationError``, and the hooks' ``ApiAuthError`` / ``ApiUnreachableError``): an
unknown segment fails the run at once instead of giving an empty, green one. What is slow and rarely
changes (activity types, a pipeline's first stage, custom fields) is remembered in the ledger for a day
(the loaders read the same facts); the connections are asked every run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from leadboxer_pipedrive.exceptions import SyncConfigurationError
from leadboxer_pipedrive.frames import segment_id_text
from leadboxer_pipedrive.loading.activities import check_activity_types
from leadboxer_pipedrive.loading.fields import FIELD_CODE_CHECK_SECONDS, mapped_fields, organization_domain_field_code
from leadboxer_pipedrive.loading.leads import deal_fields, lead_label_ids
from leadboxer_pipedrive.loading.updates import ACTIVITY_FACTS


def check_leadboxer(hook, dataset_id: str, segment_id: int | str | None) -> str:
    """The LeadBoxer connection answers with the API key, the dataset is one of its datasets and holds
    the segment (LeadBoxer's segments list; one request, no Pipedrive tokens)."""
    segments = [s for s in hook.list_segments(dataset_id) if isinstance(s, dict)]
    if not segments:
        raise SyncConfigurationError(
            f"LeadBoxer lists no segments for dataset {dataset_id!r}: it is not a dataset of the API key in "
            f"connection {hook.conn_id!r}, or it has no segments (check the dataset_id Param)")
    if segment_id is None:
        return f"LeadBoxer dataset {dataset_id} answers (no segment: every lead)"
    names = {segment_id_text(s.get("segmentId")): str(s.get("name") or "") for s in segments}
    wanted = segment_id_text(segment_id)
    if wanted not in names:
        listed = ", ".join(f"{sid} ({name})" for sid, name in names.items())
        raise SyncConfigurationError(
            f"LeadBoxer segment {segment_id} does not exist in dataset {dataset_id!r}; its segments: {listed} "
            "(set the segment_id Param to one of them)")
    return f"LeadBoxer dataset {dataset_id} answers; segment {wanted} ({names[wanted]}) exists"


def check_pipedrive(pipedrive, ledger, *, activity_type: str | None = None, pipeline_id: int | None = None,
                    organization_domain_field: str | None = None, lead_labels: Iterable[str] = (),
                    custom_fields: Mapping[str, Any] | None = None) -> list[str]:
    """The Pipedrive connection answers with its token, and what the settings name exists there.

    ``custom_fields``: the leads sync's (fact → deal field name), or the activity sync's (record kind →
    fact → field name)."""
    user = pipedrive.get_current_user() or {}
    found = [f"Pipedrive answers as {user.get('name') or user.get('email') or 'the token owner'} "
             f"({user.get('company_domain') or user.get('company_name') or pipedrive.base_url})"]
    if activity_type:
        check_activity_types(pipedrive, ledger, {activity_type})
        found.append(f"activity type {activity_type!r} exists")
    if pipeline_id:
        found.append(f"pipeline {pipeline_id} exists (first stage {first_stage_id(pipedrive, ledger, pipeline_id)})")
    if organization_domain_field:
        organization_domain_field_code(pipedrive, ledger, organization_domain_field)
        found.append(f"organization field {organization_domain_field!r} exists")
    labels = set(lead_labels)
    if labels:
        lead_label_ids(pipedrive, ledger, labels)
        found.append(f"lead labels {sorted(labels)} exist")
    if custom_fields and all(isinstance(names, Mapping) for names in custom_fields.values()):
        for entity, fields in mapped_fields(pipedrive, ledger, custom_fields, ACTIVITY_FACTS).items():
            found.append(f"{entity} fields {sorted(f.name for f in fields.values())} exist")
    elif custom_fields:
        deal_fields(pipedrive, ledger, custom_fields)
        found.append(f"deal fields {sorted(custom_fields.values())} exist")
    return found


def first_stage_id(pipedrive, ledger, pipeline_id: int) -> int:
    """The pipeline's first stage, remembered in the ledger for a day (``PipedriveHook.first_stage_id``
    names a pipeline that does not exist)."""
    fact = f"pipeline_first_stage:{pipeline_id}"
    known = ledger.fresh_fact(fact, FIELD_CODE_CHECK_SECONDS)
    if known:
        return int(known)
    stage_id = pipedrive.first_stage_id(pipeline_id)
    ledger.remember_fact(fact, str(stage_id))
    return stage_id
