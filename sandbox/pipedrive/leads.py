"""Leads and lead labels (API v1; lead search is v2): body rules, custom fields at the root, defaults,
answer shapes and what lead search reads."""

from __future__ import annotations

import copy
import time
import uuid
from typing import Any

from sandbox.common import Request
from sandbox.pipedrive.checks import (
    MAX_TEXT,
    bad_request,
    bad_request_v1,
    check_date,
    check_text,
    check_types,
    custom_value_ok,
    iso_millis,
    parse_text_arg,
    type_ok,
)
from sandbox.pipedrive.seeds import CUSTOM_KEY_RE, LEAD_LABEL_COLORS, USER_ID, custom_fields
from sandbox.pipedrive.table import Filter, Hit, Row, Search, Table, equals, render

LEAD_FIELDS = {
    "title": ("str", False), "owner_id": ("int", False), "label_ids": ("list", False), "person_id": ("int", True),
    "organization_id": ("int", True), "value": ("dict", True), "expected_close_date": ("str", True),
    "visible_to": ("str", False), "was_seen": ("bool", False), "origin_id": ("str", True),
    "channel": ("int", True), "channel_id": ("str", True), "is_archived": ("bool", False),
}
LEAD_NULLABLE = frozenset({"person_id", "organization_id", "origin_id", "channel", "channel_id", "source_deal_id",
                           "value", "expected_close_date", "next_activity_id"})
_UPDATED_KEYS = ("title", "owner_id", "label_ids", "person_id", "organization_id", "is_archived", "value",
                 "expected_close_date", "visible_to", "was_seen", "channel", "channel_id")


def render_lead(lead: Row) -> dict[str, Any]:
    """v1 lead: custom field values (only the set ones) at the root, after the standard fields."""
    out = render(lead, LEAD_NULLABLE)
    out.update(copy.deepcopy(lead["_custom"]))
    return out


def by_added(lead: Row) -> float:
    return lead["_added"]


def check_lead(body: Any, db: Any) -> dict[str, Any]:
    """Check a lead body (new or update) against the store ``db``; answers its custom field values
    (``{code: value}``, ``None`` = unset)."""
    check_types(body, LEAD_FIELDS, err=bad_request_v1)
    check_text(body, "title", err=bad_request_v1)
    for label_id in body.get("label_ids") or []:
        if not isinstance(label_id, str):
            raise bad_request_v1("Invalid type for field 'label_ids': expected an array of UUID strings")
        db.lead_labels.require(label_id, err=bad_request_v1)
    value = body.get("value")
    if value is not None and not (type_ok(value.get("amount"), "num") and type_ok(value.get("currency"), "str")):
        raise bad_request_v1("Field 'value' needs both 'amount' (number) and 'currency' (string)")
    check_date(body.get("expected_close_date"), "expected_close_date", err=bad_request_v1)
    if body.get("visible_to") is not None and body["visible_to"] not in ("1", "3", "5", "7"):
        raise bad_request_v1("Invalid 'visible_to': one of \"1\", \"3\", \"5\", \"7\"")
    db.persons.require(body.get("person_id"), err=bad_request_v1)
    db.organizations.require(body.get("organization_id"), err=bad_request_v1)
    return lead_custom_values(body, custom_fields(db.deal_fields))


