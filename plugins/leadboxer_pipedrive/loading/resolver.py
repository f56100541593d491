"""Finds or creates the Pipedrive organization, person and deal for LeadBoxer records.

Cheapest first: the ledger (free), then the account index when the run reads it (``account_index``),
else Pipedrive search (20 tokens), then create (5 tokens). Every id learned goes to the ledger so later
runs start from it. Every lookup-or-create runs under a ledger claim,
so concurrent runs never create the same record twice; a claim taken over from a killed task is
reconciled first (Pipedrive's lists, which do not lag like its search, are read for what that task
may have created). A failed lookup raises: it is never read as "not found" and never leads to a create.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import pandas as pd

from leadboxer_pipedrive.exceptions import (
    AmbiguousWriteError,
    ApiAuthError,
    ApiError,
    ApiRequestError,
    BudgetExhaustedError,
)
from leadboxer_pipedrive.loading.account_index import AccountIndex
from leadboxer_pipedrive.loading.claims import ClaimManager
from leadboxer_pipedrive.loading.common import is_present
from leadboxer_pipedrive.loading.fields import ENTITIES, SyncFields
from leadboxer_pipedrive.loading.updates import (
    changed,
    emails_of,
    field_rows,
    free_fields,
    mapped_values,
    organization_fields,
    organization_held,
    organization_rows,
    patch_body,
    person_fields,
    person_held,
)

log = logging.getLogger(__name__)



# How a record's fields are read (for the filled fields' current values) and updated, by kind.
RECORD_READERS = {"person": ("get_person", person_held), "organization": ("get_organization", organization_held)}
RECORD_UPDATERS = {"person": "update_person", "organization": "update_organization", "deal": "update_deal"}
# Answers saying a record is no longer there (deleted, or merged into another).
GONE_STATUSES = frozenset({404, 410})


def update_entity(entity: str) -> str:
    """The retry queue's entity for refused updates of ``entity`` records."""
    return f"{entity}_update"


@dataclass
class Person:
    person_id: int
    org_id: int | None
    is_new: bool


