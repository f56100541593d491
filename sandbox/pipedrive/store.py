"""In-memory Pipedrive data and the API handlers that read and write it.

Every entity kind lives in a generic ``Table`` (``table.py``: rows by id, filters, sort, paging, search);
the per-entity rules (body checks, defaults, references) and answer shapes are in ``people.py``
(persons, organizations), ``sales.py`` (deals, pipelines, stages, activities, activity types) and
``leads.py`` (leads, lead labels); seed data in ``seeds.py``. Each handler here composes those.

Response shapes follow the official OpenAPI documents (``tests/contract/openapi/openapi-v{1,2}.yaml``).
Where the spec declares a field non-nullable but the entity has no value (e.g. a person without an
organization), the field is left out rather than sent as ``null``, so every answer validates against
the spec; fields the spec marks ``nullable`` are sent as ``null``.
"""

from __future__ import annotations

import copy
import functools
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from sandbox.common import Request
from sandbox.pipedrive import existing, leads, people, sales, seeds
from sandbox.pipedrive.checks import (
    ERROR_INFO,
    error_body,
    not_found,
    ok,
    parse_bool_arg,
    parse_int_arg,
    parse_text_arg,
    rfc3339,
    v1_arg,
)
from sandbox.pipedrive.seeds import USER_ID
from sandbox.pipedrive.table import (
    CURSOR,
    IDS,
    START,
    UPDATED,
    UPDATED_SINCE,
    Filter,
    Query,
    Row,
    Sort,
    Table,
    by_id,
    equals,
    touch,
)

__all__ = ["ERROR_INFO", "PipedriveStore", "error_body"]

Answer = tuple[int, Any]

ORGANIZATION_LIST = Query(filters=(equals("owner_id"), IDS, *UPDATED), sort=Sort())
DEAL_LIST = Query(
    filters=(*(equals(name) for name in ("person_id", "org_id", "pipeline_id", "stage_id", "owner_id")), IDS,
             Filter("status", sales.parse_statuses, lambda deal, statuses: deal["status"] in statuses), *UPDATED),
    sort=Sort(), scope=lambda deal: not deal["is_archived"])
PIPELINE_LIST = Query()  # by id, whatever sort_by says
# Stages are seeded all at once: add_time and update_time order is id order.
_STAGE_SORTS = ("id", "update_time", "add_time", "order_nr")
STAGE_LIST = Query(filters=(equals("pipeline_id"),),
                   sort=Sort(_STAGE_SORTS, keys={"update_time": by_id, "add_time": by_id},
                             loose=frozenset(_STAGE_SORTS), listed=False))
ACTIVITY_LIST = Query(
    filters=(*(equals(name) for name in ("person_id", "deal_id", "org_id", "owner_id")),
             equals("lead_id", parse=parse_text_arg), equals("done", parse=parse_bool_arg), IDS, *UPDATED),
    sort=Sort(("id", "update_time", "add_time", "due_date"), keys={"due_date": sales.by_due_date},
              loose=frozenset({"due_date"})))
# v1: oldest to newest, archived leads not listed.
LEAD_LIST = Query(
    filters=(*(equals(name, parse=v1_arg(parse_int_arg)) for name in ("person_id", "organization_id", "owner_id")),
             UPDATED_SINCE),
    paging=START, scope=lambda lead: not lead["is_archived"])


def locked(handler: Callable[[Any, Request], Answer]) -> Callable[[Any, Request], Answer]:
    @functools.wraps(handler)
    def run(self: PipedriveStore, request: Request) -> Answer:
        with self.lock:
            return handler(self, request)
    return run


