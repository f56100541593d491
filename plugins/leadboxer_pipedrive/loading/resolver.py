"""Finds or creates the Pipedrive organization, person and deal for LeadBoxer records.

Cheapest first: the ledger (free), then Pipedrive search (20 tokens), then create (5 tokens). Every id
learned goes to the ledger so later runs start from it. One resolver serves one run: it also caches
what it resolved, so two leads of one company in a run resolve to one organization.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd


@dataclass
class Person:
    person_id: int
    org_id: int | None
    is_new: bool


class PipedriveResolver:
    """``pipedrive`` is a PipedriveHook, ``ledger`` a LedgerHook; ``counts`` a Counter to report into."""

    def __init__(self, pipedrive, ledger, counts) -> None:
        self.pipedrive = pipedrive
        self.ledger = ledger
        self.counts = counts
        self._org_ids: dict[str, int] = {}
        self._people: dict[str, dict[str, Any]] = {}
        self._first_stage_ids: dict[int, int] = {}

    def preload(self, emails: list[str], org_keys: list[str]) -> None:
        """Read the ledger's ids for a whole batch in two queries instead of one per record."""
        self._people.update(self.ledger.persons_by_email(emails))
        self._org_ids.update({key: row["org_id"] for key, row in self.ledger.organizations_by_key(org_keys).items()})

    # -- organizations ----------------------------------------------------------------------------
    def organization(self, facts: pd.Series) -> int | None:
        """The organization of ``facts`` (columns org_key, org_name, ...), or None when it has none."""
        key = facts.get("org_key")
        if key is None or pd.isna(key):
            return None
        if key in self._org_ids:
            return self._org_ids[key]
        known = self.ledger.organizations_by_key([key]).get(key)
        if known:
            self._org_ids[key] = known["org_id"]
            return known["org_id"]
        name = facts["org_name"]
        found = self.pipedrive.find_organization_by_name(name)
        if found:
            org_id = found["id"]
            self.counts["organizations_found"] += 1
        else:
            org_id = self.pipedrive.create_organization(organization_payload(facts))["id"]
            self.counts["organizations_created"] += 1
        self.ledger.remember_organization(key, org_id, name)
        self._org_ids[key] = org_id
        return org_id

    # -- persons ----------------------------------------------------------------------------------
    def person(self, email: str, facts: pd.Series, *, link_organization: bool = True) -> Person:
        """The person with ``email``; a person without an organization gets the one LeadBoxer knows."""
        known = self._people.get(email)
        if known is None:
            known = self.ledger.persons_by_email([email]).get(email)
        if known:
            self.counts["persons_from_ledger"] += 1
            person = Person(known["person_id"], known["org_id"], is_new=False)
        else:
            found = self.pipedrive.find_person_by_email(email)
            if found:
                self.counts["persons_found"] += 1
                person = Person(found["id"], (found.get("organization") or {}).get("id"), is_new=False)
            else:
                org_id = self.organization(facts) if link_organization else None
                created = self.pipedrive.create_person(person_payload(facts, org_id))
                self.counts["persons_created"] += 1
                person = Person(created["id"], org_id, is_new=True)
        if link_organization and person.org_id is None:
            org_id = self.organization(facts)
            if org_id is not None:
                self.pipedrive.update_person(person.person_id, {"org_id": int(org_id)})
                self.counts["persons_linked_to_organization"] += 1
                person.org_id = org_id
        if not known or known["org_id"] != person.org_id:
            self.ledger.remember_person(email, person.person_id, person.org_id)
        self._people[email] = {"email": email, "person_id": person.person_id, "org_id": person.org_id}
        return person

    # -- deals ------------------------------------------------------------------------------------
    def open_deal(self, person: Person, facts: pd.Series, pipeline_id: int | None) -> int | None:
        """The person's open deal: ledger, else Pipedrive, else created in ``pipeline_id`` (if set)."""
        known = self.ledger.deals_by_person([person.person_id]).get(person.person_id)
        if known:
            return known["deal_id"]
        deal = None
        if not person.is_new:  # a person created a moment ago has no deals yet
            deal = self.pipedrive.find_open_deal_for_person(person.person_id)
            if deal:
                self.counts["deals_found"] += 1
        if deal is None and pipeline_id:
            if pipeline_id not in self._first_stage_ids:
                self._first_stage_ids[pipeline_id] = self.pipedrive.first_stage_id(pipeline_id)
            deal = self.pipedrive.create_deal({
                "title": deal_title(facts),
                "person_id": int(person.person_id),
                **({"org_id": int(person.org_id)} if person.org_id else {}),
                "pipeline_id": int(pipeline_id),
                "stage_id": self._first_stage_ids[pipeline_id],
            })
            self.counts["deals_created"] += 1
        if deal is None:
            return None
        self.ledger.remember_deal(person.person_id, deal["id"], deal.get("pipeline_id"))
        return deal["id"]


# -- payload builders (pure) ----------------------------------------------------------------------
def is_present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and pd.isna(value)) and value is not pd.NA \
        and value != ""


def person_payload(facts: pd.Series, org_id: int | None) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "name": facts["person_name"],
        "emails": [{"value": facts["email"], "primary": True, "label": "work"}],
    }
    if is_present(facts.get("phone")):
        payload["phones"] = [{"value": facts["phone"], "primary": True, "label": "work"}]
    if org_id:
        payload["org_id"] = int(org_id)
    return payload


def organization_payload(facts: pd.Series) -> dict[str, Any]:
    payload: dict[str, Any] = {"name": facts["org_name"]}
    if is_present(facts.get("org_address")):
        payload["address"] = {"value": facts["org_address"]}
    domain = facts.get("org_domain")
    if is_present(domain):
        payload["website"] = domain if "://" in domain else f"https://{domain}"
    if is_present(facts.get("org_linkedin")):
        payload["linkedin"] = facts["org_linkedin"]
    return payload


def deal_title(facts: pd.Series) -> str:
    who = facts.get("org_name") if is_present(facts.get("org_name")) else facts["person_name"]
    return f"{who} – LeadBoxer"[:255]
