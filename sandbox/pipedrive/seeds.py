"""What a new sandbox Pipedrive company starts with: pipelines and stages, activity types, lead labels,
and the standard and custom deal, organization and lead fields; plus how the field lists are answered.
"""

from __future__ import annotations

import copy
import hashlib
import re
from datetime import UTC, datetime
from typing import Any

from sandbox.common import Request
from sandbox.pipedrive.checks import bad_request, parse_list_arg
from sandbox.pipedrive.table import render

USER_ID = 1
PLAIN_NULLABLE = frozenset({"days_to_rotten"})
LEAD_LABEL_COLORS = ("blue", "brown", "dark-gray", "gray", "green", "orange", "pink", "purple", "red", "yellow")
ICON_KEYS = (
    "task", "email", "meeting", "deadline", "call", "lunch", "calendar", "downarrow", "document", "smartphone",
    "camera", "scissors", "cogs", "bubble", "uparrow", "checkbox", "signpost", "shuffle", "addressbook",
    "linegraph", "picture", "car", "world", "search", "clip", "sound", "brush", "key", "padlock", "pricetag",
    "suitcase", "finish", "plane", "loop", "wifi", "truck", "cart", "bulb", "bell", "presentation",
)
SEED_PIPELINES = (
    (1, "Sales pipeline", ("Qualified", "Contact Made", "Proposal Made", "Negotiations Started")),
    (2, "LeadBoxer test pipeline", ("New", "Engaged", "Qualified")),
)
SEED_ACTIVITY_TYPES = (("Call", "call"), ("Meeting", "meeting"), ("Task", "task"), ("Deadline", "deadline"),
                       ("Email", "email"), ("Lunch", "lunch"))


def field_code(name: str) -> str:
    """A custom field's 40-hex key: Pipedrive generates a hash; the sandbox uses sha1 of the field name."""
    return hashlib.sha1(name.encode()).hexdigest()


CUSTOM_KEY_RE = re.compile(r"^[0-9a-fA-F]{40}$")
# Lead labels of a new Pipedrive company. The ids are fixed (uuid5 of
# "https://sandbox.pipedrive/leadLabels/<name>" in NAMESPACE_URL) so clients may cache them.
SEED_LEAD_LABELS = (
    ("82d37986-2906-56bb-8111-c0d14cea66d3", "Hot", "red"),
    ("fcc9e0a7-d5d7-5679-bbd2-10e0bc4057a5", "Warm", "yellow"),
    ("79a5d723-c9fb-5afd-b92f-25084f63f34b", "Cold", "blue"),
)
# Deal custom fields of the sandbox company (leads inherit them): (name, field_type).
SEED_DEAL_CUSTOM_FIELDS = (
    ("LeadBoxer lead score", "double"),
    ("LeadBoxer lead card", "varchar"),
    ("LeadBoxer first channel", "varchar"),
    ("LeadBoxer last channel", "varchar"),
    ("LeadBoxer visits", "double"),
    ("LeadBoxer country", "varchar"),
    ("LeadBoxer last visit", "date"),
)
_VISIBILITY_OPTIONS = [{"id": "1", "label": "Owner only"}, {"id": "3", "label": "Owner's visibility group"},
                       {"id": "5", "label": "Owner's visibility group and sub-groups"},
                       {"id": "7", "label": "Entire company"}]
