"""Persons and organizations (API v2): body rules, defaults, answer shapes and what their searches read."""

from __future__ import annotations

import copy
from typing import Any

from sandbox.pipedrive.checks import (
    bad_request,
    check_common,
    check_custom_fields,
    check_date,
    check_option,
    contact_list,
    type_ok,
)
from sandbox.pipedrive.seeds import CONTACT_SYNC_FIELDS, USER_ID, custom_fields, field_by_code
from sandbox.pipedrive.table import Hit, Row, Search, Table, equals, merge_custom_fields, render

# ----------------------------------------------------------------------------- persons

PERSON_FIELDS = {
    "name": ("str", False), "first_name": ("str", False), "last_name": ("str", False), "owner_id": ("int", False),
    "org_id": ("int", True), "add_time": ("str", False), "emails": ("list", False), "phones": ("list", False),
    "visible_to": ("int", False), "label_ids": ("list", False), "postal_address": ("dict", True),
    "notes": ("str", True), "im": ("list", False), "birthday": ("str", True), "job_title": ("str", True),
    "marketing_status": ("str", False), "custom_fields": ("dict", False),
}
MARKETING_STATUSES = (None, "no_consent", "unsubscribed", "subscribed", "archived")
_PERSON_COPIED = ("owner_id", "org_id", "visible_to", "label_ids", "postal_address", "notes", "birthday",
                  "job_title")
_CONTACT_LISTS = ("emails", "phones", "im")


def render_person(person: Row, contact_sync: bool = True) -> dict[str, Any]:
    """The person's answer shape; without contact sync the contact-sync-only fields are left out."""
    out = render(person)
    if not contact_sync:
        for key in CONTACT_SYNC_FIELDS:
            out.pop(key, None)
    return out


def check_person(body: Any, organizations: Table, fields: list[dict[str, Any]]) -> dict[str, Any]:
    """``fields``: the person fields; a contact-sync-only field missing from them may not be set, and
    ``custom_fields`` keys must be their custom field codes, with values of the field's type or null."""
    check_common(body, PERSON_FIELDS, "name", "first_name", "last_name")
    for key in CONTACT_SYNC_FIELDS:
        if key in body and field_by_code(fields, key) is None:
            raise bad_request(f"Field '{key}' cannot be set: contact sync is not enabled for the company")
    if body.get("marketing_status") not in MARKETING_STATUSES:
        raise bad_request("Invalid 'marketing_status'")
    check_date(body.get("birthday"), "birthday")
    organizations.require(body.get("org_id"))
    check_custom_fields(body.get("custom_fields") or {}, custom_fields(fields), "personFields")
    return body


def check_new_person(body: Any, organizations: Table, fields: list[dict[str, Any]]) -> dict[str, Any]:
    check_person(body, organizations, fields)
    if not (body.get("name") or "").strip() and not (body.get("first_name") or body.get("last_name")):
        raise bad_request("Either 'name' or 'first_name' and 'last_name' must be provided")
    return body


def check_person_update(body: Any, organizations: Table, fields: list[dict[str, Any]]) -> dict[str, Any]:
    check_person(body, organizations, fields)
    if "name" in body and not body["name"].strip():
        raise bad_request("Field 'name' must not be empty")
    return body


def new_person(person_id: int) -> Row:
    return {
        "id": person_id, "name": "", "first_name": None, "last_name": None,
        "owner_id": USER_ID, "org_id": None, "add_time": None, "update_time": None, "emails": [],
        "phones": [], "is_deleted": False, "visible_to": 3, "label_ids": [], "picture_id": None,
        "postal_address": None, "notes": None, "im": [], "birthday": None, "job_title": None,
        "custom_fields": {},
    }


def full_name(person: Row) -> str:
    return " ".join(x for x in (person.get("first_name"), person.get("last_name")) if x)


def apply_person(person: Row, body: dict[str, Any]) -> None:
    """Write a checked body into the person. Contact arrays are replaced whole (and checked item by item
    as they are written); ``custom_fields`` is merged key by key (a null value clears that key)."""
    _apply_names(person, body)
    for key in _PERSON_COPIED:
        if key in body:
            person[key] = copy.deepcopy(body[key])
    merge_custom_fields(person, body.get("custom_fields"))
    for key in _CONTACT_LISTS:
        if key in body:
            person[key] = contact_list(body[key], key)
    if "marketing_status" in body:
        person["_marketing_status"] = body["marketing_status"]


def _apply_names(person: Row, body: dict[str, Any]) -> None:
    """``name`` alone is split into first and last name; first/last name alone make the name."""
    for key in ("name", "first_name", "last_name"):
        if key in body:
            person[key] = body[key]
    parts = "first_name" in body or "last_name" in body
    if "name" in body and not parts:
        first, _, last = body["name"].partition(" ")
        person["first_name"], person["last_name"] = first, last
    elif "name" not in body and parts:
        person["name"] = full_name(person)


def _custom_texts(values: dict[str, Any]) -> list[str]:
    return [str(v) for v in values.values() if isinstance(v, (str, int, float)) and not isinstance(v, bool)]


PERSON_SEARCH = Search(fields={
    "custom_fields": lambda person: _custom_texts(person["custom_fields"]),
    "email": lambda person: [e["value"] for e in person["emails"]],
    "notes": lambda person: [person["notes"]] if person.get("notes") else [],
    "phone": lambda person: [ph["value"] for ph in person["phones"]],
    "name": lambda person: [person.get("name") or ""],
}, filters=(equals("organization_id", "org_id"),))