class PipedriveStore:
    """All entities, behind one lock. Handlers take a Request and return ``(status, body)``.

    ``contact_sync``: whether contact sync is enabled for the company; without it the persons' ``im``,
    ``postal_address``, ``notes``, ``birthday`` and ``job_title`` do not exist (not in answers nor in
    ``/personFields``, and a body setting one is refused).

    ``existing_persons``, ``existing_emails``, ``seed``: persons (and organizations) the account already
    holds at start and after every reset, made by ``existing.seed_existing``.
    """

    def __init__(self, search_lag: float = 0.0, contact_sync: bool = True, existing_persons: int = 0,
                 existing_emails: list[str] | None = None, seed: int = existing.DEFAULT_SEED) -> None:
        self.lock = threading.RLock()
        self.search_lag = search_lag
        self.contact_sync = bool(contact_sync)
        self.existing_emails = existing.check_emails(existing_emails)
        self.existing_persons = existing.check_count(existing_persons, self.existing_emails)
        self.seed = seed
        # Seconds added to the clock that stamps records (add_time, update_time, updated_since): a benchmark
        # replaying 24 hourly runs in a few minutes moves it an hour before each run.
        self.clock_offset = 0.0
        self.persons = Table("Person", self._render_person)
        self.organizations = Table("Organization", people.render_organization)
        self.deals = Table("Deal", sales.render_deal)
        self.activities = Table("Activity", sales.render_activity)
        self.leads = Table("Lead", leads.render_lead, key=str, order=leads.by_added)
        self.lead_labels = Table("Lead label", seeds.render_plain, key=str)
        self.pipelines = Table("Pipeline", seeds.render_plain)
        self.stages = Table("Stage", seeds.render_plain)
        self.activity_types = Table("Activity type", seeds.render_plain)
        self.deal_fields: list[dict[str, Any]] = []
        self.organization_fields: list[dict[str, Any]] = []
        self.person_fields: list[dict[str, Any]] = []
        self.person_list = Query(filters=(equals("org_id"), equals("owner_id"),
                                          Filter("deal_id", parse_int_arg, self._is_deal_person), IDS, *UPDATED),
                                 sort=Sort())
        self.reset()

    # ------------------------------------------------------------------ state

    def now(self) -> float:
        """The account's clock (epoch seconds): the wall clock plus ``clock_offset``."""
        return time.time() + self.clock_offset

    def reset(self) -> None:
        """Empty every entity and re-seed pipelines, stages, activity types, lead labels, the deal,
        organization and person fields, and the existing persons and organizations (if any).

        Person/organization/deal/activity ids keep increasing across resets, so a stale id cached by
        a client cannot silently point at a new record.
        """
        with self.lock:
            for table in (self.persons, self.organizations, self.deals, self.activities, self.leads,
                          self.lead_labels, self.pipelines, self.stages):
                table.clear()
            self.activity_types.clear(restart_ids=True)
            now = self.now()
            sales.seed_pipelines(self.pipelines, self.stages, rfc3339(now))
            sales.seed_activity_types(self.activity_types, now)
            for label_id, label_name, color in seeds.SEED_LEAD_LABELS:
                self.lead_labels.add(leads.new_lead_label(label_id, label_name, color, now))
            self.deal_fields = seeds.seed_deal_fields()
            self.organization_fields = seeds.seed_organization_fields()
            self.person_fields = seeds.seed_person_fields(self.contact_sync)
            self._field_stamp = now
            existing.seed_existing(self.persons, self.organizations, self.existing_persons,
                                   self.existing_emails, self.seed, now)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            tables = {"persons": self.persons, "organizations": self.organizations, "deals": self.deals,
                      "activities": self.activities, "leads": self.leads, "lead_labels": self.lead_labels,
                      "pipelines": self.pipelines, "stages": self.stages, "activity_types": self.activity_types}
            state: dict[str, Any] = {name: table.rendered() for name, table in tables.items()}
            state["deal_fields"] = copy.deepcopy(self.deal_fields)
            state["organization_fields"] = copy.deepcopy(self.organization_fields)
            state["person_fields"] = copy.deepcopy(self.person_fields)
            state["contact_sync"] = self.contact_sync
            return state

    @staticmethod
    def _created(table: Table, row: Row, now: float) -> Answer:
        touch(row, now, created=True)
        return ok(table.render(table.add(row)))

    def _is_deal_person(self, person: Row, deal_id: int) -> bool:
        deal = self.deals.get(deal_id)
        return deal is not None and deal.get("person_id") == person["id"]

    # ------------------------------------------------------------------ persons

    def _render_person(self, person: Row) -> dict[str, Any]:
        return people.render_person(person, self.contact_sync)

    @locked
    def add_person(self, request: Request) -> Answer:
        body = people.check_new_person(request.json(), self.organizations, self.person_fields)
        person = people.new_person(self.persons.new_id())
        people.apply_person(person, body)
        if not person["name"].strip():
            person["name"] = people.full_name(person)
        return self._created(self.persons, person, self.now())

    @locked
    def get_person(self, request: Request) -> Answer:
        return ok(self._render_person(self.persons.find(request)))

    @locked
    def update_person(self, request: Request) -> Answer:
        body = request.json()
        person = self.persons.find(request)
        people.apply_person(person, people.check_person_update(body, self.organizations, self.person_fields))
        touch(person, self.now())
        return ok(self._render_person(person))

    @locked
    def list_persons(self, request: Request) -> Answer:
        return self.persons.answer_list(request, self.person_list)

    @locked
    def search_persons(self, request: Request) -> Answer:
        page = self.persons.search(request, people.PERSON_SEARCH, self.search_lag)
        return ok({"items": [people.person_hit(hit, self.organizations) for hit in page.rows]}, page.additional)

    # ------------------------------------------------------------------ organizations

    @locked
    def add_organization(self, request: Request) -> Answer:
        body = people.check_organization(request.json(), self.organization_fields)
        org = people.new_organization(self.organizations.new_id(), body)
        return self._created(self.organizations, org, self.now())

    @locked
    def get_organization(self, request: Request) -> Answer:
        return ok(people.render_organization(self.organizations.find(request)))

    @locked
    def update_organization(self, request: Request) -> Answer:
        body = request.json()
        org = self.organizations.find(request)
        people.apply_organization(org, people.check_organization_update(body, self.organization_fields))
        touch(org, self.now())
        return ok(people.render_organization(org))

    @locked
    def list_organizations(self, request: Request) -> Answer:
        return self.organizations.answer_list(request, ORGANIZATION_LIST)

    @locked
    def search_organizations(self, request: Request) -> Answer:
        page = self.organizations.search(request, people.ORGANIZATION_SEARCH, self.search_lag)
        return ok({"items": [people.organization_hit(hit) for hit in page.rows]}, page.additional)

    # ------------------------------------------------------------------ deals, pipelines, stages

    @locked
    def add_deal(self, request: Request) -> Answer:
        body = request.json()
        status = sales.check_deal(body, self)
        stage = sales.deal_stage(body, self.pipelines, self.stages)
        now = self.now()
        return self._created(self.deals, sales.new_deal(self.deals.new_id(), body, status, stage, now), now)

    @locked
    def get_deal(self, request: Request) -> Answer:
        return ok(sales.render_deal(self.deals.find(request)))

    @locked
    def update_deal(self, request: Request) -> Answer:
        body = request.json()
        deal = self.deals.find(request)
        if deal["is_deleted"]:
            raise not_found("Deal not found")
        status, stage = sales.check_deal_update(deal, body, self)
        now = self.now()
        sales.apply_deal_update(deal, body, status, stage, now)
        touch(deal, now)
        return ok(sales.render_deal(deal))

    @locked
    def list_deals(self, request: Request) -> Answer:
        return self.deals.answer_list(request, DEAL_LIST)

    @locked
    def list_pipelines(self, request: Request) -> Answer:
        return self.pipelines.answer_list(request, PIPELINE_LIST)

    @locked
    def list_stages(self, request: Request) -> Answer:
        return self.stages.answer_list(request, STAGE_LIST)

    # ------------------------------------------------------------------ activities and activity types

    @locked
    def add_activity(self, request: Request) -> Answer:
        body = request.json()
        derived = sales.check_activity(body, self)
        now = self.now()
        activity = sales.new_activity(self.activities.new_id(), body, derived, now)
        return self._created(self.activities, activity, now)

    @locked
    def get_activity(self, request: Request) -> Answer:
        return ok(sales.render_activity(self.activities.find(request)))

    @locked
    def list_activities(self, request: Request) -> Answer:
        return self.activities.answer_list(request, ACTIVITY_LIST)

    @locked
    def list_activity_types(self, request: Request) -> Answer:
        return ok([seeds.render_plain(row) for row in self.activity_types.ordered()])

    @locked
    def add_activity_type(self, request: Request) -> Answer:
        body = sales.check_activity_type(request.json())
        key = sales.activity_type_key(body["name"], self.activity_types)
        row = sales.add_activity_type(self.activity_types, body["name"], key, body["icon_key"],
                                body.get("color") or "FFFFFF", custom=True, now=self.now())
        return ok(seeds.render_plain(row))

    # ------------------------------------------------------------------ leads and lead labels

    @locked
    def add_lead(self, request: Request) -> Answer:
        body = request.json()
        custom = leads.check_new_lead(body, self)
        lead = self.leads.add(leads.new_lead(body, custom, self.now()))
        return ok(leads.render_lead(lead), status=201)

    @locked
    def get_lead(self, request: Request) -> Answer:
        return ok(leads.render_lead(self.leads.find(request)))

    @locked
    def update_lead(self, request: Request) -> Answer:
        body = request.json()
        lead = self.leads.find(request)
        leads.apply_lead(lead, body, leads.check_lead_update(lead, body, self), self.now())
        return ok(leads.render_lead(lead))

    @locked
    def list_leads(self, request: Request) -> Answer:
        return self.leads.answer_list(request, LEAD_LIST)

    @locked
    def search_leads(self, request: Request) -> Answer:
        """v2 ``/leads/search``: title, notes (the sandbox has no lead notes) and custom field values."""
        page = self.leads.search(request, leads.LEAD_SEARCH, self.search_lag)
        include = page.args["include_fields"]
        items = [leads.lead_hit(hit, self.persons, self.organizations, include) for hit in page.rows]
        return ok({"items": items}, page.additional)

    @locked
    def list_lead_labels(self, request: Request) -> Answer:
        return ok(self.lead_labels.rendered())

    @locked
    def add_lead_label(self, request: Request) -> Answer:
        body = leads.check_lead_label(request.json())
        label = leads.new_lead_label(str(uuid.uuid4()), body["name"], body["color"], self.now())
        return ok(seeds.render_plain(self.lead_labels.add(label)))

    # ------------------------------------------------------------------ fields

    @locked
    def list_deal_fields(self, request: Request) -> Answer:
        return self._list_fields(self.deal_fields, request)

    @locked
    def list_organization_fields(self, request: Request) -> Answer:
        return self._list_fields(self.organization_fields, request)

    @locked
    def list_person_fields(self, request: Request) -> Answer:
        return self._list_fields(self.person_fields, request)

    @staticmethod
    def _list_fields(fields: list[dict[str, Any]], request: Request) -> Answer:
        include = seeds.parse_includes(request)
        page, additional = CURSOR.page(request, fields)
        return ok([seeds.render_field(field, include) for field in page], additional)

    @locked
    def list_lead_fields(self, request: Request) -> Answer:
        return ok(*START.page(request, seeds.lead_fields(self.deal_fields, self._field_stamp)))

    # ------------------------------------------------------------------ users (v1)

    def current_user(self, request: Request) -> Answer:
        return ok({
            "id": USER_ID, "name": "Sandbox User", "default_currency": "EUR", "locale": "en_US", "lang": 1,
            "email": "sandbox.user@example.com", "phone": None, "activated": True,
            "last_login": "2026-11-20 05:00:00", "created": "2026-01-01 00:00:00", "modified": None,
            "has_created_company": True,
            "access": [{"app": "sales", "admin": True, "permission_set_id": "00000000-0000-4000-8000-000000000001"},
                       {"app": "global", "admin": True, "permission_set_id": "00000000-0000-4000-8000-000000000002"}],
            "active_flag": True, "timezone_name": "UTC", "timezone_offset": "+00:00", "role_id": 1,
            "icon_url": None, "is_you": True, "is_deleted": False, "company_id": 1,
            "company_name": "Sandbox Company", "company_domain": "sandbox-company", "company_country": "NL",
            "company_industry": "IT Services", "language": {"language_code": "en", "country_code": "US"},
        })
