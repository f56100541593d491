"""A priced plan: what a load would create and what it would cost, computed from the rows and the
ledger alone, before anything is written (dry runs report it; real runs check it against the budget).

Records the ledger does not know are found the way the load will find them (``account_index.choose_way``,
from the same ledger): through the account index, priced at the pages its read is expected to take, a
key found there as found and one it lacks as a create; or priced as "search, then create" (the usual case
for new leads), where a person that turns out to exist costs a deals listing instead of a create (and,
when LeadBoxer knows facts of it, a read and maybe an update), so estimates stay close. What others
create in Pipedrive between runs a plan cannot know. A known person, organization or deal whose facts
changed since the sync last looked is priced an update (5 tokens), after a read (1) when a filled field
changed (``loading.updates``): exact when those fields are empty or the sync's own, one
update too many when someone typed a value the sync keeps. Refused updates queued by earlier runs are
priced the same way, and so are the field lists the load reads (``loading.fields``).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from leadboxer_pipedrive.loading.account_index import (
    LISTS,
    IndexState,
    choose_way,
    indexed_organizations,
    indexed_persons,
    searches_needed,
)
from leadboxer_pipedrive.loading.fields import ENTITIES, Field, SyncFields, cached_fields, lists_needed, needs_reading
from leadboxer_pipedrive.loading.resolver import organizations_to_look_up, update_entity
from leadboxer_pipedrive.loading.updates import (
    changed,
    mapped_values,
    organization_fields,
    organization_rows,
    person_fields,
    with_last_visit,
)

SEARCH_PERSON = ("GET", "/api/v2/persons/search")
CREATE_PERSON = ("POST", "/api/v2/persons")
UPDATE_PERSON = ("PATCH", "/api/v2/persons/{id}")
GET_PERSON = ("GET", "/api/v2/persons/{id}")
UPDATE_ORG = ("PATCH", "/api/v2/organizations/{id}")
GET_ORG = ("GET", "/api/v2/organizations/{id}")
SEARCH_ORG = ("GET", "/api/v2/organizations/search")
CREATE_ORG = ("POST", "/api/v2/organizations")
LIST_DEALS = ("GET", "/api/v2/deals")
CREATE_DEAL = ("POST", "/api/v2/deals")
LIST_STAGES = ("GET", "/api/v2/stages")
CREATE_ACTIVITY = ("POST", "/api/v2/activities")
ACTIVITY_TYPES = ("GET", "/api/v1/activityTypes")
CREATE_LEAD = ("POST", "/api/v1/leads")
UPDATE_LEAD = ("PATCH", "/api/v1/leads/{id}")
LEAD_LABELS = ("GET", "/api/v1/leadLabels")
UPDATE_DEAL = ("PATCH", "/api/v2/deals/{id}")
DEAL_FIELDS = ("GET", "/api/v2/dealFields")
ORGANIZATION_FIELDS = ("GET", "/api/v2/organizationFields")
PERSON_FIELDS = ("GET", "/api/v2/personFields")
FIELD_LISTS = {"person": PERSON_FIELDS, "organization": ORGANIZATION_FIELDS, "deal": DEAL_FIELDS}
# What keeping a record current costs: a read (for the filled fields' values), then an update.
RECORD_CALLS = {"person": (GET_PERSON, UPDATE_PERSON), "organization": (GET_ORG, UPDATE_ORG),
                "deal": (None, UPDATE_DEAL)}


# Before the load has ever read an account's field lists, the plan takes its account-dependent fields to exist.
UNREAD_FIELDS = {"person": {"job_title": Field("Job title", "job_title", "varchar", False)},
                 "organization": {"industry": Field("Industry", "industry", "varchar", False)},
                 "deal": {}}


@dataclass
class LoadPlan:
    calls: Counter = field(default_factory=Counter)
    creates: Counter = field(default_factory=Counter)
    updates: Counter = field(default_factory=Counter)
    already_pushed: int = 0
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    ways: dict[str, dict[str, Any]] = field(default_factory=dict)  # how each entity's keys are found, and why

    def tokens(self, costs: dict[tuple[str, str], int]) -> int:
        return sum(costs[call] * count for call, count in self.calls.items())

    def sample(self, kind: str, payload: dict[str, Any], limit: int = 3) -> None:
        bucket = self.samples.setdefault(kind, [])
        if len(bucket) < limit:
            bucket.append(payload)

    def as_dict(self, costs: dict[tuple[str, str], int]) -> dict[str, Any]:
        return {"would_create": dict(self.creates), "would_update": dict(self.updates),
                "already_pushed": self.already_pushed,
                "estimated_tokens": self.tokens(costs),
                "calls": {f"{m} {p}": n for (m, p), n in sorted(self.calls.items())},
                "finding": self.ways, "samples": self.samples}


class Planner:
    """Prices resolutions against the ledger, remembering what the plan already "created".

    ``mapping``: record kind → LeadBoxer fact → field name (the activity sync's ``custom_fields``; the
    leads sync's deal fields). Field codes come from the field lists the ledger remembers, however old
    (a plan never reads Pipedrive); a field whose list was never read is priced as changed.
    """

    def __init__(self, ledger, dataset_id: str, pipeline_id: int | None,
                 organization_domain_field: str | None = None,
                 mapping: Mapping[str, Mapping[str, str]] | None = None) -> None:
        self.ledger = ledger
        self.dataset_id = dataset_id
        self.pipeline_id = pipeline_id
        self.domain_field = organization_domain_field
        self.mapping = dict(mapping or {})
        self.plan = LoadPlan()
        self._orgs: dict[str, int | None] = {}  # by key: the ledger's id, or None when the plan creates it
        self._people: dict[str, dict[str, Any]] = {}
        self._stage_looked_up = False
        catalogs = {entity: cached_fields(ledger, entity, math.inf) or UNREAD_FIELDS[entity] for entity in ENTITIES}
        domain = catalogs["organization"].get(self.domain_field or "")
        # What the load will write, as far as the ledger's field lists tell (resolver.PipedriveResolver.fields).
        self.fields = SyncFields(
            catalogs, {entity: {fact: catalogs[entity].get(name) or Field(name, name, "varchar", True)
                                for fact, name in names.items()} for entity, names in self.mapping.items()},
            domain.code if domain else None)
        self._fields: dict[str, dict[int, dict[str, dict[str, Any]]]] = {}
        self._kept_current: set[tuple[str, int]] = set()
        self._found_in_index: dict[str, dict[str, Any]] = {}  # by entity read through the index: key -> found

    def choose_ways(self, rows: pd.DataFrame, costs: dict[tuple[str, str], int]) -> None:
        """How the load will find each entity's keys the ledger does not know (``account_index``), priced:
        the index read's expected pages, and what the index as last read holds of the keys."""
        emails = [email for email in rows["email"].unique() if email not in self._people]
        organizations = organizations_to_look_up(rows, self._people, self._orgs)
        domain_field = self.fields.domain_field_code
        for entity, searches in searches_needed(emails, organizations, domain_field).items():
            way = choose_way(entity, IndexState.of(self.ledger, entity, domain_field), searches, costs)
            self.plan.ways[entity] = way.as_dict()
            if way.kind == "index":
                self.plan.calls[LISTS[entity]] += way.expected_pages
                self._found_in_index[entity] = indexed_persons(self.ledger, emails) if entity == "person" \
                    else indexed_organizations(self.ledger, organizations, domain_field)

    def preload(self, emails: list[str], org_keys: list[str]) -> None:
        self._people.update(self.ledger.persons_by_email(emails))
        self._orgs.update({key: row["org_id"] for key, row in self.ledger.organizations_by_key(org_keys).items()})
        self._fields["person"] = self.ledger.record_fields(
            "person", [row["person_id"] for row in self._people.values() if row.get("person_id")])
        self._fields["organization"] = self.ledger.record_fields(
            "organization", [org_id for org_id in self._orgs.values() if org_id])

    def org_id(self, key: Any) -> int | None:
        """The ledger's id of the organization with ``key`` (None: unknown, or created by the plan)."""
        return self._orgs.get(key)

    def price_field_lists(self, rows: pd.DataFrame) -> None:
        """The field lists the load reads (``fields.lists_needed``), unless the ledger's are fresh."""
        for entity, wanted in lists_needed(rows, self.mapping, self.domain_field).items():
            if needs_reading(self.ledger, entity, wanted):
                self.plan.calls[FIELD_LISTS[entity]] += 1

    def updates(self, known: dict | None, email: str, facts: pd.Series, org_facts: pd.Series | None) -> None:
        """A known person, and the organization LeadBoxer names for it, whose facts changed since the sync
        last looked (once a run each)."""
        person_id = (known or {}).get("person_id")
        if not person_id:
            return
        self._update("person", person_id, person_fields(facts, email, self.fields.catalogs["person"]), facts)
        org_id = self.org_id(facts.get("org_key")) if org_facts is not None else None
        # The person's organization: the ledger's, or this one when the load links it now (see person()).
        if org_id is not None and org_id == (known.get("org_id") or org_id):
            self._update("organization", org_id, organization_fields(
                org_facts, self.fields.domain_field_code, self.fields.catalogs["organization"]), org_facts)

    def _update(self, entity: str, record_id: int, filled: dict[str, Any], facts: pd.Series) -> None:
        """An update (5 tokens) when a field's fact changed, after a read (1) when a filled field did."""
        if (entity, record_id) in self._kept_current:
            return
        self._kept_current.add((entity, record_id))
        if entity not in self._fields:
            self._fields[entity] = {}
        if record_id not in self._fields[entity]:
            self._fields[entity].update(self.ledger.record_fields(entity, [record_id]))
        mapped = mapped_values(facts, self.fields.mapped.get(entity, {}))
        todo = changed({**filled, **mapped}, self._fields[entity].get(record_id, {}))
        self._price_update(entity, todo, set(mapped))

    def _price_update(self, entity: str, fields: Mapping[str, Any], mapped: set[str]) -> None:
        if not fields:
            return
        if set(fields) - mapped:
            self.plan.calls[RECORD_CALLS[entity][0]] += 1
        self.plan.calls[RECORD_CALLS[entity][1]] += 1
        self.plan.updates[f"{entity}s"] += 1

    def queued_updates(self) -> None:
        """The refused updates of earlier runs the load sends again (those this run did not look at)."""
        for entity in ENTITIES:
            for row in self.ledger.retries(self.dataset_id, update_entity(entity)):
                if (entity, int(row["record_id"])) not in self._kept_current:
                    self._price_update(entity, json.loads(row["payload"]), self.fields.mapped_keys(entity))

    def organization(self, facts: pd.Series) -> bool:
        key = facts.get("org_key")
        if key is None or pd.isna(key):
            return False
        if key not in self._orgs:
            if "organization" in self._found_in_index:
                found = self._found_in_index["organization"].get(key)
                if found is not None:
                    self._orgs[key] = found
                    return True
            else:
                domain = facts.get("org_domain")
                if self.domain_field and isinstance(domain, str) and domain:
                    self.plan.calls[SEARCH_ORG] += 1  # by the mapped domain field, then by name
                self.plan.calls[SEARCH_ORG] += 1
            self.plan.calls[CREATE_ORG] += 1
            self.plan.creates["organizations"] += 1
            self.plan.sample("organizations", {"name": facts["org_name"]})
            self._orgs[key] = None
        return True

    def person(self, email: str, facts: pd.Series, link_organization: bool = True) -> tuple[dict | None, bool]:
        """(ledger row or None, is_new)."""
        known = self._people.get(email)
        if known:
            if link_organization and known.get("org_id") is None and self.organization(facts):
                self.plan.calls[UPDATE_PERSON] += 1
            return known, False
        if "person" in self._found_in_index:
            found = self._found_in_index["person"].get(email)
            if found is not None:
                self._people[email] = {"email": email, "person_id": found["id"], "org_id": found["org_id"]}
                return self.person(email, facts, link_organization)
        else:
            self.plan.calls[SEARCH_PERSON] += 1
        if link_organization:
            self.organization(facts)
        self.plan.calls[CREATE_PERSON] += 1
        self.plan.creates["persons"] += 1
        self.plan.sample("persons", {"name": facts["person_name"], "email": email})
        self._people[email] = {"email": email, "person_id": None, "org_id": None}
        return None, True

    def deal(self, known_person: dict | None, is_new: bool, facts: pd.Series) -> None:
        if known_person and known_person.get("person_id"):
            known_deal = self.ledger.deals_by_person([known_person["person_id"]]).get(known_person["person_id"])
            if known_deal:
                self._update("deal", known_deal["deal_id"], {}, facts)
                return
        if not is_new:
            self.plan.calls[LIST_DEALS] += 1
        if self.pipeline_id:
            if not self._stage_looked_up:
                self.plan.calls[LIST_STAGES] += 1
                self._stage_looked_up = True
            self.plan.calls[CREATE_DEAL] += 1
            self.plan.creates["deals"] += 1
            who = facts["org_name"] if not pd.isna(facts.get("org_name")) else facts["person_name"]
            self.plan.sample("deals", {"title": f"{who} – LeadBoxer", "pipeline_id": self.pipeline_id})


def plan_activity_load(activities: pd.DataFrame, ledger, dataset_id: str, pipeline_id: int | None,
                       activity_mode: str, organization_domain_field: str | None = None,
                       custom_fields: Mapping[str, Mapping[str, str]] | None = None,
                       account_index_costs: dict[tuple[str, str], int] | None = None) -> LoadPlan:
    """The priced plan of :meth:`ActivityLoader.load` for these rows, from the ledger alone.
    ``account_index_costs``: the token prices, when the load uses the account index (else it searches)."""
    from leadboxer_pipedrive.loading.activities import ACTIVITY_TYPE_CHECK_SECONDS

    planner = Planner(ledger, dataset_id, pipeline_id, organization_domain_field, custom_fields)
    todo = activities
    if not activities.empty:
        done = ledger.pushed_event_ids(dataset_id, activities["event_id"].tolist())
        planner.plan.already_pushed = int(activities["event_id"].isin(done).sum())
        todo = with_last_visit(activities[~activities["event_id"].isin(done)])
    if not todo.empty:
        if any(not ledger.fresh_fact(f"activity_type:{t}", ACTIVITY_TYPE_CHECK_SECONDS)
               for t in todo["type"].unique()):
            planner.plan.calls[ACTIVITY_TYPES] += 1
        planner.price_field_lists(todo)
        _plan_rows(planner, todo, activity_mode, account_index_costs)
    planner.queued_updates()
    return planner.plan


def _plan_rows(planner: Planner, todo: pd.DataFrame, activity_mode: str,
               account_index_costs: dict[tuple[str, str], int] | None) -> None:
    planner.preload(todo["email"].unique().tolist(), todo["org_key"].dropna().unique().tolist())
    if account_index_costs:
        planner.choose_ways(todo, account_index_costs)
    org_facts = {row["org_key"]: row for row in organization_rows(todo)}
    for email, rows in todo.groupby("email", sort=True):
        facts = rows.iloc[0]
        known, is_new = planner.person(email, facts)
        planner.updates(known, email, facts, org_facts.get(facts["org_key"]))
        planner.deal(known, is_new, facts)
        activities_count = rows["use_id"].nunique() if activity_mode == "digest" else len(rows)
        planner.plan.calls[CREATE_ACTIVITY] += activities_count
        planner.plan.creates["activities"] += activities_count
        for row in rows.head(1).itertuples(index=False):
            planner.plan.sample("activities", {"subject": row.subject, "type": row.type, "email": email,
                                               "due": f"{row.due_date} {row.due_time}"})