def person_hit(hit: Hit, organizations: Table) -> dict[str, Any]:
    person = hit.row
    item: dict[str, Any] = {
        "id": person["id"], "type": "person", "name": person.get("name") or "",
        "phones": [ph["value"] for ph in person["phones"]],
        "emails": [e["value"] for e in person["emails"]],
        "visible_to": person["visible_to"], "owner": {"id": person["owner_id"]},
        "custom_fields": [], "notes": [],
    }
    org = organizations.get(person.get("org_id"))
    if org is not None:  # the spec types it as a non-null object: left out when there is none
        item["organization"] = {"id": org["id"], "name": org["name"],
                                "address": (org.get("address") or {}).get("value")}
    return {"result_score": hit.score, "item": item}


# ----------------------------------------------------------------------------- organizations

ORG_FIELDS = {
    "name": ("str", False), "owner_id": ("int", False), "add_time": ("str", False), "visible_to": ("int", False),
    "label_ids": ("list", False), "address": ("dict", True), "website": ("str", True), "linkedin": ("str", True),
    "annual_revenue": ("int", True), "employee_count": ("int", True), "custom_fields": ("dict", False),
}  # and ``industry``: null or an option id of the ``industry`` field (``check_industry``)
ORG_NULLABLE = frozenset({"website", "linkedin", "industry", "annual_revenue", "employee_count"})
# updateOrganization's body: no ``add_time``, and ``address`` (like every field but the nullable five) may
# not be null.
ORG_UPDATE_FIELDS = {**{name: kind for name, kind in ORG_FIELDS.items() if name != "add_time"},
                     "address": ("dict", False)}
ADDRESS_PARTS = ("value", "country", "admin_area_level_1", "admin_area_level_2", "locality", "sublocality",
                 "route", "street_number", "subpremise", "postal_code")
_ORG_COPIED = ("name", "owner_id", "visible_to", "label_ids", "address", "website", "linkedin", "industry",
               "annual_revenue", "employee_count")


def render_organization(org: Row) -> dict[str, Any]:
    return render(org, ORG_NULLABLE)


def check_organization(body: Any, fields: list[dict[str, Any]]) -> dict[str, Any]:
    """``fields``: the organization fields, whose custom ones ``custom_fields`` may set."""
    check_common(body, ORG_FIELDS, "name", required="name")
    if body.get("address") is not None and not type_ok(body["address"].get("value", ""), "str"):
        raise bad_request("Invalid type for field 'address.value': expected string")
    check_industry(body, fields)
    check_custom_fields(body.get("custom_fields") or {}, custom_fields(fields), "organizationFields")
    return body


def check_industry(body: dict[str, Any], fields: list[dict[str, Any]]) -> None:
    """``industry``: null or one of the option ids of the organization field ``industry``."""
    industry = field_by_code(fields, "industry")
    if industry is not None:
        check_option(body, industry, "organizationFields")


def check_organization_update(body: Any, fields: list[dict[str, Any]]) -> dict[str, Any]:
    """A PATCH body: every field optional, ``name`` non-blank when given, every ``address`` part a string,
    ``custom_fields`` keys organization custom field codes (``fields``) with values of their type or null."""
    check_common(body, ORG_UPDATE_FIELDS, "name")
    if "name" in body and not body["name"].strip():
        raise bad_request("Field 'name' must not be empty")
    for part in ADDRESS_PARTS:
        if part in (body.get("address") or {}) and not type_ok(body["address"][part], "str"):
            raise bad_request(f"Invalid type for field 'address.{part}': expected string")
    check_industry(body, fields)
    check_custom_fields(body.get("custom_fields") or {}, custom_fields(fields), "organizationFields")
    return body


def apply_organization(org: Row, body: dict[str, Any]) -> None:
    """Write a checked PATCH body into the organization: ``address`` is replaced whole, ``custom_fields``
    merged key by key (a null value clears that key)."""
    for key in _ORG_COPIED:
        if key in body:
            org[key] = copy.deepcopy(body[key])
    merge_custom_fields(org, body.get("custom_fields"))


def new_organization(org_id: int, body: dict[str, Any]) -> Row:
    return {
        "id": org_id, "name": body["name"], "owner_id": body.get("owner_id", USER_ID),
        "add_time": None, "update_time": None, "is_deleted": False, "visible_to": body.get("visible_to", 3),
        "address": copy.deepcopy(body.get("address")), "label_ids": list(body.get("label_ids") or []),
        "website": body.get("website"), "linkedin": body.get("linkedin"), "industry": body.get("industry"),
        "annual_revenue": body.get("annual_revenue"), "employee_count": body.get("employee_count"),
        "custom_fields": copy.deepcopy(body.get("custom_fields") or {}),
    }


def _address(org: Row) -> str | None:
    return (org.get("address") or {}).get("value")


ORGANIZATION_SEARCH = Search(fields={
    "address": lambda org: [_address(org)] if _address(org) else [],
    "custom_fields": lambda org: _custom_texts(org["custom_fields"]),
    "notes": lambda org: [],
    "name": lambda org: [org["name"]],
})


def organization_hit(hit: Hit) -> dict[str, Any]:
    """Like Pipedrive, the hit lists the custom field values that matched (not which field)."""
    org = hit.row
    item: dict[str, Any] = {"id": org["id"], "type": "organization", "name": org["name"],
                            "visible_to": org["visible_to"], "owner": {"id": org["owner_id"]},
                            "custom_fields": hit.matched.get("custom_fields", []), "notes": []}
    address = _address(org)
    if address is not None:
        item["address"] = address
    return {"result_score": hit.score, "item": item}
