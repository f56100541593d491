"""In-memory Pipedrive data and the API handlers that read and write it.

Response shapes follow the official OpenAPI documents (``tests/contract/openapi/openapi-v{1,2}.yaml``).
Where the spec declares a field non-nullable but the entity has no value (e.g. a person without an
organization), the field is left out rather than sent as ``null``, so every answer validates against
the spec; fields the spec marks ``nullable`` are sent as ``null``.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
import threading
import time
import uuid
from datetime import UTC, date, datetime
from typing import Any

from sandbox.common import HttpError, Request

ERROR_INFO = "Please check developers.pipedrive.com"
USER_ID = 1
# Pipedrive limit on names, titles and subjects. ASSUMPTION: the spec declares no maxLength; 255 is
# the limit commonly observed for Pipedrive text fields, and the sandbox enforces it to catch overruns.
MAX_TEXT = 255
MAX_LIMIT = 500
VISIBLE_TO = (1, 3, 5, 7)
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

# Fields the spec marks nullable: these are sent as null; other None-valued fields are left out.
NULLABLE = {
    "person": frozenset(),
    "organization": frozenset({"website", "linkedin", "industry", "annual_revenue", "employee_count"}),
    "deal": frozenset({"probability", "lost_reason", "close_time", "origin_id", "channel", "channel_id",
                       "source_lead_id", "arr", "mrr", "acv"}),
    "activity": frozenset(),
    "lead": frozenset({"person_id", "organization_id", "origin_id", "channel", "channel_id", "source_deal_id",
                       "value", "expected_close_date", "next_activity_id"}),
    "plain": frozenset({"days_to_rotten"}),
}

DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
TIME_RE = re.compile(r"^(\d{2}):(\d{2})(?::(\d{2}))?$")


# ----------------------------------------------------------------------------- errors and helpers

def error_body(message: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"success": False, "error": message, "error_info": ERROR_INFO, "data": None,
                            "additional_data": None}
    body.update(extra)
    return body


def bad_request(message: str) -> HttpError:
    """v2-style validation error (the shape Pipedrive answers for e.g. a read-only field)."""
    return HttpError(400, {"success": False, "error": message, "code": "ERR_BAD_REQUEST"})


def bad_request_v1(message: str) -> HttpError:
    return HttpError(400, error_body(message, code="ERR_BAD_REQUEST"))


def not_found(message: str) -> HttpError:
    return HttpError(404, error_body(message))


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_millis(ts: float) -> str:
    dt = datetime.fromtimestamp(ts, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_time(value: str, name: str) -> float:
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "T"))
    except ValueError as exc:
        raise bad_request(f"Invalid '{name}': expected an RFC 3339 timestamp") from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


_KIND_NAMES = {"str": "string", "int": "integer", "bool": "boolean", "num": "number", "list": "array",
               "dict": "object"}


def type_ok(value: Any, kind: str) -> bool:
    if kind == "str":
        return isinstance(value, str)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "num":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "list":
        return isinstance(value, list)
    if kind == "dict":
        return isinstance(value, dict)
    return True


def check_types(body: Any, fields: dict[str, tuple[str, bool]], err=bad_request) -> dict[str, Any]:
    """Check known fields' types (``{name: (kind, nullable)}``); unknown fields are ignored."""
    if not isinstance(body, dict):
        raise err("Request body must be a JSON object")
    for name, (kind, nullable) in fields.items():
        if name not in body:
            continue
        value = body[name]
        if value is None:
            if not nullable:
                raise err(f"Field '{name}' must not be null")
            continue
        if not type_ok(value, kind):
            raise err(f"Invalid type for field '{name}': expected {_KIND_NAMES[kind]}")
    return body


def check_text(body: dict[str, Any], name: str, err=bad_request, required: bool = False) -> None:
    value = body.get(name)
    if value is None:
        if required:
            raise err(f"Field '{name}' is required")
        return
    if required and not value.strip():
        raise err(f"Field '{name}' is required")
    if len(value) > MAX_TEXT:
        raise err(f"Field '{name}' is too long: at most {MAX_TEXT} characters")


def check_date(value: str | None, name: str, err=bad_request) -> None:
    if value is None:
        return
    if not DATE_RE.match(value):
        raise err(f"Invalid '{name}': expected YYYY-MM-DD")
    try:
        date.fromisoformat(value)
    except ValueError as exc:
        raise err(f"Invalid '{name}': not a real date") from exc


def norm_time(value: str | None, name: str) -> str | None:
    """Accept HH:MM or HH:MM:SS; answer HH:MM:SS."""
    if value is None:
        return None
    match = TIME_RE.match(value)
    if not match:
        raise bad_request(f"Invalid '{name}': expected HH:MM or HH:MM:SS")
    hours, minutes, seconds = int(match[1]), int(match[2]), int(match[3] or 0)
    if hours > 23 or minutes > 59 or seconds > 59:
        raise bad_request(f"Invalid '{name}': out of range")
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}"