# Standard deal fields (v2 names): (field_code, field_name, field_type, description, options, subfields).
STANDARD_DEAL_FIELDS: tuple[tuple[str, str, str, str, list | None, list | None], ...] = (
    ("id", "ID", "int", "The ID of the deal", None, None),
    ("title", "Title", "varchar", "The title of the deal", None, None),
    ("creator_user_id", "Creator", "user", "The user who created the deal", None, None),
    ("owner_id", "Owner", "user", "The user who owns the deal", None, None),
    ("value", "Value", "monetary", "The monetary value of the deal", None,
     [{"field_code": "value", "field_name": "Amount of Value", "field_type": "double"},
      {"field_code": "currency", "field_name": "Currency of Value", "field_type": "varchar"}]),
    ("currency", "Currency", "varchar", "The currency of the deal value", None, None),
    ("probability", "Probability", "double", "The success probability percentage of the deal", None, None),
    ("org_id", "Organization", "org", "The organization linked to the deal", None, None),
    ("pipeline_id", "Pipeline", "int", "The pipeline of the deal", None, None),
    ("person_id", "Contact person", "people", "The person linked to the deal", None, None),
    ("stage_id", "Stage", "stage", "The pipeline stage of the deal", None, None),
    ("status", "Status", "status", "The status of the deal",
     [{"id": "open", "label": "Open"}, {"id": "won", "label": "Won"}, {"id": "lost", "label": "Lost"},
      {"id": "deleted", "label": "Deleted"}], None),
    ("add_time", "Deal created", "date", "When the deal was created", None, None),
    ("update_time", "Update time", "date", "When the deal was last updated", None, None),
    ("stage_change_time", "Last stage change", "date", "When the deal last changed stage", None, None),
    ("close_time", "Deal closed on", "date", "When the deal was closed", None, None),
    ("won_time", "Won time", "date", "When the deal was won", None, None),
    ("lost_time", "Lost time", "date", "When the deal was lost", None, None),
    ("lost_reason", "Lost reason", "varchar", "Why the deal was lost", None, None),
    ("visible_to", "Visible to", "visible_to", "The visibility of the deal", _VISIBILITY_OPTIONS, None),
    ("expected_close_date", "Expected close date", "date", "When the deal is expected to close", None, None),
    ("label_ids", "Label", "set", "The labels of the deal",
     [{"id": 1, "label": "Hot", "color": "red"}, {"id": 2, "label": "Warm", "color": "yellow"},
      {"id": 3, "label": "Cold", "color": "blue"}], None),
    ("origin", "Source origin", "varchar", "How the deal was created", None, None),
    ("origin_id", "Source origin ID", "varchar", "The ID further distinguishing the origin", None, None),
    ("channel", "Source channel", "enum", "The marketing channel the deal came from", [], None),
    ("channel_id", "Source channel ID", "varchar", "The ID further distinguishing the channel", None, None),
)
# Standard lead fields for v1 /leadFields: (key, name, field_type, mandatory).
STANDARD_LEAD_FIELDS = (
    ("title", "Title", "varchar", True),
    ("owner_id", "Owner", "user", False),
    ("person_id", "Person", "people", False),
    ("organization_id", "Organization", "org", False),
    ("value", "Value", "monetary", False),
    ("expected_close_date", "Expected close date", "date", False),
    ("label_ids", "Labels", "set", False),
    ("visible_to", "Visible to", "visible_to", False),
    ("source_name", "Source", "varchar", False),
)
DEAL_FIELD_INCLUDES = ("ui_visibility", "important_fields", "required_fields")
# The organization ``industry`` options: the industries the LeadBoxer sandbox generates (a copy of
# ``sandbox/leadboxer/generator.py`` ``_INDUSTRIES``), then "Other"; option ids count from 1.
INDUSTRIES = (
    "Machinery Manufacturing", "Software Development", "Logistics and Supply Chain", "Food and Beverage Services",
    "Renewable Energy", "Hospitals and Health Care", "Financial Services", "Retail", "Marketing Services",
    "IT Services and IT Consulting", "Biotechnology Research", "Truck Transportation", "Other",
)
INDUSTRY_OPTIONS = [{"id": number, "label": name} for number, name in enumerate(INDUSTRIES, start=1)]
# Standard organization fields (v2 names), same tuple shape as STANDARD_DEAL_FIELDS.
STANDARD_ORGANIZATION_FIELDS: tuple[tuple[str, str, str, str, list | None, list | None], ...] = (
    ("id", "ID", "int", "The ID of the organization", None, None),
    ("name", "Name", "varchar", "The name of the organization", None, None),
    ("owner_id", "Owner", "user", "The user who owns the organization", None, None),
    ("address", "Address", "address", "The address of the organization", None, None),
    ("website", "Website", "varchar", "The website of the organization", None, None),
    ("linkedin", "LinkedIn profile", "varchar", "The LinkedIn profile of the organization", None, None),
    ("industry", "Industry", "enum", "The industry of the organization", INDUSTRY_OPTIONS, None),
    ("label_ids", "Labels", "set", "The labels of the organization", [], None),
    ("visible_to", "Visible to", "visible_to", "The visibility of the organization", _VISIBILITY_OPTIONS, None),
    ("add_time", "Organization created", "date", "When the organization was created", None, None),
    ("update_time", "Update time", "date", "When the organization was last updated", None, None),
)
# Organization custom fields of the sandbox company: (name, field_type). Two text fields may hold
# the same domain, so a client matching on one of them must check which field matched.
SEED_ORGANIZATION_CUSTOM_FIELDS = (
    ("Domain", "varchar"),
    ("Parent company domain", "varchar"),
    ("LeadBoxer lead score", "double"),
)
# Person fields that exist only when contact sync is enabled for the company (the spec: "Fields ims,
# postal_address, notes, birthday, and job_title are only included if contact sync is enabled").
CONTACT_SYNC_FIELDS = ("im", "postal_address", "notes", "birthday", "job_title")
# Standard person fields (v2 names), same tuple shape as STANDARD_DEAL_FIELDS.
STANDARD_PERSON_FIELDS: tuple[tuple[str, str, str, str, list | None, list | None], ...] = (
    ("id", "ID", "int", "The ID of the person", None, None),
    ("name", "Name", "varchar", "The name of the person", None, None),
    ("first_name", "First name", "varchar", "The first name of the person", None, None),
    ("last_name", "Last name", "varchar", "The last name of the person", None, None),
    ("owner_id", "Owner", "user", "The user who owns the person", None, None),
    ("org_id", "Organization", "org", "The organization of the person", None, None),
    ("emails", "Email", "varchar", "The emails of the person", None, None),
    ("phones", "Phone", "phone", "The phone numbers of the person", None, None),
    ("label_ids", "Labels", "set", "The labels of the person", [], None),
    ("visible_to", "Visible to", "visible_to", "The visibility of the person", _VISIBILITY_OPTIONS, None),
    ("add_time", "Person created", "date", "When the person was created", None, None),
    ("update_time", "Update time", "date", "When the person was last updated", None, None),
    ("job_title", "Job title", "varchar", "The job title of the person (contact sync)", None, None),
    ("postal_address", "Postal address", "address", "The postal address of the person (contact sync)", None,
     None),
    ("notes", "Notes", "text", "Contact sync notes of the person", None, None),
    ("birthday", "Birthday", "date", "The birthday of the person (contact sync)", None, None),
    ("im", "Instant messenger", "varchar", "The instant messaging accounts of the person (contact sync)", None,
     None),
)
# Person custom fields of the sandbox company: (name, field_type[, options]).
SEED_PERSON_CUSTOM_FIELDS = (
    ("LeadBoxer lead score", "double"),
    ("LeadBoxer lead card", "varchar"),
    ("LeadBoxer last visit", "date"),
    ("LeadBoxer first channel", "enum",
     [{"id": number, "label": label}
      for number, label in enumerate(("direct", "organic", "social", "email", "referral", "paid"), start=1)]),
)


