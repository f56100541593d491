"""Pushes activity rows to Pipedrive: person, organization and deal resolved once per email, then one
activity per event, each recorded in the ledger as soon as Pipedrive has it.

Resolution order, cheapest first: the ledger (free), then Pipedrive search (20 tokens), then create
(5 tokens). Ids learned are written to the ledger so the next run starts from them.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from leadboxer_pipedrive.exceptions import ApiRequestError

log = logging.getLogger(__name__)


@dataclass
class LoadSettings:
    dataset_id: str
    dag_id: str
    run_id: str
    pipeline_id: int | None = None  # None: link existing open deals, never create one


@dataclass
class Person:
    person_id: int
    org_id: int | None
    is_new: bool


@dataclass
class LoadResult:
    received: int = 0
    pushed: int = 0
    already_pushed: int = 0
    refused: int = 0
    counts: Counter = field(default_factory=Counter)
    refusals: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"received": self.received, "pushed": self.pushed, "already_pushed": self.already_pushed,
                "refused": self.refused, **dict(sorted(self.counts.items()))}


class ActivityLoader:
    """Loads the rows of one run. ``pipedrive`` is a PipedriveHook, ``ledger`` a LedgerHook."""

    def __init__(self, pipedrive, ledger, settings: LoadSettings) -> None:
        self.pipedrive = pipedrive
        self.ledger = ledger
        self.settings = settings
        self._org_ids: dict[str, int] = {}
        self._first_stage_id: int | None = None

    # -- entry point ------------------------------------------------------------------------------
    def load(self, activities: pd.DataFrame) -> LoadResult:
        result = LoadResult(received=len(activities))
        if activities.empty:
            return result
        done = self.ledger.pushed_event_ids(self.settings.dataset_id, activities["event_id"].tolist())
        result.already_pushed = int(activities["event_id"].isin(done).sum())
        todo = activities[~activities["event_id"].isin(done)]
        if todo.empty:
            return result
        self._check_activity_types(set(todo["type"].unique()))

        known_people = self.ledger.persons_by_email(todo["email"].unique().tolist())
        known_orgs = self.ledger.organizations_by_key(todo["org_key"].dropna().unique().tolist())
        self._org_ids.update({key: row["org_id"] for key, row in known_orgs.items()})

        for email, rows in todo.groupby("email", sort=True):
            facts = rows.iloc[0]
            try:
                person = self._resolve_person(email, facts, known_people.get(email), result)
                deal_id = self._resolve_deal(person, facts, result)
            except ApiRequestError as exc:
                self._refuse(rows, f"Pipedrive refused the person/organization/deal: {exc.detail}", result)
                continue
            for row in rows.itertuples(index=False):
                self._push_activity(row, person, deal_id, result)
        return result

    # -- organizations ----------------------------------------------------------------------------
    def _resolve_org(self, facts: pd.Series, result: LoadResult) -> int | None:
        key = facts["org_key"]
        if pd.isna(key):
            return None
        if key in self._org_ids:
            return self._org_ids[key]
        name = facts["org_name"]
        found = self.pipedrive.find_organization_by_name(name)
        if found:
            org_id = found["id"]
            result.counts["organizations_found"] += 1
        else:
            org_id = self.pipedrive.create_organization(organization_payload(facts))["id"]
            result.counts["organizations_created"] += 1
        self.ledger.remember_organization(key, org_id, name)
        self._org_ids[key] = org_id
        return org_id

    # -- persons ----------------------------------------------------------------------------------
    def _resolve_person(self, email: str, facts: pd.Series, known: dict | None, result: LoadResult) -> Person:
        if known:
            result.counts["persons_from_ledger"] += 1
            person = Person(known["person_id"], known["org_id"], is_new=False)
        else:
            found = self.pipedrive.find_person_by_email(email)
            if found:
                result.counts["persons_found"] += 1
                org = found.get("organization") or {}
                person = Person(found["id"], org.get("id"), is_new=False)
            else:
                org_id = self._resolve_org(facts, result)
                created = self.pipedrive.create_person(person_payload(facts, org_id))
                result.counts["persons_created"] += 1
                self.ledger.remember_person(email, created["id"], org_id)
                return Person(created["id"], org_id, is_new=True)
        if person.org_id is None and not pd.isna(facts["org_key"]):
            # A person without an organization gets the one LeadBoxer identified, linked.
            person.org_id = self._resolve_org(facts, result)
            self.pipedrive.update_person(person.person_id, {"org_id": person.org_id})
            result.counts["persons_linked_to_organization"] += 1
        if not known or known["org_id"] != person.org_id:
            self.ledger.remember_person(email, person.person_id, person.org_id)
        return person

    # -- deals ------------------------------------------------------------------------------------
    def _resolve_deal(self, person: Person, facts: pd.Series, result: LoadResult) -> int | None:
        known = self.ledger.deals_by_person([person.person_id]).get(person.person_id)
        if known:
            return known["deal_id"]
        deal = None
        if not person.is_new:  # a person created a moment ago has no deals yet
            deal = self.pipedrive.find_open_deal_for_person(person.person_id)
            if deal:
                result.counts["deals_found"] += 1
        if deal is None and self.settings.pipeline_id:
            if self._first_stage_id is None:
                self._first_stage_id = self.pipedrive.first_stage_id(self.settings.pipeline_id)
            deal = self.pipedrive.create_deal({
                "title": deal_title(facts),
                "person_id": person.person_id,
                **({"org_id": person.org_id} if person.org_id else {}),
                "pipeline_id": int(self.settings.pipeline_id),
                "stage_id": self._first_stage_id,
            })
            result.counts["deals_created"] += 1
        if deal is None:
            return None
        self.ledger.remember_deal(person.person_id, deal["id"], deal.get("pipeline_id"))
        return deal["id"]

    # -- activities -------------------------------------------------------------------------------
    def _push_activity(self, row: Any, person: Person, deal_id: int | None, result: LoadResult) -> None:
        payload = activity_payload(row, person, deal_id)
        try:
            activity = self.pipedrive.create_activity(payload)
        except ApiRequestError as exc:
            self._refuse(pd.DataFrame([row._asdict()]), f"Pipedrive refused the activity: {exc.detail}", result)
            return
        self.ledger.record_pushed_event(
            dataset_id=self.settings.dataset_id, event_id=row.event_id, use_id=row.use_id,
            activity_id=activity["id"], person_id=person.person_id, org_id=person.org_id, deal_id=deal_id,
            event_time=f"{row.due_date}T{row.due_time}", run_id=self.settings.run_id)
        result.pushed += 1

    def _refuse(self, rows: pd.DataFrame, reason: str, result: LoadResult) -> None:
        log.warning("%d row(s) refused: %s", len(rows), reason)
        records = [{"dag_id": self.settings.dag_id, "run_id": self.settings.run_id, "entity": "event",
                    "record_id": str(r["event_id"]), "use_id": r.get("use_id"), "reason": reason[:1000],
                    "record": json.dumps({"email": r.get("email"), "subject": r.get("subject")}, default=str)}
                   for r in rows.to_dict("records")]
        self.ledger.record_rejections(records)
        result.refused += len(rows)
        result.refusals.extend({"event_id": r["record_id"], "reason": reason} for r in records)

    def _check_activity_types(self, wanted: set[str]) -> None:
        available = {t.get("key_string") for t in self.pipedrive.list_activity_types() if t.get("active_flag", True)}
        missing = wanted - available
        if missing:
            raise ValueError(f"activity type(s) {sorted(missing)} do not exist in Pipedrive; available: "
                             f"{sorted(a for a in available if a)} (set the DAG's activity_type Param)")


# -- payload builders (pure) ----------------------------------------------------------------------
def person_payload(facts: pd.Series, org_id: int | None) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "name": facts["person_name"],
        "emails": [{"value": facts["email"], "primary": True, "label": "work"}],
    }
    if not pd.isna(facts.get("phone")):
        payload["phones"] = [{"value": facts["phone"], "primary": True, "label": "work"}]
    if org_id:
        payload["org_id"] = int(org_id)
    return payload


def organization_payload(facts: pd.Series) -> dict[str, Any]:
    payload: dict[str, Any] = {"name": facts["org_name"]}
    if not pd.isna(facts.get("org_address")):
        payload["address"] = {"value": facts["org_address"]}
    domain = facts.get("org_domain")
    if not pd.isna(domain) and domain:
        payload["website"] = domain if "://" in domain else f"https://{domain}"
    if not pd.isna(facts.get("org_linkedin")):
        payload["linkedin"] = facts["org_linkedin"]
    return payload


def deal_title(facts: pd.Series) -> str:
    who = facts["org_name"] if not pd.isna(facts.get("org_name")) else facts["person_name"]
    return f"{who} – LeadBoxer"[:255]


def activity_payload(row: Any, person: Person, deal_id: int | None) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "subject": row.subject,
        "type": row.type,
        "due_date": row.due_date,
        "due_time": row.due_time,
        "done": bool(row.done),
        "note": row.note,
        "participants": [{"person_id": int(person.person_id), "primary": True}],
    }
    if person.org_id:
        payload["org_id"] = int(person.org_id)
    if deal_id:
        payload["deal_id"] = int(deal_id)
    return payload
