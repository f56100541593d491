"""The account index: the Pipedrive account's persons under every email they hold and its organizations
under their exact name and mapped domain, kept in the ledger and brought up to date by reading Pipedrive's
v2 lists by update time (``updated_since``: 10 tokens a page of up to 500 records, no search lag), so a
run finds what the account holds without searching (20 tokens a key, lagging writes).

Each run with keys the ledger does not know takes, per entity, the cheaper way (``choose_way``):

- **index**: read what changed since the last read (from its mark, less a margin), right before the run
  creates anything, then look the keys up; a key the index lacks is created. The read may take as many
  pages as searching this run's keys would have cost tokens, never more. When that is not enough to reach
  the present (the first read of a large account, or after a long pause), it stops there and remembers how
  far it got: the rows whose keys it has not found yet wait in the retry queue for a later run (deferred),
  since the unread part may hold them. So no run costs more than searching would have.
- **search**: when even a current index costs more to keep up than searching this run's keys (a busy
  account, few new leads), the run searches as before; the index resumes from its mark later.

Matching is the search path's: exact email, case-folded; exact organization name (trimmed, case-folded)
or mapped domain; the lowest id wins. A record deleted or merged in Pipedrive leaves the index when its
id answers 404/410, and the index is read again before that key is looked up anew.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

import pandas as pd

from leadboxer_pipedrive.loading.common import is_present
from leadboxer_pipedrive.loading.updates import emails_of

INDEXED = ("person", "organization")
LISTS = {"person": ("GET", "/api/v2/persons"), "organization": ("GET", "/api/v2/organizations")}
SEARCHES = {"person": ("GET", "/api/v2/persons/search"), "organization": ("GET", "/api/v2/organizations/search")}
# Each read starts this long before the last update time it saw: a record written in the same second,
# or committed a little late, is not missed.
MARGIN_SECONDS = 120
EPOCH = "1970-01-01T00:00:00Z"
# What a read is paid with: Pipedrive's tokens, from the hook's price list.
TokenCosts = dict[tuple[str, str], int]


def organization_keys(name: Any, domain: Any, domain_field: str | None) -> list[str]:
    """Where an organization is found, in matching order: its mapped domain (when a domain field is
    mapped and the value is there, under the field's code: another field's keys never match), then its
    name; trimmed and case-folded."""
    keys = [f"domain:{domain_field}:{str(domain).strip().casefold()}"] if domain_field and is_present(domain) else []
    return keys + ([f"name:{str(name).strip().casefold()}"] if is_present(name) else [])


def searches_needed(emails: list[str], organizations: list[pd.Series], domain_field: str | None) -> dict[str, int]:
    """The searches finding these keys would take: one per email; per organization, its name and, when a
    domain field is mapped and the domain known, the domain first."""
    return {"person": len(emails),
            "organization": sum(len(organization_keys(facts.get("org_name"), facts.get("org_domain"), domain_field))
                                for facts in organizations)}


def indexed_persons(ledger, emails: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The indexed person of each email found: ``{"id", "org_id"}``."""
    return {email: {"id": row["record_id"], "org_id": row.get("org_id")}
            for email, row in ledger.indexed("person", emails).items()}


def indexed_organizations(ledger, organizations: Iterable[pd.Series], domain_field: str | None) -> dict[str, int]:
    """The indexed organization of each of these organizations' facts found, by ``org_key``."""
    wanted = {facts["org_key"]: organization_keys(facts.get("org_name"), facts.get("org_domain"), domain_field)
              for facts in organizations}
    found = ledger.indexed("organization", [key for keys in wanted.values() for key in keys])
    return {org_key: next(found[key]["record_id"] for key in keys if key in found)
            for org_key, keys in wanted.items() if any(key in found for key in keys)}


def index_rows(entity: str, record: dict[str, Any], domain_field: str | None) -> list[dict[str, Any]]:
    """The index's rows of one listed record."""
    if entity == "person":
        return [{"index_key": email, "record_id": record["id"], "org_id": record.get("org_id")}
                for email in emails_of(record) if email]
    domain = (record.get("custom_fields") or {}).get(domain_field) if domain_field else None
    return [{"index_key": key, "record_id": record["id"]}
            for key in organization_keys(record.get("name"), domain, domain_field)]


@dataclass
class IndexState:
    """How far an entity's list has been read (kept as the fact ``account_index:<entity>``)."""

    mark: str | None = None  # update time of the last record read (Pipedrive's clock); None: never read
    current: bool = False  # the last read reached the end of the list
    last_records: int = 0  # records the last read from a mark to the end took: what a run's read takes
    page_size: int = 500
    domain_field: str | None = None  # organizations: the domain field the keys were read with

    @classmethod
    def of(cls, ledger, entity: str, domain_field: str | None = None) -> IndexState:
        """The stored state; a fresh one (never read) when the organizations' domain field changed
        (``domain_field`` concerns organizations only)."""
        domain_field = domain_field if entity == "organization" else None
        stored = ledger.fresh_fact(f"account_index:{entity}", math.inf)
        state = cls(**json.loads(stored)) if stored else cls(domain_field=domain_field)
        return state if state.domain_field == domain_field else cls(domain_field=domain_field)

    def save(self, ledger, entity: str) -> None:
        ledger.remember_fact(f"account_index:{entity}", json.dumps(asdict(self)))

    def expected_pages(self) -> int:
        """Pages the next read is expected to take: as many as the last one from a mark (at least one)."""
        return max(1, math.ceil(self.last_records / self.page_size))