def _seed_fields(standard: tuple, custom: tuple) -> list[dict[str, Any]]:
    fields: list[dict[str, Any]] = []
    for code, name, ftype, description, options, subfields in standard:
        fields.append({"field_name": name, "field_code": code, "description": description, "field_type": ftype,
                       "options": copy.deepcopy(options), "subfields": copy.deepcopy(subfields),
                       "is_custom_field": False, "is_optional_response_field": False})
    for name, ftype, *options in custom:
        fields.append({"field_name": name, "field_code": field_code(name), "field_type": ftype,
                       "options": copy.deepcopy(options[0]) if options else None, "subfields": None,
                       "is_custom_field": True, "is_optional_response_field": False})
    return fields


def seed_deal_fields() -> list[dict[str, Any]]:
    return _seed_fields(STANDARD_DEAL_FIELDS, SEED_DEAL_CUSTOM_FIELDS)


def seed_organization_fields() -> list[dict[str, Any]]:
    return _seed_fields(STANDARD_ORGANIZATION_FIELDS, SEED_ORGANIZATION_CUSTOM_FIELDS)


def seed_person_fields(contact_sync: bool = True) -> list[dict[str, Any]]:
    """The person fields; without contact sync the ``CONTACT_SYNC_FIELDS`` do not exist."""
    standard = tuple(f for f in STANDARD_PERSON_FIELDS if contact_sync or f[0] not in CONTACT_SYNC_FIELDS)
    return _seed_fields(standard, SEED_PERSON_CUSTOM_FIELDS)