def lead_custom_values(body: dict[str, Any], known: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Custom field values at the root of a lead body (keys: 40-hex deal custom field codes, ``known``).

    Any 40-hex key that is not an existing deal custom field is a 400, so a typo or stale code fails
    loudly instead of being dropped.
    """
    values: dict[str, Any] = {}
    for key, value in body.items():
        if not CUSTOM_KEY_RE.match(key):
            continue
        field = known.get(key)
        if field is None:
            raise bad_request_v1(f"Unknown custom field key '{key}': not a deal custom field "
                                 "(see GET /api/v2/dealFields)")
        if value is not None:
            _check_custom_value(key, value, field)
        values[key] = value
    return values


def _check_custom_value(key: str, value: Any, field: dict[str, Any]) -> None:
    too_long = isinstance(value, str) and len(value) > MAX_TEXT
    if field["field_type"] in ("varchar", "varchar_auto", "phone") and too_long:
        raise bad_request_v1(f"Custom field '{field['field_name']}' ({key}) is too long: "
                             f"at most {MAX_TEXT} characters")
    if not _v1_value_ok(value, field):
        raise bad_request_v1(f"Invalid value for custom field '{field['field_name']}' ({key}): "
                             f"expected {field['field_type']}")


def _v1_value_ok(value: Any, field: dict[str, Any]) -> bool:
    """As v2 (``custom_value_ok``), but v1 lead bodies keep their looser option checks: an enum value
    any string, a set value anything."""
    if field["field_type"] == "enum":
        return isinstance(value, str)
    if field["field_type"] == "set":
        return True
    return custom_value_ok(value, field)


def check_new_lead(body: Any, db: Any) -> dict[str, Any]:
    custom = check_lead(body, db)
    if not (body.get("title") or "").strip():
        raise bad_request_v1("Field 'title' is required")
    if body.get("person_id") is None and body.get("organization_id") is None:
        raise bad_request_v1("A lead must be linked to a person or an organization")
    return custom


def check_lead_update(lead: Row, body: Any, db: Any) -> dict[str, Any]:
    """As ``check_lead``; ``null`` unsets person_id / organization_id / value / expected_close_date ...
    but a lead must keep a person or an organization."""
    custom = check_lead(body, db)
    if "title" in body and not (body["title"] or "").strip():
        raise bad_request_v1("Field 'title' must not be empty")
    person_id = body["person_id"] if "person_id" in body else lead["person_id"]
    org_id = body["organization_id"] if "organization_id" in body else lead["organization_id"]
    if person_id is None and org_id is None:
        raise bad_request_v1("A lead must stay linked to a person or an organization")
    return custom


def new_lead(body: dict[str, Any], custom: dict[str, Any], now: float) -> Row:
    lead_id = str(uuid.uuid4())
    return {
        "id": lead_id, "title": body["title"], "owner_id": body.get("owner_id", USER_ID),
        "creator_id": USER_ID, "label_ids": list(body.get("label_ids") or []),
        "person_id": body.get("person_id"), "organization_id": body.get("organization_id"),
        "source_name": "API", "origin": "API", "origin_id": body.get("origin_id"),
        "channel": body.get("channel"), "channel_id": body.get("channel_id"), "source_deal_id": None,
        "is_archived": False, "was_seen": bool(body.get("was_seen", False)),
        "value": copy.deepcopy(body.get("value")), "expected_close_date": body.get("expected_close_date"),
        "next_activity_id": None, "add_time": iso_millis(now), "update_time": iso_millis(now),
        "visible_to": body.get("visible_to", "3"),
        "cc_email": f"sandbox+1+lead{lead_id.replace('-', '')[:22]}@sandbox.pipedrivemail.com",
        "_custom": {k: copy.deepcopy(v) for k, v in custom.items() if v is not None},
        "_added": now, "_updated": now, "_touched": time.monotonic(),
    }


def apply_lead(lead: Row, body: dict[str, Any], custom: dict[str, Any], now: float) -> None:
    for key in _UPDATED_KEYS:
        if key in body:
            lead[key] = copy.deepcopy(body[key])
    if lead["label_ids"] is None:
        lead["label_ids"] = []
    for key, value in custom.items():
        if value is None:
            lead["_custom"].pop(key, None)
        else:
            lead["_custom"][key] = copy.deepcopy(value)
    lead["update_time"] = iso_millis(now)
    lead["_updated"] = now
    lead["_touched"] = time.monotonic()


# ----------------------------------------------------------------------------- lead search (v2)

def _custom_texts(lead: Row) -> list[str]:
    return [f"{value:g}" if isinstance(value, float) else str(value) for value in lead["_custom"].values()
            if not isinstance(value, bool) and isinstance(value, (str, int, float))]


def parse_include(request: Request, name: str) -> str | None:
    include = parse_text_arg(request, name)
    if include and include != "lead.was_seen":
        raise bad_request("Invalid query parameter 'include_fields': lead.was_seen")
    return include


# Title, notes (the sandbox has no lead notes) and custom field values.
LEAD_SEARCH = Search(
    fields={"custom_fields": _custom_texts, "notes": lambda lead: [], "title": lambda lead: [lead["title"]]},
    filters=(equals("person_id"), equals("organization_id"), Filter("include_fields", parse_include)),
)


def lead_hit(hit: Hit, persons: Table, organizations: Table, include: str | None) -> dict[str, Any]:
    lead = hit.row
    person = persons.get(lead.get("person_id"))
    org = organizations.get(lead.get("organization_id"))
    item: dict[str, Any] = {
        "id": lead["id"], "type": "lead", "title": lead["title"], "owner": {"id": lead["owner_id"]},
        "phones": [ph["value"] for ph in person["phones"]] if person else [],
        "emails": [e["value"] for e in person["emails"]] if person else [],
        "custom_fields": hit.matched.get("custom_fields", []), "notes": [],
        "visible_to": int(lead["visible_to"]), "is_archived": lead["is_archived"],
    }
    # person / organization / value / currency are non-nullable in the spec: left out when unset.
    if person is not None:
        item["person"] = {"id": person["id"], "name": person["name"]}
    if org is not None:
        item["organization"] = {"id": org["id"], "name": org["name"]}
    value = lead.get("value")
    if value is not None:
        if float(value["amount"]).is_integer():  # the spec types it as an integer
            item["value"] = int(value["amount"])
        item["currency"] = value["currency"]
    if include == "lead.was_seen":
        item["was_seen"] = lead["was_seen"]
    return {"result_score": hit.score, "item": item}


# ----------------------------------------------------------------------------- lead labels

def check_lead_label(body: Any) -> dict[str, Any]:
    check_types(body, {"name": ("str", False), "color": ("str", False)}, err=bad_request_v1)
    check_text(body, "name", err=bad_request_v1, required=True)
    if body.get("color") not in LEAD_LABEL_COLORS:
        raise bad_request_v1(f"Field 'color' is required: one of {', '.join(LEAD_LABEL_COLORS)}")
    return body


def new_lead_label(label_id: str, name: str, color: str, now: float) -> Row:
    return {"id": label_id, "name": name, "color": color, "add_time": iso_millis(now),
            "update_time": iso_millis(now)}