@dataclass(frozen=True)
class Way:
    """How a run finds one entity's keys: ``kind`` "index", "search" or "none" (nothing to look up);
    ``max_pages``: what the index read may take; ``expected_pages``: what it is priced at."""

    entity: str
    kind: str
    max_pages: int = 0
    expected_pages: int = 0
    why: str = "nothing to look up"

    def as_dict(self) -> dict[str, Any]:
        return {"way": self.kind, "pages": self.expected_pages, "why": self.why}


def choose_way(entity: str, state: IndexState, searches: int, costs: TokenCosts) -> Way:
    """The cheaper way to find ``searches`` lookups' worth of keys (each a search) this run."""
    if searches <= 0:
        return Way(entity, "none")
    search_tokens = searches * costs[SEARCHES[entity]]
    page_tokens = costs[LISTS[entity]]
    max_pages = search_tokens // page_tokens
    if state.mark is None:
        return Way(entity, "index", max_pages, max_pages,
                   f"never read: its first read takes at most {max_pages * page_tokens} tokens, what searching "
                   f"{searches} key(s) would cost")
    expected = state.expected_pages()
    if expected > max_pages:
        return Way(entity, "search", why=f"the index's read costs about {expected * page_tokens} tokens, searching "
                                          f"{searches} key(s) {search_tokens}")
    return Way(entity, "index", max_pages, expected,
               f"the index's read costs about {expected * page_tokens} tokens (at most {max_pages * page_tokens}), "
               f"searching {searches} key(s) {search_tokens}")


def parse_time(value: str) -> float:
    """Epoch seconds of a Pipedrive time ("2026-12-08T02:15:56Z")."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def format_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class AccountIndex:
    """Reads and looks up the account index of one run. ``pipedrive``: PipedriveHook; ``ledger``: LedgerHook;
    ``domain_field``: the organization field holding the domain (its code), if mapped."""

    def __init__(self, pipedrive, ledger, domain_field: str | None = None) -> None:
        self.pipedrive = pipedrive
        self.ledger = ledger
        self.domain_field = domain_field
        self.pages_read = 0

    def state(self, entity: str) -> IndexState:
        return IndexState.of(self.ledger, entity, self.domain_field)

    def way(self, entity: str, searches: int) -> Way:
        return choose_way(entity, self.state(entity), searches, self.pipedrive.token_costs)

    def read(self, entity: str, max_pages: int | None = None) -> bool:
        """Read what changed since the last read, at most ``max_pages`` pages (None: to the end) unless
        none of them gets past the last mark; True when the read reached the end of the list."""
        state = self.state(entity)
        params: dict[str, Any] = {"sort_by": "update_time", "sort_direction": "asc"}
        since = max(parse_time(state.mark) - MARGIN_SECONDS, 0) if state.mark else None
        if since is not None:
            params["updated_since"] = format_time(since)
        records, pages, mark, current = 0, 0, state.mark, True
        for page in self.pipedrive.list_pages(LISTS[entity][1], params):
            pages += 1
            records += len(page)
            self.ledger.index_records(entity, [record["id"] for record in page],
                                      [row for record in page for row in index_rows(entity, record, self.domain_field)])
            if page:
                mark = page[-1].get("update_time") or mark
            full = len(page) >= self.pipedrive.page_limit
            if max_pages is not None and pages >= max_pages and full and mark != state.mark:
                current = False  # more to read: the next run goes on from here
                break
        self.pages_read += pages
        if current and since is not None:
            state.last_records = records
        # An empty account is read from the beginning of time again: our clock is not Pipedrive's.
        state.mark, state.current, state.page_size = mark or EPOCH, current, self.pipedrive.page_limit
        state.save(self.ledger, entity)
        return current

    def persons(self, emails: Iterable[str]) -> dict[str, dict[str, Any]]:
        return indexed_persons(self.ledger, emails)

    def organization_ids(self, organizations: Iterable[pd.Series]) -> dict[str, int]:
        return indexed_organizations(self.ledger, organizations, self.domain_field)

    def add(self, entity: str, record: dict[str, Any]) -> None:
        """A record this run created: found by the run's later lookups (another spelling of the same name)
        without waiting for the next read."""
        self.ledger.index_records(entity, [record["id"]], index_rows(entity, record, self.domain_field))

    def forget(self, entity: str, record_id: int) -> bool:
        """A record Pipedrive no longer has leaves the index, and what replaced it (a merge's survivor,
        whose update time moved) is read, within what searching one key would cost. True when that read
        reached the present, so the index may be asked for the record's key again (else: search it)."""
        self.ledger.unindex(entity, record_id)
        way = self.way(entity, 1)
        return way.kind == "index" and self.read(entity, way.max_pages)