def since_iso(epoch_ms: int, margin_seconds: int = 120) -> str:
    """RFC 3339 time a little before ``epoch_ms``: the lower bound for reconciling lists."""
    moment = datetime.fromtimestamp(epoch_ms / 1000 - margin_seconds, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def create_or_reconcile(create: Callable[[], dict[str, Any]], find: Callable[[int], dict[str, Any] | None],
                        result, grace_seconds: float) -> dict[str, Any]:
    """Create a record; when the outcome is unknown (timeout, dropped connection, 5xx), look for it
    (``find(since_ms)``, through lists that do not lag) before creating again.

    A 500 is the application's own answer: whatever it wrote is written, so one look decides. Without
    an answer (or behind a gateway's 502/504) the request may still be running on the server, so it
    looks after ``grace_seconds``, then twice and four times as long, before it creates again.
    """
    started = int(time.time() * 1000)
    try:
        return create()
    except AmbiguousWriteError as exc:
        result.count("ambiguous_writes_reconciled")
        waits = (0,) if exc.status in SERVER_FINISHED_STATUSES else RECONCILE_WAIT_FACTORS
        try:
            for factor in waits:
                time.sleep(grace_seconds * factor)
                found = find(started)
                if found is not None:
                    return found
            return create()
        except ApiError as later:
            # The first create may still land: whatever fails now (a look, the second create) leaves the
            # record's existence unknown, so the claim must stay for the next holder to reconcile; a
            # refusal or a transient error is reported as the ambiguous write it follows.
            if later.write_may_have_happened or isinstance(later, (ApiAuthError, BudgetExhaustedError)):
                later.write_may_have_happened = True
                raise
            raise AmbiguousWriteError(later.service, later.method, later.path, later.status,
                                      f"{later.detail} (after a create whose outcome is unknown: "
                                      f"{exc.method} {exc.path})") from later


# Waits (in grace periods) before each look for a create that may still be running on the server.
RECONCILE_WAIT_FACTORS = (1, 2, 4)

# Answers that come from the server once it has finished with the request.
SERVER_FINISHED_STATUSES = frozenset({500})


def grace_seconds(pipedrive) -> float:
    """The first wait before looking for a create whose outcome is unknown: the client's timeout (at most 10 s)."""
    return min(float(getattr(pipedrive, "timeout", 10.0)), 10.0)


def in_flight_seconds(pipedrive) -> float:
    """How long after it was sent a create may still land in Pipedrive, by the same reckoning as
    ``create_or_reconcile``'s last look (the client's wait, then every grace period): what a takeover of
    a dead holder's claim waits before reconciling (``ClaimManager.settle_seconds``)."""
    return grace_seconds(pipedrive) * (1 + sum(RECONCILE_WAIT_FACTORS))


class PipedriveResolver:
    """One run's resolver. ``pipedrive``: PipedriveHook; ``ledger``: LedgerHook; ``result``: LoadResult;
    ``fields``: the fields the run writes (the domain field, mapped fields, the account's field lists);
    ``max_attempts``: refusals of a record's update before it is quarantined."""

    def __init__(self, pipedrive, ledger, result, claims: ClaimManager, dataset_id: str, *,
                 fields: SyncFields | None = None, max_attempts: int = 3,
                 account_index: AccountIndex | None = None) -> None:
        self.pipedrive = pipedrive
        self.fields = fields or SyncFields()
        self.domain_field_code = self.fields.domain_field_code
        self.max_attempts = max_attempts
        self.ledger = ledger
        self.result = result
        self.claims = claims
        self.dataset_id = dataset_id
        self._lock = threading.Lock()
        self._org_ids: dict[str, int] = {}
        self._people: dict[str, dict[str, Any]] = {}
        self._identities: dict[str, dict[str, Any]] = {}
        self._first_stage_ids: dict[int, int] = {}
        self._kept_current: set[tuple[str, int]] = set()  # records brought up to date this run
        self.account_index = account_index  # None: always search
        self._indexed_entities: set[str] = set()  # entities this run finds through the account index
        self._created_person_ids: set[int] = set()  # persons this run created: they have no deals yet
        self._resolved_emails: set[str] = set()  # persons this run has resolved (counted once)
        self.grace_seconds = grace_seconds(pipedrive)

    def use_index(self, entity: str, used: bool = True) -> None:
        """Find ``entity`` records the ledger does not know in the account index (read up to the present
        this run) instead of searching: a key it lacks is created."""
        with self._lock:
            if used:
                self._indexed_entities.add(entity)
            else:
                self._indexed_entities.discard(entity)

    def _index_for(self, entity: str) -> AccountIndex | None:
        with self._lock:
            return self.account_index if entity in self._indexed_entities else None

    def create_or_reconcile(self, create, find) -> dict[str, Any]:
        return create_or_reconcile(create, find, self.result, self.grace_seconds)

    def preload(self, emails: list[str], org_keys: list[str], use_ids: list[str] = ()) -> None:
        """Read the ledger's ids for a whole batch in a few queries instead of one per record."""
        people = self.ledger.persons_by_email(emails)
        orgs = self.ledger.organizations_by_key(org_keys)
        identities = self.ledger.identities_by_use_id(self.dataset_id, list(use_ids)) if use_ids else {}
        with self._lock:
            self._people.update(people)
            self._org_ids.update({key: row["org_id"] for key, row in orgs.items()})
            self._identities.update(identities)

    def organizations_needed(self, rows: pd.DataFrame) -> list[pd.Series]:
        """Facts of each organization this batch may have to find or create (``organizations_to_look_up``)."""
        with self._lock:
            return organizations_to_look_up(rows, self._people, self._org_ids)

    def emails_needed(self, rows: pd.DataFrame) -> list[str]:
        """The emails of this batch the ledger does not know."""
        with self._lock:
            return [email for email in rows["email"].unique() if email not in self._people]

    # -- organizations ----------------------------------------------------------------------------
    def organization(self, facts: pd.Series) -> int | None:
        """The organization of ``facts`` (columns org_key, org_name, org_domain...), or None when it has none.

        Matching is exact: the key (domain when LeadBoxer knows it, else the trimmed, case-folded name)
        in the ledger, then the mapped domain field (when configured), then Pipedrive's exact-name search
        compared case-folded; never a fuzzy hit.
        """
        key = facts.get("org_key")
        if not is_present(key):
            return None
        with self._lock:
            if key in self._org_ids:
                return self._org_ids[key]
        # Organizations match by name too: leads naming one with and without a domain hold different
        # keys, so the name is claimed as well, or both could search before either creates.
        name = facts["org_name"]
        with self.claims.claim(f"org:{key}") as key_takeover, \
                self.claims.claim(f"org-name:{str(name).strip().casefold()}") as name_takeover:
            taken_over = [time for time in (key_takeover, name_takeover) if time is not None]
            takeover = min(taken_over) if taken_over else None
            known = self.ledger.organizations_by_key([key]).get(key)
            if known:
                org_id = known["org_id"]
            else:
                matches = self._organization_matcher(facts)
                found = None
                if takeover is not None:
                    found = next((o for o in self.pipedrive.list_organizations(updated_since=since_iso(takeover))
                                  if matches(o)), None)
                    self.result.count("reconciled_lookups")
                if found is None:
                    found = self._find_organization(facts)
                if found:
                    org_id = found["id"]
                    self.result.count("organizations_found")
                else:
                    fields = {**self._organization_fields(facts), **self._mapped("organization", facts)}
                    payload = {"name": facts["org_name"], **patch_body(fields)}
                    created = self.create_or_reconcile(
                        lambda: self.pipedrive.create_organization(payload),
                        lambda since: next((o for o in self.pipedrive.list_organizations(updated_since=since_iso(since))
                                            if matches(o)), None))
                    org_id = created["id"]
                    self._indexed("organization", created)
                    self.result.count("organizations_created")
                    self._created_with("organization", org_id, fields)
                self.ledger.remember_organization(key, org_id, name)
        with self._lock:
            self._org_ids[key] = org_id
        return org_id

    def _find_organization(self, facts: pd.Series) -> dict[str, Any] | None:
        """In the account index when the run reads it, else by search: the mapped domain field, then the name."""
        index = self._index_for("organization")
        if index is not None:
            org_id = index.organization_ids([facts]).get(facts["org_key"])
            return {"id": org_id} if org_id is not None else None
        domain = facts.get("org_domain")
        if self.domain_field_code and is_present(domain):
            found = self.pipedrive.find_organization_by_field(self.domain_field_code, domain)
            if found:
                self.result.count("organizations_found_by_domain")
                return found
        return self.pipedrive.find_organization_by_name(facts["org_name"])

    def _organization_matcher(self, facts: pd.Series) -> Callable[[dict[str, Any]], bool]:
        """Whether a listed organization is the one of ``facts``: same mapped domain, or same name."""
        wanted_name = str(facts["org_name"]).strip().casefold()
        domain = facts.get("org_domain")
        wanted_domain = str(domain).strip().casefold() if self.domain_field_code and is_present(domain) else None

        def matches(organization: dict[str, Any]) -> bool:
            if wanted_domain is not None:
                held = (organization.get("custom_fields") or {}).get(self.domain_field_code)
                if held is not None and str(held).strip().casefold() == wanted_domain:
                    return True
            return str(organization.get("name", "")).strip().casefold() == wanted_name
        return matches

    # -- persons ----------------------------------------------------------------------------------
    def person(self, email: str, facts: pd.Series, *, link_organization: bool = True) -> Person:
        """The person with ``email`` (any of their emails); created if nobody has it.

        A person without an organization gets the one LeadBoxer knows, linked. When the lead's email
        changed since the ledger last saw it, the new email is added to the person of the old one.
        """
        use_id = facts.get("use_id")
        with self._lock:
            known = self._people.get(email)
            identity = self._identities.get(use_id) if is_present(use_id) else None
        if known is None:
            with self.claims.claim(f"person:{email}") as takeover:
                known = self.ledger.persons_by_email([email]).get(email)
                if known is None:
                    person = self._find_or_create_person(email, facts, identity, takeover, link_organization)
                    self.ledger.remember_person(email, person.person_id, person.org_id)
                    with self._lock:
                        self._resolved_emails.add(email)
                        if person.is_new:
                            self._created_person_ids.add(person.person_id)
                else:
                    person = Person(known["person_id"], known["org_id"], is_new=False)
        else:
            with self._lock:
                is_new = known["person_id"] in self._created_person_ids
                resolved_earlier = email in self._resolved_emails
                self._resolved_emails.add(email)
            if not resolved_earlier:
                self.result.count("persons_from_ledger")
            person = Person(known["person_id"], known["org_id"], is_new=is_new)
        if link_organization and person.org_id is None:
            org_id = self.organization(facts)
            if org_id is not None:
                self._link(email, person, org_id)
        with self._lock:
            self._people[email] = {"email": email, "person_id": person.person_id, "org_id": person.org_id}
        if is_present(use_id) and (identity is None or identity["email"] != email
                                   or identity["person_id"] != person.person_id):
            self.ledger.remember_identity(self.dataset_id, use_id, email, person.person_id)
            with self._lock:
                self._identities[use_id] = {"use_id": use_id, "email": email, "person_id": person.person_id}
        return person

    def _link(self, email: str, person: Person, org_id: int) -> None:
        """Link the person to the organization, in Pipedrive and in the ledger."""
        self.pipedrive.update_person(person.person_id, {"org_id": int(org_id)})
        self.result.count("persons_linked_to_organization")
        person.org_id = org_id
        self.ledger.remember_person(email, person.person_id, person.org_id)

    def _find_or_create_person(self, email: str, facts: pd.Series, identity: dict | None, takeover: int | None,
                               link_organization: bool) -> Person:
        found = None
        if takeover is not None:
            found = next((p for p in self.pipedrive.list_persons(updated_since=since_iso(takeover))
                          if email in emails_of(p)), None)
            self.result.count("reconciled_lookups")
        if found is None:
            index = self._index_for("person")
            found = index.persons([email]).get(email) if index is not None \
                else self.pipedrive.find_person_by_email(email)
        if found is None and identity is not None and identity["email"] != email:
            # The lead's email changed: its person is the one found through the old email.
            found = self._add_email(identity["person_id"], email)
        if found is not None:
            self.result.count("persons_found")
            org = found.get("organization") or {}
            return Person(found["id"], org.get("id") or found.get("org_id"), is_new=False)
        org_id = self.organization(facts) if link_organization else None
        fields = {**self._person_fields(facts, email), **self._mapped("person", facts)}
        payload = person_payload(facts, org_id, fields)
        created = self.create_or_reconcile(
            lambda: self.pipedrive.create_person(payload),
            lambda since: next((p for p in self.pipedrive.list_persons(updated_since=since_iso(since))
                                if email in emails_of(p)), None))
        self._indexed("person", created)
        self.result.count("persons_created")
        self._created_with("person", created["id"], fields)
        return Person(created["id"], org_id, is_new=True)

    # -- keeping records current ------------------------------------------------------------------
    def keep_person_current(self, person: Person, email: str, facts: pd.Series) -> Person:
        """Fill the person's empty fields and write its mapped fields (see ``loading.updates``); a person
        gone from Pipedrive (deleted or merged) is resolved again. Returns the person kept current."""
        if self._keep_current("person", person.person_id, self._person_fields(facts, email), facts):
            return person
        self.forget_person(email, person.person_id)
        person = self.person(email, facts)
        self._keep_current("person", person.person_id, self._person_fields(facts, email), facts)
        return person

    def keep_organization_current(self, person: Person, email: str, facts: pd.Series) -> Person:
        """Fill the empty fields (address, website, domain field, industry, LinkedIn page) and write the
        mapped fields of the person's organization, when it is the one LeadBoxer names (``facts``: the
        organization's first row by email). An organization gone from Pipedrive is resolved again and
        linked to the person. Returns the person, with its organization."""
        key = facts.get("org_key")
        with self._lock:
            org_id = self._org_ids.get(key) if is_present(key) else None
        if org_id is None or org_id != person.org_id:
            return person  # not the organization LeadBoxer names, or none
        if self._keep_current("organization", org_id, self._organization_fields(facts), facts):
            return person
        self.forget_organization(org_id)
        self._link(email, person, self.organization(facts))
        with self._lock:
            self._people[email] = {"email": email, "person_id": person.person_id, "org_id": person.org_id}
        self._keep_current("organization", person.org_id, self._organization_fields(facts), facts)
        return person

    def keep_deal_current(self, person: Person, deal_id: int | None, facts: pd.Series,
                          pipeline_id: int | None) -> int | None:
        """Write the deal's mapped fields; a deal gone from Pipedrive is resolved again. Returns the deal."""
        if deal_id is None or self._keep_current("deal", deal_id, {}, facts):
            return deal_id
        self.forget_deal(person.person_id, deal_id)
        deal_id = self.open_deal(person, facts, pipeline_id)
        if deal_id is not None:
            self._keep_current("deal", deal_id, {}, facts)
        return deal_id

    def retry_refused_updates(self) -> None:
        """Send again the updates Pipedrive refused in earlier runs (queued with its message), unless this
        run has already looked at the record; an update of a record gone from Pipedrive is dropped."""
        for entity in ENTITIES:
            for row in self.ledger.retries(self.dataset_id, update_entity(entity)):
                record_id = int(row["record_id"])
                with self._lock:
                    if (entity, record_id) in self._kept_current:
                        continue
                fields = json.loads(row["payload"])
                mapped = self.fields.mapped_keys(entity)
                filled = {key: value for key, value in fields.items() if key not in mapped}
                if not self._write_fields(entity, record_id, filled, {k: v for k, v in fields.items() if k in mapped}):
                    self.ledger.clear_retries(self.dataset_id, update_entity(entity), [str(record_id)])
                    self.result.count(f"{entity}_updates_dropped_gone")

    def _person_fields(self, facts: pd.Series, email: str) -> dict[str, Any]:
        return person_fields(facts, email, self.fields.catalogs.get("person"))

    def _organization_fields(self, facts: pd.Series) -> dict[str, Any]:
        return organization_fields(facts, self.domain_field_code, self.fields.catalogs.get("organization"))

    def _mapped(self, entity: str, facts: pd.Series) -> dict[str, Any]:
        return mapped_values(facts, self.fields.mapped.get(entity, {}))

    def _keep_current(self, entity: str, record_id: int, filled: dict[str, Any], facts: pd.Series) -> bool:
        """Once a run: the record's fields from LeadBoxer's ``facts``. False when the record is gone."""
        return self._write_fields(entity, record_id, filled, self._mapped(entity, facts))

    def _write_fields(self, entity: str, record_id: int, filled: dict[str, Any], mapped: dict[str, Any]) -> bool:
        """Once a run per record, only the fields whose fact changed since the sync last looked: the mapped
        ones (the sync's own) as they are, the filled ones where free (one read tells); one update. A
        refusal is queued with Pipedrive's message and sent again by later runs. False when the record is
        gone from Pipedrive (deleted or merged)."""
        with self._lock:
            if (entity, record_id) in self._kept_current:
                return True
            self._kept_current.add((entity, record_id))
        last = self.ledger.record_fields(entity, [record_id]).get(record_id, {})
        todo = changed({**filled, **mapped}, last)
        if not todo:
            self.result.count(f"{entity}s_unchanged")
            return True
        to_fill = {key: value for key, value in todo.items() if key not in mapped}
        try:
            free = {key: value for key, value in todo.items() if key in mapped}
            if to_fill:
                reader, held_of = RECORD_READERS[entity]
                free.update(free_fields(to_fill, held_of(getattr(self.pipedrive, reader)(record_id) or {}), last))
            if free:
                getattr(self.pipedrive, RECORD_UPDATERS[entity])(record_id, patch_body(free))
        except ApiRequestError as exc:
            if exc.status in GONE_STATUSES:
                return False
            self._refused_update(entity, record_id, todo, exc.detail)
            return True
        self.result.count(f"{entity}s_updated" if free else f"{entity}s_kept")
        self.ledger.remember_record_fields(field_rows(entity, record_id, todo, free))
        self.ledger.clear_retries(self.dataset_id, update_entity(entity), [str(record_id)])
        return True

    def _refused_update(self, entity: str, record_id: int, fields: dict[str, Any], detail: str) -> None:
        """Queue a refused update, with Pipedrive's message, for later runs (quarantined after
        ``max_attempts`` refusals); its fields are not remembered, so they stay to be written."""
        queued = update_entity(entity)
        tries = self.ledger.retry_attempts(self.dataset_id, queued, [str(record_id)]).get(str(record_id), 0) + 1
        status = "quarantined" if tries >= self.max_attempts else "pending"
        self.ledger.queue_retries([{"dataset_id": self.dataset_id, "entity": queued, "record_id": str(record_id),
                                    "payload": json.dumps(fields, default=str), "attempts": tries,
                                    "last_error": f"Pipedrive refused the update: {detail}"[:1000],
                                    "status": status}])
        self.result.count(f"{entity}_updates_refused")
        log.warning("Pipedrive refused to update %s %s (%s, attempt %d): %s", entity, record_id, status, tries, detail)

    def _created_with(self, entity: str, record_id: int, fields: dict[str, Any]) -> None:
        """A record we created holds what it was created with: later runs write a field again only when
        LeadBoxer's fact changes."""
        self.ledger.remember_record_fields(field_rows(entity, record_id, fields, fields))
        with self._lock:
            self._kept_current.add((entity, record_id))

    def _add_email(self, person_id: int, email: str) -> dict[str, Any] | None:
        current = self.pipedrive.get_person(person_id)
        if not current:
            return None
        emails = [{"value": e["value"], "primary": bool(e.get("primary")), "label": e.get("label") or "work"}
                  for e in current.get("emails") or [] if isinstance(e, dict) and e.get("value")]
        if email not in emails_of(current):
            emails.append({"value": email, "primary": False, "label": "work"})
            current = self.pipedrive.update_person(person_id, {"emails": emails})
            self.result.count("persons_email_added")
        return current

    def forget_person(self, email: str, person_id: int) -> None:
        """Drop a person id Pipedrive no longer knows (deleted or merged); the next lookup re-resolves."""
        self.ledger.forget("person", email=email, person_id=person_id)
        self._unindex("person", person_id)
        with self._lock:
            self._people.pop(email, None)
        self.result.count("stale_ids_reresolved")

    def forget_organization(self, org_id: int) -> None:
        with self._lock:
            keys = [k for k, v in self._org_ids.items() if v == org_id]
            for key in keys:
                del self._org_ids[key]
        for key in keys:
            self.ledger.forget("organization", org_key=key, org_id=org_id)
        self._unindex("organization", org_id)
        self.result.count("stale_ids_reresolved")

    def _indexed(self, entity: str, created: dict[str, Any]) -> None:
        if self.account_index is not None:
            self.account_index.add(entity, created)

    def _unindex(self, entity: str, record_id: int) -> None:
        """A gone record leaves the account index; its key is looked up again in the index when a read
        reaches the present within a search's cost, else searched."""
        if self.account_index is None:
            self.ledger.unindex(entity, record_id)
        else:
            self.use_index(entity, self.account_index.forget(entity, record_id))

    # -- deals ------------------------------------------------------------------------------------
    def open_deal(self, person: Person, facts: pd.Series, pipeline_id: int | None) -> int | None:
        """The person's open deal: ledger, else Pipedrive, else created in ``pipeline_id`` (if set)."""
        known = self.ledger.deals_by_person([person.person_id]).get(person.person_id)
        if known:
            return known["deal_id"]
        with self.claims.claim(f"deal:{person.person_id}") as takeover:
            known = self.ledger.deals_by_person([person.person_id]).get(person.person_id)
            if known:
                return known["deal_id"]
            deal = None
            if not person.is_new or takeover is not None:  # a person created a moment ago has no deals
                deal = self.pipedrive.find_open_deal_for_person(person.person_id)
                if deal:
                    self.result.count("deals_found")
            if deal is None and pipeline_id:
                with self._lock:
                    stage_id = self._first_stage_ids.get(pipeline_id)
                if stage_id is None:
                    stage_id = self.pipedrive.first_stage_id(pipeline_id)
                    with self._lock:
                        self._first_stage_ids[pipeline_id] = stage_id
                mapped = self._mapped("deal", facts)
                body = {
                    **patch_body(mapped),
                    "title": deal_title(facts),
                    "person_id": int(person.person_id),
                    **({"org_id": int(person.org_id)} if person.org_id else {}),
                    "pipeline_id": int(pipeline_id),
                    "stage_id": stage_id,
                }
                deal = self.create_or_reconcile(
                    lambda: self.pipedrive.create_deal(body),
                    lambda _since: self.pipedrive.find_open_deal_for_person(person.person_id))
                self.result.count("deals_created")
                self._created_with("deal", deal["id"], mapped)
            if deal is None:
                return None
            self.ledger.remember_deal(person.person_id, deal["id"], deal.get("pipeline_id"))
            return deal["id"]

    def forget_deal(self, person_id: int, deal_id: int) -> None:
        self.ledger.forget("deal", person_id=person_id, deal_id=deal_id)
        self.result.count("stale_ids_reresolved")


def organizations_to_look_up(rows: pd.DataFrame, people: dict[str, dict[str, Any]],
                             org_ids: dict[str, Any]) -> list[pd.Series]:
    """Facts of each organization these rows may have to find or create, first row (by email) of each:
    for persons not in ``people`` (the ledger's, by email) or there without an organization, when
    ``org_ids`` (the ledger's, by key) lacks it."""
    known = {email for email, row in people.items() if row.get("org_id") is not None}
    return organization_rows(rows[~rows["email"].isin(known) & ~rows["org_key"].isin(set(org_ids))])


# -- payload builders (pure) ----------------------------------------------------------------------
def person_payload(facts: pd.Series, org_id: int | None, fields: dict[str, Any]) -> dict[str, Any]:
    """A new person: its name (the email's local part when LeadBoxer knows none), email and ``fields``
    (``loading.updates``: its phone, job title, mapped fields)."""
    payload: dict[str, Any] = {"name": facts["person_name"], **patch_body(fields),
                               "emails": [{"value": facts["email"], "primary": True, "label": "work"}]}
    if org_id:
        payload["org_id"] = int(org_id)
    return payload


def deal_title(facts: pd.Series) -> str:
    who = facts.get("org_name") if is_present(facts.get("org_name")) else facts["person_name"]
    return f"{who} – LeadBoxer"[:255]