def parse_int_arg(request: Request, name: str) -> int | None:
    raw = request.arg(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError as exc:
        raise bad_request(f"Invalid query parameter '{name}': expected integer") from exc


def parse_bool_arg(request: Request, name: str) -> bool | None:
    raw = request.arg(name)
    if raw is None or raw == "":
        return None
    if raw not in ("true", "false"):  # API v2 is strict: only true/false
        raise bad_request(f"Invalid query parameter '{name}': expected true or false")
    return raw == "true"


def parse_ids_arg(request: Request, name: str = "ids") -> set[int] | None:
    raw = request.arg(name)
    if not raw:
        return None
    try:
        return {int(part) for part in raw.split(",") if part.strip()}
    except ValueError as exc:
        raise bad_request(f"Invalid query parameter '{name}': expected comma-separated integers") from exc


def path_id(request: Request) -> int:
    try:
        return int(request.path_params["id"])
    except ValueError as exc:
        raise bad_request("Invalid id: expected integer") from exc


def encode_cursor(offset: int) -> str:
    raw = json.dumps({"offset": offset}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        offset = int(data["offset"])
    except (ValueError, KeyError, TypeError) as exc:
        raise bad_request("Invalid cursor") from exc
    if offset < 0:
        raise bad_request("Invalid cursor")
    return offset


def parse_limit(request: Request, default: int = 100) -> int:
    limit = parse_int_arg(request, "limit")
    if limit is None:
        return default
    if limit < 1 or limit > MAX_LIMIT:
        raise bad_request(f"Invalid query parameter 'limit': must be between 1 and {MAX_LIMIT}")
    return limit


def paginate_v2(items: list[Any], request: Request) -> tuple[list[Any], dict[str, Any]]:
    """Cursor pagination. ``next_cursor`` is left out at the end (the spec types it as a non-null string)."""
    limit = parse_limit(request)
    cursor = request.arg("cursor")
    offset = decode_cursor(cursor) if cursor else 0
    page = items[offset:offset + limit]
    additional: dict[str, Any] = {}
    if offset + limit < len(items):
        additional["next_cursor"] = encode_cursor(offset + limit)
    return page, additional


def render(entity: dict[str, Any], kind: str) -> dict[str, Any]:
    nullable = NULLABLE[kind]
    return {key: copy.deepcopy(value) for key, value in entity.items()
            if not key.startswith("_") and (value is not None or key in nullable)}


def ok(data: Any, additional: dict[str, Any] | None = None, status: int = 200) -> tuple[int, Any]:
    body: dict[str, Any] = {"success": True, "data": data}
    if additional is not None:
        body["additional_data"] = additional
    return status, body


def sort_entities(items: list[dict[str, Any]], request: Request, allowed: tuple[str, ...]) -> list[dict[str, Any]]:
    sort_by = request.arg("sort_by") or "id"
    direction = request.arg("sort_direction") or "asc"
    if sort_by not in allowed:
        raise bad_request(f"Invalid query parameter 'sort_by': one of {', '.join(allowed)}")
    if direction not in ("asc", "desc"):
        raise bad_request("Invalid query parameter 'sort_direction': asc or desc")
    key_map = {"add_time": "_added", "update_time": "_updated"}
    key = key_map.get(sort_by, sort_by)
    return sorted(items, key=lambda e: (e.get(key) is None, e.get(key) or 0, e["id"]), reverse=direction == "desc")


def filter_updated(items: list[dict[str, Any]], request: Request) -> list[dict[str, Any]]:
    since = request.arg("updated_since")
    until = request.arg("updated_until")
    if since:
        since_ts = parse_time(since, "updated_since")
        items = [e for e in items if e["_updated"] >= since_ts]
    if until:
        until_ts = parse_time(until, "updated_until")
        items = [e for e in items if e["_updated"] < until_ts]
    return items


def contact_list(value: Any, name: str) -> list[dict[str, Any]]:
    """Validate and normalise a v2 ``emails``/``phones``/``im`` array: ``[{value, primary, label}]``."""
    out = []
    for item in value:
        if not isinstance(item, dict):
            raise bad_request(f"Invalid type for field '{name}': items must be objects with a 'value'")
        check_types(item, {"value": ("str", False), "primary": ("bool", False), "label": ("str", False)})
        if "value" not in item:
            raise bad_request(f"Field '{name}[].value' is required")
        out.append({"value": item["value"], "primary": bool(item.get("primary", False)),
                    "label": item.get("label") or ("work" if name != "im" else "skype")})
    if out and not any(entry["primary"] for entry in out):
        out[0]["primary"] = True
    return out


def check_visible_to(body: dict[str, Any]) -> None:
    if body.get("visible_to") is not None and body["visible_to"] not in VISIBLE_TO:
        raise bad_request("Invalid 'visible_to': one of 1, 3, 5, 7")


def check_int_list(body: dict[str, Any], name: str) -> None:
    if body.get(name) is not None and not all(type_ok(v, "int") for v in body[name]):
        raise bad_request(f"Invalid type for field '{name}': expected an array of integers")


PERSON_FIELDS = {
    "name": ("str", False), "first_name": ("str", False), "last_name": ("str", False), "owner_id": ("int", False),
    "org_id": ("int", True), "add_time": ("str", False), "emails": ("list", False), "phones": ("list", False),
    "visible_to": ("int", False), "label_ids": ("list", False), "postal_address": ("dict", True),
    "notes": ("str", True), "im": ("list", False), "birthday": ("str", True), "job_title": ("str", True),
    "marketing_status": ("str", False), "custom_fields": ("dict", False),
}
ORG_FIELDS = {
    "name": ("str", False), "owner_id": ("int", False), "add_time": ("str", False), "visible_to": ("int", False),
    "label_ids": ("list", False), "address": ("dict", True), "website": ("str", True), "linkedin": ("str", True),
    "industry": ("int", True), "annual_revenue": ("int", True), "employee_count": ("int", True),
    "custom_fields": ("dict", False),
}
DEAL_FIELDS = {
    "title": ("str", False), "owner_id": ("int", False), "person_id": ("int", True), "org_id": ("int", True),
    "pipeline_id": ("int", False), "stage_id": ("int", False), "value": ("num", False), "currency": ("str", False),
    "is_deleted": ("bool", False), "is_archived": ("bool", False), "archive_time": ("str", True),
    "status": ("str", False), "probability": ("num", True), "lost_reason": ("str", True),
    "visible_to": ("int", False), "close_time": ("str", True), "won_time": ("str", True), "lost_time": ("str", True),
    "expected_close_date": ("str", True), "label_ids": ("list", False), "custom_fields": ("dict", False),
}
ACTIVITY_FIELDS = {
    "subject": ("str", False), "type": ("str", False), "owner_id": ("int", False), "deal_id": ("int", True),
    "lead_id": ("str", True), "org_id": ("int", True), "project_id": ("int", True), "due_date": ("str", True),
    "due_time": ("str", True), "duration": ("str", True), "busy": ("bool", False), "done": ("bool", False),
    "location": ("dict", True), "participants": ("list", False), "attendees": ("list", False),
    "public_description": ("str", True), "priority": ("int", True), "note": ("str", True),
}
LEAD_FIELDS = {
    "title": ("str", False), "owner_id": ("int", False), "label_ids": ("list", False), "person_id": ("int", True),
    "organization_id": ("int", True), "value": ("dict", True), "expected_close_date": ("str", True),
    "visible_to": ("str", False), "was_seen": ("bool", False), "origin_id": ("str", True),
    "channel": ("int", True), "channel_id": ("str", True), "is_archived": ("bool", False),
}


# ----------------------------------------------------------------------------- fields (seeded)

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
# Standard organization fields (v2 names), same tuple shape as STANDARD_DEAL_FIELDS.
STANDARD_ORGANIZATION_FIELDS: tuple[tuple[str, str, str, str, list | None, list | None], ...] = (
    ("id", "ID", "int", "The ID of the organization", None, None),
    ("name", "Name", "varchar", "The name of the organization", None, None),
    ("owner_id", "Owner", "user", "The user who owns the organization", None, None),
    ("address", "Address", "address", "The address of the organization", None, None),
    ("website", "Website", "varchar", "The website of the organization", None, None),
    ("linkedin", "LinkedIn profile", "varchar", "The LinkedIn profile of the organization", None, None),
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
)


def _seed_fields(standard: tuple, custom: tuple) -> list[dict[str, Any]]:
    fields: list[dict[str, Any]] = []
    for code, name, ftype, description, options, subfields in standard:
        fields.append({"field_name": name, "field_code": code, "description": description, "field_type": ftype,
                       "options": copy.deepcopy(options), "subfields": copy.deepcopy(subfields),
                       "is_custom_field": False, "is_optional_response_field": False})
    for name, ftype in custom:
        fields.append({"field_name": name, "field_code": field_code(name), "field_type": ftype, "options": None,
                       "subfields": None, "is_custom_field": True, "is_optional_response_field": False})
    return fields


def _seed_deal_fields() -> list[dict[str, Any]]:
    return _seed_fields(STANDARD_DEAL_FIELDS, SEED_DEAL_CUSTOM_FIELDS)


def _seed_organization_fields() -> list[dict[str, Any]]:
    return _seed_fields(STANDARD_ORGANIZATION_FIELDS, SEED_ORGANIZATION_CUSTOM_FIELDS)


def _custom_value_ok(value: Any, field_type: str) -> bool:
    if field_type in ("double", "monetary"):
        return type_ok(value, "num")
    if field_type in ("int", "user", "org", "people", "stage"):
        return type_ok(value, "int")
    if field_type in ("varchar", "varchar_auto", "text", "phone", "enum", "date", "time"):
        return isinstance(value, str)
    return True


def _match_score(haystack: str, term: str, exact: bool) -> float | None:
    hay = haystack.casefold()
    needle = term.casefold()
    if exact:
        return 1.0 if hay == needle else None
    if needle in hay:
        return round(0.1 + 0.9 * len(needle) / max(len(hay), 1), 4)
    return None


class PipedriveStore:
    """All entities, behind one lock. Handlers take a Request and return ``(status, body)``."""

    def __init__(self, search_lag: float = 0.0) -> None:
        self.lock = threading.RLock()
        self.search_lag = search_lag
        self._next_ids = {"person": 1, "organization": 1, "deal": 1, "activity": 1, "activity_type": 1}
        self.reset()

    # ------------------------------------------------------------------ state

    def reset(self) -> None:
        """Empty every entity and re-seed pipelines, stages, activity types, lead labels and deal fields.

        Person/organization/deal/activity ids keep increasing across resets, so a stale id cached by
        a client cannot silently point at a new record.
        """
        with self.lock:
            self.persons: dict[int, dict[str, Any]] = {}
            self.organizations: dict[int, dict[str, Any]] = {}
            self.deals: dict[int, dict[str, Any]] = {}
            self.activities: dict[int, dict[str, Any]] = {}
            self.leads: dict[str, dict[str, Any]] = {}
            self.lead_labels: dict[str, dict[str, Any]] = {}
            self.pipelines: dict[int, dict[str, Any]] = {}
            self.stages: dict[int, dict[str, Any]] = {}
            self.activity_types: dict[int, dict[str, Any]] = {}
            now = time.time()
            stamp = rfc3339(now)
            stage_id = 1
            for order, (pipeline_id, name, stage_names) in enumerate(SEED_PIPELINES, start=1):
                self.pipelines[pipeline_id] = {
                    "id": pipeline_id, "name": name, "order_nr": order, "is_deleted": False,
                    "is_deal_probability_enabled": False, "add_time": stamp, "update_time": stamp,
                }
                for stage_order, stage_name in enumerate(stage_names, start=1):
                    self.stages[stage_id] = {
                        "id": stage_id, "order_nr": stage_order, "name": stage_name, "is_deleted": False,
                        "deal_probability": 100, "pipeline_id": pipeline_id, "is_deal_rot_enabled": False,
                        "days_to_rotten": None, "add_time": stamp, "update_time": stamp,
                    }
                    stage_id += 1
            self._next_ids["activity_type"] = 1
            for type_name, key in SEED_ACTIVITY_TYPES:
                self._add_activity_type(type_name, key, key, "FFFFFF", custom=False, now=now)
            for label_id, label_name, color in SEED_LEAD_LABELS:
                self.lead_labels[label_id] = {"id": label_id, "name": label_name, "color": color,
                                              "add_time": iso_millis(now), "update_time": iso_millis(now)}
            self.deal_fields: list[dict[str, Any]] = _seed_deal_fields()
            self.organization_fields: list[dict[str, Any]] = _seed_organization_fields()
            self._field_stamp = now

    def _new_id(self, kind: str) -> int:
        value = self._next_ids[kind]
        self._next_ids[kind] = value + 1
        return value

    @staticmethod
    def _touch(entity: dict[str, Any], now: float, created: bool = False) -> None:
        if created:
            entity["_added"] = now
            entity["add_time"] = rfc3339(now)
        entity["_updated"] = now
        entity["update_time"] = rfc3339(now)
        entity["_touched"] = time.monotonic()

    def _indexed(self, entity: dict[str, Any]) -> bool:
        """Search-index lag: a record touched less than ``search_lag`` seconds ago is not searchable yet."""
        return time.monotonic() - entity["_touched"] >= self.search_lag

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "persons": [render(p, "person") for p in self.persons.values()],
                "organizations": [render(o, "organization") for o in self.organizations.values()],
                "deals": [render(d, "deal") for d in self.deals.values()],
                "activities": [render(a, "activity") for a in self.activities.values()],
                "leads": [self._render_lead(lead) for lead in self.leads.values()],
                "lead_labels": [render(label, "plain") for label in self.lead_labels.values()],
                "pipelines": [render(p, "plain") for p in self.pipelines.values()],
                "stages": [render(s, "plain") for s in self.stages.values()],
                "activity_types": [render(t, "plain") for t in self.activity_types.values()],
                "deal_fields": copy.deepcopy(self.deal_fields),
                "organization_fields": copy.deepcopy(self.organization_fields),
            }

    # ------------------------------------------------------------------ lookups

    def _get(self, table: dict[Any, dict[str, Any]], key: Any, label: str) -> dict[str, Any]:
        entity = table.get(key)
        if entity is None:
            raise not_found(f"{label} not found")
        return entity

    def _require_ref(self, table: dict[Any, dict[str, Any]], key: Any, label: str, err=bad_request) -> None:
        if key is not None and key not in table:
            raise err(f"{label} with id {key} not found")

    # ------------------------------------------------------------------ persons

    def _apply_person(self, person: dict[str, Any], body: dict[str, Any]) -> None:
        if "name" in body:
            person["name"] = body["name"]
        if "first_name" in body:
            person["first_name"] = body["first_name"]
        if "last_name" in body:
            person["last_name"] = body["last_name"]
        if "name" in body and not ("first_name" in body or "last_name" in body):
            first, _, last = body["name"].partition(" ")
            person["first_name"], person["last_name"] = first, last
        elif "name" not in body and ("first_name" in body or "last_name" in body):
            person["name"] = " ".join(x for x in (person.get("first_name"), person.get("last_name")) if x)
        for key in ("owner_id", "org_id", "visible_to", "label_ids", "postal_address", "notes", "birthday",
                    "job_title", "custom_fields"):
            if key in body:
                person[key] = copy.deepcopy(body[key])
        for key in ("emails", "phones", "im"):
            if key in body:  # the whole array is replaced
                person[key] = contact_list(body[key], key)
        if "marketing_status" in body:
            person["_marketing_status"] = body["marketing_status"]

    def _check_person_body(self, body: dict[str, Any]) -> None:
        check_types(body, PERSON_FIELDS)
        for name in ("name", "first_name", "last_name"):
            check_text(body, name)
        check_visible_to(body)
        check_int_list(body, "label_ids")
        if body.get("marketing_status") not in (None, "no_consent", "unsubscribed", "subscribed", "archived"):
            raise bad_request("Invalid 'marketing_status'")
        if body.get("birthday") is not None:
            check_date(body["birthday"], "birthday")
        self._require_ref(self.organizations, body.get("org_id"), "Organization")

    def add_person(self, request: Request) -> tuple[int, Any]:
        body = request.json()
        with self.lock:
            self._check_person_body(body)
            if not (body.get("name") or "").strip() and not (body.get("first_name") or body.get("last_name")):
                raise bad_request("Either 'name' or 'first_name' and 'last_name' must be provided")
            now = time.time()
            person: dict[str, Any] = {
                "id": self._new_id("person"), "name": "", "first_name": None, "last_name": None,
                "owner_id": USER_ID, "org_id": None, "add_time": None, "update_time": None, "emails": [],
                "phones": [], "is_deleted": False, "visible_to": 3, "label_ids": [], "picture_id": None,
                "postal_address": None, "notes": None, "im": [], "birthday": None, "job_title": None,
                "custom_fields": {},
            }
            self._apply_person(person, body)
            if not person["name"].strip():
                person["name"] = " ".join(x for x in (person.get("first_name"), person.get("last_name")) if x)
            self._touch(person, now, created=True)
            self.persons[person["id"]] = person
            return ok(render(person, "person"))

    def get_person(self, request: Request) -> tuple[int, Any]:
        with self.lock:
            return ok(render(self._get(self.persons, path_id(request), "Person"), "person"))

    def update_person(self, request: Request) -> tuple[int, Any]:
        body = request.json()
        with self.lock:
            person = self._get(self.persons, path_id(request), "Person")
            self._check_person_body(body)
            if "name" in body and not body["name"].strip():
                raise bad_request("Field 'name' must not be empty")
            self._apply_person(person, body)
            self._touch(person, time.time())
            return ok(render(person, "person"))

    def list_persons(self, request: Request) -> tuple[int, Any]:
        org_id = parse_int_arg(request, "org_id")
        owner_id = parse_int_arg(request, "owner_id")
        deal_id = parse_int_arg(request, "deal_id")
        ids = parse_ids_arg(request)
        with self.lock:
            items = list(self.persons.values())
            if org_id is not None:
                items = [p for p in items if p.get("org_id") == org_id]
            if owner_id is not None:
                items = [p for p in items if p.get("owner_id") == owner_id]
            if ids is not None:
                items = [p for p in items if p["id"] in ids]
            if deal_id is not None:
                deal = self.deals.get(deal_id)
                items = [p for p in items if deal is not None and deal.get("person_id") == p["id"]]
            items = sort_entities(filter_updated(items, request), request, ("id", "update_time", "add_time"))
            page, additional = paginate_v2(items, request)
            return ok([render(p, "person") for p in page], additional)

    def _search_term(self, request: Request) -> tuple[str, bool, list[str] | None]:
        term = request.arg("term")
        exact = bool(parse_bool_arg(request, "exact_match"))
        if term is None or term == "":
            raise bad_request("Query parameter 'term' is required")
        if len(term) < (1 if exact else 2):
            raise bad_request("Search term must be at least 2 characters long (1 with exact_match)")
        fields_arg = request.arg("fields")
        fields = [f.strip() for f in fields_arg.split(",") if f.strip()] if fields_arg else None
        return term, exact, fields

    def search_persons(self, request: Request) -> tuple[int, Any]:
        term, exact, fields = self._search_term(request)
        allowed = ("custom_fields", "email", "notes", "phone", "name")
        for field in fields or ():
            if field not in allowed:
                raise bad_request(f"Invalid 'fields' value '{field}': one of {', '.join(allowed)}")
        fields = fields or list(allowed)
        org_id = parse_int_arg(request, "organization_id")
        with self.lock:
            results = []
            for person in sorted(self.persons.values(), key=lambda p: p["id"]):
                if not self._indexed(person):
                    continue
                if org_id is not None and person.get("org_id") != org_id:
                    continue
                candidates: list[str] = []
                if "name" in fields:
                    candidates.append(person.get("name") or "")
                if "email" in fields:
                    candidates += [e["value"] for e in person["emails"]]
                if "phone" in fields:
                    candidates += [ph["value"] for ph in person["phones"]]
                if "notes" in fields and person.get("notes"):
                    candidates.append(person["notes"])
                if "custom_fields" in fields:
                    candidates += [str(v) for v in person["custom_fields"].values()
                                   if isinstance(v, (str, int, float)) and not isinstance(v, bool)]
                scores = [s for s in (_match_score(c, term, exact) for c in candidates) if s is not None]
                if scores:
                    results.append((max(scores), person))
            results.sort(key=lambda pair: (-pair[0], pair[1]["id"]))
            page, additional = paginate_v2(results, request)
            items = []
            for score, person in page:
                item: dict[str, Any] = {
                    "id": person["id"], "type": "person", "name": person.get("name") or "",
                    "phones": [ph["value"] for ph in person["phones"]],
                    "emails": [e["value"] for e in person["emails"]],
                    "visible_to": person["visible_to"], "owner": {"id": person["owner_id"]},
                    "custom_fields": [], "notes": [],
                }
                org = self.organizations.get(person.get("org_id"))
                if org is not None:  # the spec types it as a non-null object: left out when there is none
                    item["organization"] = {"id": org["id"], "name": org["name"],
                                            "address": (org.get("address") or {}).get("value")}
                items.append({"result_score": score, "item": item})
            return ok({"items": items}, additional)

    # ------------------------------------------------------------------ organizations

    def add_organization(self, request: Request) -> tuple[int, Any]:
        body = request.json()
        with self.lock:
            check_types(body, ORG_FIELDS)
            check_text(body, "name", required=True)
            check_visible_to(body)
            check_int_list(body, "label_ids")
            if body.get("address") is not None and not type_ok(body["address"].get("value", ""), "str"):
                raise bad_request("Invalid type for field 'address.value': expected string")
            self._check_custom_fields(body.get("custom_fields") or {}, self.organization_fields, "organizationFields")
            now = time.time()
            org: dict[str, Any] = {
                "id": self._new_id("organization"), "name": body["name"], "owner_id": body.get("owner_id", USER_ID),
                "add_time": None, "update_time": None, "is_deleted": False, "visible_to": body.get("visible_to", 3),
                "address": copy.deepcopy(body.get("address")), "label_ids": list(body.get("label_ids") or []),
                "website": body.get("website"), "linkedin": body.get("linkedin"), "industry": body.get("industry"),
                "annual_revenue": body.get("annual_revenue"), "employee_count": body.get("employee_count"),
                "custom_fields": copy.deepcopy(body.get("custom_fields") or {}),
            }
            self._touch(org, now, created=True)
            self.organizations[org["id"]] = org
            return ok(render(org, "organization"))

    def get_organization(self, request: Request) -> tuple[int, Any]:
        with self.lock:
            return ok(render(self._get(self.organizations, path_id(request), "Organization"), "organization"))

    def list_organizations(self, request: Request) -> tuple[int, Any]:
        owner_id = parse_int_arg(request, "owner_id")
        ids = parse_ids_arg(request)
        with self.lock:
            items = list(self.organizations.values())
            if owner_id is not None:
                items = [o for o in items if o.get("owner_id") == owner_id]
            if ids is not None:
                items = [o for o in items if o["id"] in ids]
            items = sort_entities(filter_updated(items, request), request, ("id", "update_time", "add_time"))
            page, additional = paginate_v2(items, request)
            return ok([render(o, "organization") for o in page], additional)

    def search_organizations(self, request: Request) -> tuple[int, Any]:
        term, exact, fields = self._search_term(request)
        allowed = ("address", "custom_fields", "notes", "name")
        for field in fields or ():
            if field not in allowed:
                raise bad_request(f"Invalid 'fields' value '{field}': one of {', '.join(allowed)}")
        fields = fields or list(allowed)
        with self.lock:
            results = []
            for org in sorted(self.organizations.values(), key=lambda o: o["id"]):
                if not self._indexed(org):
                    continue
                candidates: list[str] = []
                if "name" in fields:
                    candidates.append(org["name"])
                if "address" in fields and (org.get("address") or {}).get("value"):
                    candidates.append(org["address"]["value"])
                custom = [str(v) for v in org["custom_fields"].values()
                          if isinstance(v, (str, int, float)) and not isinstance(v, bool)]
                if "custom_fields" in fields:
                    candidates += custom
                scores = [s for s in (_match_score(c, term, exact) for c in candidates) if s is not None]
                if scores:
                    # Like Pipedrive, the hit lists the custom field values that matched (not which field).
                    matched = [v for v in custom if _match_score(v, term, exact) is not None] \
                        if "custom_fields" in fields else []
                    results.append((max(scores), org, matched))
            results.sort(key=lambda entry: (-entry[0], entry[1]["id"]))
            page, additional = paginate_v2(results, request)
            items = []
            for score, org, matched in page:
                item: dict[str, Any] = {"id": org["id"], "type": "organization", "name": org["name"],
                                        "visible_to": org["visible_to"], "owner": {"id": org["owner_id"]},
                                        "custom_fields": matched, "notes": []}
                address = (org.get("address") or {}).get("value")
                if address is not None:
                    item["address"] = address
                items.append({"result_score": score, "item": item})
            return ok({"items": items}, additional)

    # ------------------------------------------------------------------ deals, pipelines, stages

    def _first_stage(self, pipeline_id: int) -> int:
        stages = sorted((s for s in self.stages.values() if s["pipeline_id"] == pipeline_id),
                        key=lambda s: (s["order_nr"], s["id"]))
        if not stages:
            raise bad_request(f"Pipeline {pipeline_id} has no stages")
        return stages[0]["id"]

    def add_deal(self, request: Request) -> tuple[int, Any]:
        body = request.json()
        with self.lock:
            check_types(body, DEAL_FIELDS)
            check_text(body, "title", required=True)
            check_visible_to(body)
            check_int_list(body, "label_ids")
            check_date(body.get("expected_close_date"), "expected_close_date")
            status = body.get("status", "open")
            if status not in ("open", "won", "lost"):
                raise bad_request("Invalid 'status': one of open, won, lost")
            self._require_ref(self.persons, body.get("person_id"), "Person")
            self._require_ref(self.organizations, body.get("org_id"), "Organization")
            stage_id = body.get("stage_id")
            pipeline_id = body.get("pipeline_id")
            if stage_id is not None:  # stage wins: its pipeline is used
                stage = self.stages.get(stage_id)
                if stage is None:
                    raise bad_request(f"Stage with id {stage_id} not found")
                pipeline_id = stage["pipeline_id"]
            elif pipeline_id is not None:
                if pipeline_id not in self.pipelines:
                    raise bad_request(f"Pipeline with id {pipeline_id} not found")
                stage_id = self._first_stage(pipeline_id)
            else:
                pipeline_id = min(self.pipelines.values(), key=lambda p: (p["order_nr"], p["id"]))["id"]
                stage_id = self._first_stage(pipeline_id)
            now = time.time()
            stamp = rfc3339(now)
            deal: dict[str, Any] = {
                "id": self._new_id("deal"), "title": body["title"], "owner_id": body.get("owner_id", USER_ID),
                "person_id": body.get("person_id"), "org_id": body.get("org_id"), "pipeline_id": pipeline_id,
                "stage_id": stage_id, "value": body.get("value", 0), "currency": body.get("currency", "EUR"),
                "add_time": None, "update_time": None, "stage_change_time": None, "is_deleted": False,
                "is_archived": bool(body.get("is_archived", False)), "status": status,
                "probability": body.get("probability"), "lost_reason": body.get("lost_reason"),
                "visible_to": body.get("visible_to", 3), "close_time": stamp if status != "open" else None,
                "won_time": stamp if status == "won" else None, "lost_time": stamp if status == "lost" else None,
                "expected_close_date": body.get("expected_close_date"), "label_ids": list(body.get("label_ids") or []),
                "origin": "API", "origin_id": None, "channel": None, "channel_id": None, "source_lead_id": None,
                "arr": None, "mrr": None, "acv": None,
                "custom_fields": copy.deepcopy(body.get("custom_fields") or {}),
            }
            self._touch(deal, now, created=True)
            self.deals[deal["id"]] = deal
            return ok(render(deal, "deal"))

    def get_deal(self, request: Request) -> tuple[int, Any]:
        with self.lock:
            return ok(render(self._get(self.deals, path_id(request), "Deal"), "deal"))

    def list_deals(self, request: Request) -> tuple[int, Any]:
        filters = {name: parse_int_arg(request, name)
                   for name in ("person_id", "org_id", "pipeline_id", "stage_id", "owner_id")}
        ids = parse_ids_arg(request)
        status_arg = request.arg("status")
        statuses = None
        if status_arg:
            statuses = {s.strip() for s in status_arg.split(",") if s.strip()}
            unknown = statuses - {"open", "won", "lost", "deleted"}
            if unknown:
                raise bad_request(f"Invalid 'status' value(s): {', '.join(sorted(unknown))}")
        with self.lock:
            items = [d for d in self.deals.values() if not d["is_archived"]]
            for name, value in filters.items():
                if value is not None:
                    items = [d for d in items if d.get(name) == value]
            if ids is not None:
                items = [d for d in items if d["id"] in ids]
            if statuses is not None:
                items = [d for d in items if d["status"] in statuses]
            items = sort_entities(filter_updated(items, request), request, ("id", "update_time", "add_time"))
            page, additional = paginate_v2(items, request)
            return ok([render(d, "deal") for d in page], additional)

    def list_pipelines(self, request: Request) -> tuple[int, Any]:
        with self.lock:
            items = sorted(self.pipelines.values(), key=lambda p: p["id"])
            page, additional = paginate_v2(items, request)
            return ok([render(p, "plain") for p in page], additional)

    def list_stages(self, request: Request) -> tuple[int, Any]:
        pipeline_id = parse_int_arg(request, "pipeline_id")
        sort_by = request.arg("sort_by") or "id"
        if sort_by not in ("id", "update_time", "add_time", "order_nr"):
            raise bad_request("Invalid query parameter 'sort_by'")
        with self.lock:
            items = [s for s in self.stages.values() if pipeline_id is None or s["pipeline_id"] == pipeline_id]
            key = "order_nr" if sort_by == "order_nr" else "id"
            items.sort(key=lambda s: (s[key], s["id"]), reverse=request.arg("sort_direction") == "desc")
            page, additional = paginate_v2(items, request)
            return ok([render(s, "plain") for s in page], additional)

    # ------------------------------------------------------------------ activities

    def add_activity(self, request: Request) -> tuple[int, Any]:
        body = request.json()
        if isinstance(body, dict) and "person_id" in body:
            raise bad_request("'person_id' is a read-only field. Add a primary participant to set 'person_id' instead.")
        with self.lock:
            check_types(body, ACTIVITY_FIELDS)
            check_text(body, "subject")
            type_key = body.get("type")
            types_by_key = {t["key_string"]: t for t in self.activity_types.values() if t["active_flag"]}
            if type_key is None:
                type_key = "call"  # v1 documented default; unconfirmed for v2
            if type_key not in types_by_key:
                raise bad_request(f"Activity type '{type_key}' does not exist")
            check_date(body.get("due_date"), "due_date")
            due_time = norm_time(body.get("due_time"), "due_time")
            duration = norm_time(body.get("duration"), "duration")
            participants = []
            for entry in body.get("participants") or []:
                if not isinstance(entry, dict):
                    raise bad_request("Invalid type for field 'participants': items must be objects")
                check_types(entry, {"person_id": ("int", False), "primary": ("bool", False)})
                if "person_id" not in entry:
                    raise bad_request("Field 'participants[].person_id' is required")
                self._require_ref(self.persons, entry["person_id"], "Person")
                participants.append({"person_id": entry["person_id"], "primary": bool(entry.get("primary", False))})
            if participants and not any(p["primary"] for p in participants):
                participants[0]["primary"] = True
            for entry in body.get("attendees") or []:
                if not isinstance(entry, dict):
                    raise bad_request("Invalid type for field 'attendees': items must be objects")
                check_types(entry, {"email": ("str", False), "name": ("str", False), "status": ("str", False),
                                    "is_organizer": ("bool", False), "person_id": ("int", False),
                                    "user_id": ("int", False)})
            self._require_ref(self.organizations, body.get("org_id"), "Organization")
            self._require_ref(self.deals, body.get("deal_id"), "Deal")
            self._require_ref(self.leads, body.get("lead_id"), "Lead")
            person_id = next((p["person_id"] for p in participants if p["primary"]), None)
            org_id = body.get("org_id")
            deal = self.deals.get(body.get("deal_id"))
            if deal is not None:  # linking a deal also links the deal's person and organization
                if person_id is None and deal.get("person_id") is not None:
                    person_id = deal["person_id"]
                    participants.append({"person_id": person_id, "primary": True})
                if org_id is None:
                    org_id = deal.get("org_id")
            now = time.time()
            done = bool(body.get("done", False))
            activity: dict[str, Any] = {
                "id": self._new_id("activity"), "subject": body.get("subject") or types_by_key[type_key]["name"],
                "type": type_key, "owner_id": body.get("owner_id", USER_ID), "creator_user_id": USER_ID,
                "is_deleted": False, "add_time": None, "update_time": None, "deal_id": body.get("deal_id"),
                "lead_id": body.get("lead_id"), "person_id": person_id, "org_id": org_id,
                "project_id": body.get("project_id"), "due_date": body.get("due_date"), "due_time": due_time,
                "duration": duration, "busy": bool(body.get("busy", False)), "done": done,
                "marked_as_done_time": rfc3339(now) if done else None,
                "location": copy.deepcopy(body.get("location")), "participants": participants,
                "attendees": copy.deepcopy(body.get("attendees") or []),
                "public_description": body.get("public_description"), "priority": body.get("priority"),
                "note": body.get("note"),
            }
            self._touch(activity, now, created=True)
            self.activities[activity["id"]] = activity
            return ok(render(activity, "activity"))

    def get_activity(self, request: Request) -> tuple[int, Any]:
        with self.lock:
            return ok(render(self._get(self.activities, path_id(request), "Activity"), "activity"))

    def list_activities(self, request: Request) -> tuple[int, Any]:
        filters = {name: parse_int_arg(request, name) for name in ("person_id", "deal_id", "org_id", "owner_id")}
        lead_id = request.arg("lead_id")
        done = parse_bool_arg(request, "done")
        ids = parse_ids_arg(request)
        sort_by = request.arg("sort_by") or "id"
        with self.lock:
            items = list(self.activities.values())
            for name, value in filters.items():
                if value is not None:
                    items = [a for a in items if a.get(name) == value]
            if lead_id:
                items = [a for a in items if a.get("lead_id") == lead_id]
            if done is not None:
                items = [a for a in items if a["done"] == done]
            if ids is not None:
                items = [a for a in items if a["id"] in ids]
            items = filter_updated(items, request)
            if sort_by == "due_date":
                items.sort(key=lambda a: (a.get("due_date") or "", a["id"]),
                           reverse=request.arg("sort_direction") == "desc")
            else:
                items = sort_entities(items, request, ("id", "update_time", "add_time", "due_date"))
            page, additional = paginate_v2(items, request)
            return ok([render(a, "activity") for a in page], additional)

    # ------------------------------------------------------------------ activity types (v1)

    def _add_activity_type(self, name: str, key: str, icon: str, color: str, custom: bool,
                           now: float) -> dict[str, Any]:
        type_id = self._new_id("activity_type")
        entity = {
            "id": type_id, "name": name, "icon_key": icon, "color": color, "order_nr": type_id,
            "key_string": key, "active_flag": True, "is_custom_flag": custom,
            "add_time": rfc3339(now), "update_time": rfc3339(now),
        }
        self.activity_types[type_id] = entity
        return entity

    def list_activity_types(self, request: Request) -> tuple[int, Any]:
        with self.lock:
            return ok([render(t, "plain") for t in sorted(self.activity_types.values(), key=lambda t: t["id"])])

    def add_activity_type(self, request: Request) -> tuple[int, Any]:
        body = request.json()
        with self.lock:
            check_types(body, {"name": ("str", False), "icon_key": ("str", False), "color": ("str", True)},
                        err=bad_request_v1)
            if not (body.get("name") or "").strip():
                raise bad_request_v1("Field 'name' is required")
            if body.get("icon_key") not in ICON_KEYS:
                raise bad_request_v1("Field 'icon_key' is required and must be a known icon key")
            base = re.sub(r"[^a-z0-9]+", "_", body["name"].strip().lower()).strip("_") or "type"
            key, suffix = base, 1
            existing = {t["key_string"] for t in self.activity_types.values()}
            while key in existing:
                suffix += 1
                key = f"{base}{suffix}"
            entity = self._add_activity_type(body["name"], key, body["icon_key"], body.get("color") or "FFFFFF",
                                             custom=True, now=time.time())
            return ok(render(entity, "plain"))

    # ------------------------------------------------------------------ leads and lead labels (v1)

    @staticmethod
    def _check_custom_fields(values: dict[str, Any], fields: list[dict[str, Any]], listing: str) -> None:
        """A v2 ``custom_fields`` object: every key an existing custom field's code, every value of its type."""
        known = {f["field_code"]: f for f in fields if f["is_custom_field"]}
        for key, value in values.items():
            field = known.get(key)
            if field is None:
                raise bad_request(f"Unknown custom field key '{key}' (see GET /api/v2/{listing})")
            if value is not None and not _custom_value_ok(value, field["field_type"]):
                raise bad_request(f"Invalid value for custom field '{field['field_name']}' ({key}): "
                                  f"expected {field['field_type']}")

    def _custom_deal_fields(self) -> dict[str, dict[str, Any]]:
        return {f["field_code"]: f for f in self.deal_fields if f["is_custom_field"]}

    def _check_lead_custom_fields(self, body: dict[str, Any]) -> dict[str, Any]:
        """Custom field values at the root of a lead body (keys: 40-hex deal custom field codes).

        Returns ``{code: value}`` (``None`` = unset). Any 40-hex key that is not an existing deal custom
        field is a 400, so a typo or stale code fails loudly instead of being dropped.
        """
        known = self._custom_deal_fields()
        values: dict[str, Any] = {}
        for key, value in body.items():
            if not CUSTOM_KEY_RE.match(key):
                continue
            field = known.get(key)
            if field is None:
                raise bad_request_v1(f"Unknown custom field key '{key}': not a deal custom field "
                                     "(see GET /api/v2/dealFields)")
            if value is not None:
                if not _custom_value_ok(value, field["field_type"]):
                    raise bad_request_v1(f"Invalid value for custom field '{field['field_name']}' ({key}): "
                                         f"expected {field['field_type']}")
                if field["field_type"] in ("varchar", "varchar_auto", "phone") and len(value) > MAX_TEXT:
                    raise bad_request_v1(f"Custom field '{field['field_name']}' ({key}) is too long: "
                                         f"at most {MAX_TEXT} characters")
            values[key] = value
        return values

    def _check_lead_body(self, body: dict[str, Any]) -> dict[str, Any]:
        check_types(body, LEAD_FIELDS, err=bad_request_v1)
        check_text(body, "title", err=bad_request_v1)
        if body.get("label_ids") is not None:
            for label_id in body["label_ids"]:
                if not isinstance(label_id, str):
                    raise bad_request_v1("Invalid type for field 'label_ids': expected an array of UUID strings")
                if label_id not in self.lead_labels:
                    raise bad_request_v1(f"Lead label with id {label_id} not found")
        value = body.get("value")
        if value is not None:
            if not type_ok(value.get("amount"), "num") or not type_ok(value.get("currency"), "str"):
                raise bad_request_v1("Field 'value' needs both 'amount' (number) and 'currency' (string)")
        check_date(body.get("expected_close_date"), "expected_close_date", err=bad_request_v1)
        if body.get("visible_to") is not None and body["visible_to"] not in ("1", "3", "5", "7"):
            raise bad_request_v1("Invalid 'visible_to': one of \"1\", \"3\", \"5\", \"7\"")
        self._require_ref(self.persons, body.get("person_id"), "Person", err=bad_request_v1)
        self._require_ref(self.organizations, body.get("organization_id"), "Organization", err=bad_request_v1)
        return self._check_lead_custom_fields(body)

    @staticmethod
    def _render_lead(lead: dict[str, Any]) -> dict[str, Any]:
        """v1 lead: custom field values (only the set ones) at the root, after the standard fields."""
        out = render(lead, "lead")
        out.update(copy.deepcopy(lead["_custom"]))
        return out

    def add_lead(self, request: Request) -> tuple[int, Any]:
        body = request.json()
        with self.lock:
            custom = self._check_lead_body(body)
            if not (body.get("title") or "").strip():
                raise bad_request_v1("Field 'title' is required")
            if body.get("person_id") is None and body.get("organization_id") is None:
                raise bad_request_v1("A lead must be linked to a person or an organization")
            now = time.time()
            lead_id = str(uuid.uuid4())
            lead: dict[str, Any] = {
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
            self.leads[lead_id] = lead
            return ok(self._render_lead(lead), status=201)

    def _get_lead(self, request: Request) -> dict[str, Any]:
        lead = self.leads.get(request.path_params["id"])
        if lead is None:
            raise HttpError(404, error_body("Lead not found"))
        return lead

    def get_lead(self, request: Request) -> tuple[int, Any]:
        with self.lock:
            return ok(self._render_lead(self._get_lead(request)))

    def update_lead(self, request: Request) -> tuple[int, Any]:
        body = request.json()
        with self.lock:
            lead = self._get_lead(request)
            custom = self._check_lead_body(body)
            if "title" in body and not (body["title"] or "").strip():
                raise bad_request_v1("Field 'title' must not be empty")
            # null unsets person_id / organization_id / value / expected_close_date ...
            person_id = body["person_id"] if "person_id" in body else lead["person_id"]
            org_id = body["organization_id"] if "organization_id" in body else lead["organization_id"]
            if person_id is None and org_id is None:
                raise bad_request_v1("A lead must stay linked to a person or an organization")
            for key in ("title", "owner_id", "label_ids", "person_id", "organization_id", "is_archived", "value",
                        "expected_close_date", "visible_to", "was_seen", "channel", "channel_id"):
                if key in body:
                    lead[key] = copy.deepcopy(body[key])
            if lead["label_ids"] is None:
                lead["label_ids"] = []
            for key, value in custom.items():
                if value is None:
                    lead["_custom"].pop(key, None)
                else:
                    lead["_custom"][key] = copy.deepcopy(value)
            now = time.time()
            lead["update_time"] = iso_millis(now)
            lead["_updated"] = now
            lead["_touched"] = time.monotonic()
            return ok(self._render_lead(lead))

    @staticmethod
    def _v1_paging(request: Request) -> tuple[int, int]:
        def int_arg(name: str) -> int | None:
            try:
                return parse_int_arg(request, name)
            except HttpError as exc:
                raise bad_request_v1(exc.body["error"]) from exc

        start = int_arg("start") or 0
        limit = int_arg("limit") or 100
        if start < 0 or limit < 1 or limit > MAX_LIMIT:
            raise bad_request_v1(f"Invalid 'start'/'limit': limit must be between 1 and {MAX_LIMIT}")
        return start, limit

    @staticmethod
    def _v1_page(items: list[Any], start: int, limit: int) -> tuple[list[Any], dict[str, Any]]:
        page = items[start:start + limit]
        more = start + limit < len(items)
        pagination: dict[str, Any] = {"start": start, "limit": limit, "more_items_in_collection": more}
        if more:
            pagination["next_start"] = start + limit
        # The spec puts start/limit/more_items_in_collection directly in additional_data; Pipedrive's
        # docs describe additional_data.pagination. Both are sent.
        return page, {"start": start, "limit": limit, "more_items_in_collection": more, "pagination": pagination}

    def list_leads(self, request: Request) -> tuple[int, Any]:
        start, limit = self._v1_paging(request)
        filters = {}
        for name in ("person_id", "organization_id", "owner_id"):
            try:
                filters[name] = parse_int_arg(request, name)
            except HttpError as exc:
                raise bad_request_v1(exc.body["error"]) from exc
        with self.lock:
            items = [lead for lead in self.leads.values() if not lead["is_archived"]]
            for name, value in filters.items():
                if value is not None:
                    items = [lead for lead in items if lead.get(name) == value]
            since = request.arg("updated_since")
            if since:
                since_ts = parse_time(since, "updated_since")
                items = [lead for lead in items if lead["_updated"] >= since_ts]
            items.sort(key=lambda lead: lead["_added"])  # oldest to newest
            page, additional = self._v1_page(items, start, limit)
            return ok([self._render_lead(lead) for lead in page], additional)

    def search_leads(self, request: Request) -> tuple[int, Any]:
        """v2 ``/leads/search``: title, notes (the sandbox has no lead notes) and custom field values."""
        term, exact, fields = self._search_term(request)
        allowed = ("custom_fields", "notes", "title")
        for field in fields or ():
            if field not in allowed:
                raise bad_request(f"Invalid 'fields' value '{field}': one of {', '.join(allowed)}")
        fields = fields or list(allowed)
        person_id = parse_int_arg(request, "person_id")
        org_id = parse_int_arg(request, "organization_id")
        include = request.arg("include_fields")
        if include and include != "lead.was_seen":
            raise bad_request("Invalid query parameter 'include_fields': lead.was_seen")
        with self.lock:
            results = []
            for lead in sorted(self.leads.values(), key=lambda x: x["_added"]):
                if not self._indexed(lead):
                    continue
                if person_id is not None and lead.get("person_id") != person_id:
                    continue
                if org_id is not None and lead.get("organization_id") != org_id:
                    continue
                scores = []
                matched_custom: list[str] = []
                if "title" in fields:
                    scores.append(_match_score(lead["title"], term, exact))
                if "custom_fields" in fields:
                    for value in lead["_custom"].values():
                        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                            continue
                        text = f"{value:g}" if isinstance(value, float) else str(value)
                        score = _match_score(text, term, exact)
                        if score is not None:
                            scores.append(score)
                            matched_custom.append(text)
                scores = [sc for sc in scores if sc is not None]
                if scores:
                    results.append((max(scores), lead, matched_custom))
            results.sort(key=lambda r: (-r[0], r[1]["_added"]))
            page, additional = paginate_v2(results, request)
            items = []
            for score, lead, matched_custom in page:
                person = self.persons.get(lead.get("person_id"))
                org = self.organizations.get(lead.get("organization_id"))
                item: dict[str, Any] = {
                    "id": lead["id"], "type": "lead", "title": lead["title"], "owner": {"id": lead["owner_id"]},
                    "phones": [ph["value"] for ph in person["phones"]] if person else [],
                    "emails": [e["value"] for e in person["emails"]] if person else [],
                    "custom_fields": matched_custom, "notes": [],
                    "visible_to": int(lead["visible_to"]), "is_archived": lead["is_archived"],
                }
                # person / organization / value / currency are non-nullable in the spec: left out when unset.
                if person is not None:
                    item["person"] = {"id": person["id"], "name": person["name"]}
                if org is not None:
                    item["organization"] = {"id": org["id"], "name": org["name"]}
                value = lead.get("value")
                if value is not None:
                    amount = value["amount"]
                    if float(amount).is_integer():  # the spec types it as an integer
                        item["value"] = int(amount)
                    item["currency"] = value["currency"]
                if include == "lead.was_seen":
                    item["was_seen"] = lead["was_seen"]
                items.append({"result_score": score, "item": item})
            return ok({"items": items}, additional)

    # ------------------------------------------------------------------ fields

    def list_deal_fields(self, request: Request) -> tuple[int, Any]:
        return self._list_fields(self.deal_fields, request)

    def list_organization_fields(self, request: Request) -> tuple[int, Any]:
        return self._list_fields(self.organization_fields, request)

    def _list_fields(self, all_fields: list[dict[str, Any]], request: Request) -> tuple[int, Any]:
        include_arg = request.arg("include_fields")
        include: list[str] = []
        if include_arg:
            include = [part.strip() for part in include_arg.split(",") if part.strip()]
            for part in include:
                if part not in DEAL_FIELD_INCLUDES:
                    raise bad_request(f"Invalid 'include_fields' value '{part}': one of "
                                      f"{', '.join(DEAL_FIELD_INCLUDES)}")
        with self.lock:
            page, additional = paginate_v2(all_fields, request)
            data = []
            for field in page:
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
                data.append(out)
            return ok(data, additional)

    def _lead_fields(self) -> list[dict[str, Any]]:
        stamp = datetime.fromtimestamp(self._field_stamp, UTC).strftime("%Y-%m-%d %H:%M:%S")
        entries = [(key, name, ftype, mandatory, False) for key, name, ftype, mandatory in STANDARD_LEAD_FIELDS]
        entries += [(f["field_code"], f["field_name"], f["field_type"], False, True)
                    for f in self.deal_fields if f["is_custom_field"]]
        fields = []
        for number, (key, name, ftype, mandatory, custom) in enumerate(entries, start=1):
            fields.append({
                "id": number, "key": key, "name": name, "order_nr": number, "field_type": ftype,
                "add_time": stamp, "update_time": stamp,
                "last_updated_by_user_id": USER_ID if custom else None,
                "created_by_user_id": USER_ID if custom else None,
                "active_flag": True, "edit_flag": custom, "index_visible_flag": True, "details_visible_flag": True,
                "add_visible_flag": True, "important_flag": False, "bulk_edit_allowed": True,
                "searchable_flag": custom and ftype in ("varchar", "double"), "filtering_allowed": True,
                "sortable_flag": True, "mandatory_flag": mandatory, "options": None,
            })
        return fields

    def list_lead_fields(self, request: Request) -> tuple[int, Any]:
        start, limit = self._v1_paging(request)
        with self.lock:
            page, additional = self._v1_page(self._lead_fields(), start, limit)
            return ok(page, additional)

    def list_lead_labels(self, request: Request) -> tuple[int, Any]:
        with self.lock:
            return ok([render(label, "plain") for label in self.lead_labels.values()])

    def add_lead_label(self, request: Request) -> tuple[int, Any]:
        body = request.json()
        with self.lock:
            check_types(body, {"name": ("str", False), "color": ("str", False)}, err=bad_request_v1)
            check_text(body, "name", err=bad_request_v1, required=True)
            if body.get("color") not in LEAD_LABEL_COLORS:
                raise bad_request_v1(f"Field 'color' is required: one of {', '.join(LEAD_LABEL_COLORS)}")
            now = time.time()
            label = {"id": str(uuid.uuid4()), "name": body["name"], "color": body["color"],
                     "add_time": iso_millis(now), "update_time": iso_millis(now)}
            self.lead_labels[label["id"]] = label
            return ok(render(label, "plain"))

    # ------------------------------------------------------------------ users (v1)

    def current_user(self, request: Request) -> tuple[int, Any]:
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