def field_by_code(fields: list[dict[str, Any]], code: str) -> dict[str, Any] | None:
    """The field of a field list with that ``field_code`` (None: the company has no such field)."""
    return next((f for f in fields if f["field_code"] == code), None)


def render_plain(row: dict[str, Any]) -> dict[str, Any]:
    """The answer shape of the seeded kinds: pipelines, stages, activity types and lead labels."""
    return render(row, PLAIN_NULLABLE)


def custom_fields(fields: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The custom ones of a field list, by field code."""
    return {f["field_code"]: f for f in fields if f["is_custom_field"]}


# ----------------------------------------------------------------------------- answering field lists

def parse_includes(request: Request) -> list[str]:
    """``include_fields`` of the v2 field lists (``/dealFields``, ``/organizationFields``, ``/personFields``):
    a comma list of optional namespaces."""
    include = parse_list_arg(request, "include_fields")
    for part in include:
        if part not in DEAL_FIELD_INCLUDES:
            raise bad_request(f"Invalid 'include_fields' value '{part}': one of {', '.join(DEAL_FIELD_INCLUDES)}")
    return include


def render_field(field: dict[str, Any], include: list[str]) -> dict[str, Any]:
    out = copy.deepcopy(field)
    if "ui_visibility" in include:
        out["ui_visibility"] = {"add_visible_flag": True, "details_visible_flag": True,
                                "projects_detail_visible_flag": False,
                                "show_in_pipelines": {"show_in_all": True, "pipeline_ids": []}}
    if "important_fields" in include:
        out["important_fields"] = {"enabled": False, "stage_ids": []}
    if "required_fields" in include:
        out["required_fields"] = {"enabled": field["field_code"] in ("title", "name"), "stage_ids": [],
                                  "statuses": {}}
    return out


def lead_fields(deal_fields: list[dict[str, Any]], stamp_ts: float) -> list[dict[str, Any]]:
    """v1 ``/leadFields``: the standard lead fields, then the deal custom fields (leads inherit them)."""
    stamp = datetime.fromtimestamp(stamp_ts, UTC).strftime("%Y-%m-%d %H:%M:%S")
    entries = [(key, name, ftype, mandatory, False) for key, name, ftype, mandatory in STANDARD_LEAD_FIELDS]
    entries += [(f["field_code"], f["field_name"], f["field_type"], False, True)
                for f in deal_fields if f["is_custom_field"]]
    return [_lead_field(number, *entry, stamp) for number, entry in enumerate(entries, start=1)]


def _lead_field(number: int, key: str, name: str, ftype: str, mandatory: bool, custom: bool,
                stamp: str) -> dict[str, Any]:
    return {
        "id": number, "key": key, "name": name, "order_nr": number, "field_type": ftype,
        "add_time": stamp, "update_time": stamp,
        "last_updated_by_user_id": USER_ID if custom else None,
        "created_by_user_id": USER_ID if custom else None,
        "active_flag": True, "edit_flag": custom, "index_visible_flag": True, "details_visible_flag": True,
        "add_visible_flag": True, "important_flag": False, "bulk_edit_allowed": True,
        "searchable_flag": custom and ftype in ("varchar", "double"), "filtering_allowed": True,
        "sortable_flag": True, "mandatory_flag": mandatory, "options": None,
    }
