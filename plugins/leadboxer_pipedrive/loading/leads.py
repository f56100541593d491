"""Pushes lead rows: each LeadBoxer lead becomes exactly one Pipedrive lead, linked to its organization,
its person, or both; a known lead whose facts changed is updated, never duplicated."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from leadboxer_pipedrive.exceptions import ApiRequestError, SyncConfigurationError
from leadboxer_pipedrive.loading.claims import ClaimManager, ClaimOwner
from leadboxer_pipedrive.loading.common import LoadResult, LoadSettings, is_present, pending_retries, refuse_rows
from leadboxer_pipedrive.loading.fields import (
    FIELD_CODE_CHECK_SECONDS,
    Field,
    SyncFields,
    mapped_fields,
    organization_domain_field_code,
)
from leadboxer_pipedrive.loading.resolver import (
    PipedriveResolver,
    in_flight_seconds,
)

# LeadBoxer facts a user may map onto Pipedrive (deal) custom fields, by field name.
MAPPABLE_FACTS = ("lead_score", "leadcard_url", "first_channel", "last_channel", "visits", "country")


def lead_label_ids(pipedrive, ledger, names: set[str]) -> dict[str, str]:
    """Every Pipedrive lead label by name (remembered in the ledger for a day, read again when one of
    ``names`` is not among them); a clear error when one of ``names`` does not exist."""
    def read() -> dict[str, str]:
        return {label["name"]: label["id"] for label in pipedrive.list_lead_labels()}
    labels = _remembered(ledger, LEAD_LABELS_FACT, read, still_good=lambda known: names <= set(known))
    missing = names - set(labels)
    if missing:
        raise SyncConfigurationError(
            f"lead label(s) {sorted(missing)} do not exist in Pipedrive; existing: {sorted(labels)} "
            "(create them, or change the lead_labels/score_labels Params)")
    return labels


def deal_fields(pipedrive, ledger, custom_fields: Mapping[str, str]) -> dict[str, Field]:
    """LeadBoxer fact → the Pipedrive deal custom field ``custom_fields`` maps it to (leads use deal
    fields); a clear error for an unknown fact or field."""
    return mapped_fields(pipedrive, ledger, {"deal": custom_fields}, MAPPABLE_FACTS).get("deal", {})


LEAD_LABELS_FACT = "pipedrive_lead_labels"


def _remembered(ledger, fact: str, read, still_good) -> Any:
    """What ``read()`` returns (JSON), remembered in the ledger for a day; read again before then when
    ``still_good(remembered)`` says it lacks something (a label or field made since)."""
    remembered = ledger.fresh_fact(fact, FIELD_CODE_CHECK_SECONDS)
    if remembered is not None and still_good(known := json.loads(remembered)):
        return known
    value = read()
    ledger.remember_fact(fact, json.dumps(value))
    return value


class LeadLoader:
    """Loads the lead rows of one run.

    :param link_to: ``organization``, ``person`` or ``both``.
    :param label_names: lead labels put on every lead, by name (plus each row's ``score_label``).
    :param custom_fields: LeadBoxer fact → Pipedrive deal custom field name (leads share deal fields).
    :param owner_id: Pipedrive user owning new leads (None: the token's user).
    """

    def __init__(self, pipedrive, ledger, settings: LoadSettings, *, link_to: str,
                 label_names: Sequence[str] = (), custom_fields: Mapping[str, str] | None = None,
                 owner_id: int | None = None, claims: ClaimManager | None = None) -> None:
        self.claims = claims or ClaimManager(ledger, ClaimOwner(settings.dag_id, settings.run_id,
                                                                settings.task_id, settings.try_number),
                                                     settle_seconds=in_flight_seconds(pipedrive))
        self.pipedrive = pipedrive
        self.ledger = ledger
        self.settings = settings
        self.link_to = link_to
        self.label_names = list(label_names)
        self.custom_fields = dict(custom_fields or {})
        self.owner_id = owner_id
        self._label_ids: dict[str, str] = {}
        self._fields: dict[str, Field] = {}
        self._domain_field_code: str | None = None

    # -- configuration checks ---------------------------------------------------------------------
    def resolve_configuration(self, needed_labels: set[str]) -> None:
        """Label names → ids and custom field names → codes; a clear error for anything unknown."""
        self._fields = deal_fields(self.pipedrive, self.ledger, self.custom_fields)
        wanted_labels = set(self.label_names) | needed_labels
        if wanted_labels:
            self._label_ids = lead_label_ids(self.pipedrive, self.ledger, wanted_labels)
        domain_field = self.settings.organization_domain_field
        if domain_field and self.link_to in ("organization", "both"):
            self._domain_field_code = organization_domain_field_code(self.pipedrive, self.ledger, domain_field)

    # -- loading ----------------------------------------------------------------------------------
    def load(self, leads: pd.DataFrame) -> LoadResult:
        """Push this window's leads, and retry leads Pipedrive refused in earlier runs."""
        result = LoadResult(received=len(leads))
        leads = leads.assign(_retry=False)
        retried = pending_retries(self.ledger, self.settings, "lead", set(leads["use_id"]))
        if not retried.empty:
            result.count("retries_pending", len(retried))
            leads = pd.concat([leads, retried], ignore_index=True)
        if leads.empty:
            return result
        self.resolve_configuration(set(leads["score_label"].dropna().unique()))
        known = self.ledger.leads_by_use_id(self.settings.dataset_id, leads["use_id"].tolist())
        resolver = PipedriveResolver(self.pipedrive, self.ledger, result, self.claims, self.settings.dataset_id,
                                     fields=SyncFields(domain_field_code=self._domain_field_code))
        resolver.preload(leads["email"].dropna().unique().tolist(), leads["org_key"].dropna().unique().tolist(),
                         leads["use_id"].dropna().unique().tolist())
        for _, row in leads.iterrows():
            try:
                self._push_lead(row, known.get(row["use_id"]), resolver, result)
            except ApiRequestError as exc:
                refuse_rows(self.ledger, self.settings, result, row.to_frame().T, "lead", "use_id",
                            f"Pipedrive refused the lead or its person/organization: {exc.detail}")
        self.ledger.clear_retries(self.settings.dataset_id, "lead", result.pushed_ids)
        return result

    def _push_lead(self, row: pd.Series, known: dict | None, resolver: PipedriveResolver,
                   result: LoadResult) -> None:
        person_id, org_id = self._links(row, resolver)
        fingerprint = lead_fingerprint(row, person_id, org_id, self.label_names, self.custom_fields, self.owner_id)
        retry = bool(row.get("_retry", False))
        dataset, use_id = self.settings.dataset_id, row["use_id"]
        if known and known["fingerprint"] == fingerprint:
            _count_unchanged(result, retry)
            result.mark_pushed([use_id])
            return
        with self.claims.claim(f"lead:{dataset}:{use_id}") as takeover:
            known = self.ledger.leads_by_use_id(dataset, [use_id]).get(use_id)  # another run may have done it
            if known and known["fingerprint"] == fingerprint:
                _count_unchanged(result, retry)
                return
            lead = self._write_lead(row, known, person_id, org_id, takeover, resolver, result)
            self.ledger.remember_lead(dataset_id=dataset, use_id=use_id, lead_id=lead["id"],
                                      person_id=person_id, org_id=org_id, fingerprint=fingerprint)
        result.count("retries_pushed" if retry else "pushed")
        result.mark_pushed([use_id])

    def _links(self, row: pd.Series, resolver: PipedriveResolver) -> tuple[int | None, int | None]:
        """The (person id, organization id) the lead is linked to, as ``link_to`` says."""
        org_id = resolver.organization(row) if self.link_to in ("organization", "both") else None
        if self.link_to not in ("person", "both") or not is_present(row["email"]):
            return None, org_id
        person = resolver.person(row["email"], row, link_organization=self.link_to == "both")
        if self.link_to == "both" and org_id is None:
            org_id = person.org_id
        return person.person_id, org_id

    def _write_lead(self, row: pd.Series, known: dict | None, person_id: int | None, org_id: int | None,
                    takeover: int | None, resolver: PipedriveResolver, result: LoadResult) -> dict[str, Any]:
        """Update the lead the ledger (or, after a takeover, our marker) knows, else create it."""
        body = self.lead_body(row, person_id, org_id)
        marker = f"leadboxer:{row['use_id']}"
        links = {"person_id": person_id} if person_id else {"organization_id": org_id}

        def marked_lead(_since=None) -> dict[str, Any] | None:
            return next((lead for lead in self.pipedrive.list_leads(**links) if lead.get("origin_id") == marker), None)
        lead_id = known["lead_id"] if known else None
        if lead_id is None and takeover is not None:
            # A killed try may have created it: leads carry our marker in origin_id.
            lead_id = (marked_lead() or {}).get("id")
            result.count("reconciled_lookups")
        if lead_id:
            lead = self.pipedrive.update_lead(lead_id, {**body, "person_id": person_id, "organization_id": org_id})
            result.count("leads_updated")
            return lead
        lead = resolver.create_or_reconcile(lambda: self.pipedrive.create_lead({**body, "origin_id": marker}),
                                            marked_lead)
        result.count("leads_created")
        return lead

    def lead_body(self, row: pd.Series, person_id: int | None, org_id: int | None) -> dict[str, Any]:
        body: dict[str, Any] = {"title": row["title"]}
        if person_id:
            body["person_id"] = int(person_id)
        if org_id:
            body["organization_id"] = int(org_id)
        labels = [*self.label_names, *([row["score_label"]] if is_present(row["score_label"]) else [])]
        body["label_ids"] = [self._label_ids[name] for name in dict.fromkeys(labels)]
        if self.owner_id:
            body["owner_id"] = int(self.owner_id)
        for fact, field in self._fields.items():
            value = field.value(row[fact]) if is_present(row[fact]) else None
            if value is not None:
                body[field.code] = value
        return body


def lead_fingerprint(row: pd.Series, person_id: int | None, org_id: int | None, label_names: Sequence[str],
                     custom_fields: Mapping[str, str], owner_id: int | None) -> str:
    """A digest of what a lead would be sent, by names rather than Pipedrive ids, so a plan made from
    the ledger alone can tell an unchanged lead from a changed one."""
    labels = [*label_names, *([row["score_label"]] if is_present(row["score_label"]) else [])]
    logical = {
        "title": row["title"], "person_id": person_id, "org_id": org_id, "labels": list(dict.fromkeys(labels)),
        "owner_id": owner_id,
        "fields": {fact: (str(row[fact]) if is_present(row[fact]) else None) for fact in sorted(custom_fields)},
    }
    return hashlib.sha256(json.dumps(logical, sort_keys=True, default=str).encode()).hexdigest()


def plan_lead_load(leads: pd.DataFrame, ledger, dataset_id: str, *, link_to: str, label_names: Sequence[str] = (),
                   custom_fields: Mapping[str, str] | None = None, owner_id: int | None = None,
                   organization_domain_field: str | None = None):
    """The priced plan of :meth:`LeadLoader.load` for these rows, from the ledger alone."""
    from leadboxer_pipedrive.loading.plan import CREATE_LEAD, LEAD_LABELS, UPDATE_LEAD, Planner

    planner = Planner(ledger, dataset_id, None,
                      organization_domain_field if link_to in ("organization", "both") else None,
                      {"deal": dict(custom_fields or {})})
    plan = planner.plan
    if leads.empty:
        return plan
    if (label_names or leads["score_label"].notna().any()) \
            and not ledger.fresh_fact(LEAD_LABELS_FACT, FIELD_CODE_CHECK_SECONDS):
        plan.calls[LEAD_LABELS] += 1
    planner.price_field_lists(leads)
    known_leads = ledger.leads_by_use_id(dataset_id, leads["use_id"].tolist())
    planner.preload(leads["email"].dropna().unique().tolist(), leads["org_key"].dropna().unique().tolist())
    for _, row in leads.iterrows():
        person_id, org_id = _planned_links(planner, row, link_to)
        known_lead = known_leads.get(row["use_id"])
        fingerprint = lead_fingerprint(row, person_id, org_id, label_names, custom_fields or {}, owner_id)
        if known_lead and known_lead["fingerprint"] == fingerprint:
            plan.already_pushed += 1
        elif known_lead:
            plan.calls[UPDATE_LEAD] += 1
            plan.creates["lead_updates"] += 1
        else:
            plan.calls[CREATE_LEAD] += 1
            plan.creates["leads"] += 1
            plan.sample("leads", {"title": row["title"], "email": row.get("email"),
                                  "organization": row.get("org_name")})
    return plan


def _planned_links(planner, row: pd.Series, link_to: str) -> tuple[int | None, int | None]:
    """The (person id, organization id) the ledger already knows for the lead (None: to be created)."""
    org_id = None
    if link_to in ("organization", "both") and planner.organization(row):
        org_id = planner.org_id(row["org_key"])
    if link_to not in ("person", "both") or not is_present(row["email"]):
        return None, org_id
    known, _ = planner.person(row["email"], row, link_organization=link_to == "both")
    if link_to == "both" and org_id is None and known:
        org_id = known.get("org_id")
    return (known or {}).get("person_id"), org_id


def _count_unchanged(result: LoadResult, retry: bool) -> None:
    result.count("retries_already_pushed" if retry else "already_pushed")
    result.count("leads_unchanged")
