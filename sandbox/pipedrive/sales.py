"""Deals, pipelines and stages, activities (API v2) and activity types (v1): body rules, defaults,
references and answer shapes."""

from __future__ import annotations

import copy
import re
from typing import Any

from sandbox.common import Request
from sandbox.pipedrive.checks import (
    bad_request,
    bad_request_v1,
    check_common,
    check_custom_fields,
    check_date,
    check_items,
    check_known_keys,
    check_text,
    check_types,
    mark_primary,
    norm_time,
    parse_time,
    rfc3339,
)
from sandbox.pipedrive.seeds import ICON_KEYS, SEED_ACTIVITY_TYPES, SEED_PIPELINES, USER_ID, custom_fields
from sandbox.pipedrive.table import Row, Table, merge_custom_fields, render

# ----------------------------------------------------------------------------- pipelines and stages

def seed_pipelines(pipelines: Table, stages: Table, stamp: str) -> None:
    stage_id = 1
    for order, (pipeline_id, name, stage_names) in enumerate(SEED_PIPELINES, start=1):
        pipelines.add({"id": pipeline_id, "name": name, "order_nr": order, "is_deleted": False,
                       "is_deal_probability_enabled": False, "add_time": stamp, "update_time": stamp})
        for stage_order, stage_name in enumerate(stage_names, start=1):
            stages.add({"id": stage_id, "order_nr": stage_order, "name": stage_name, "is_deleted": False,
                        "deal_probability": 100, "pipeline_id": pipeline_id, "is_deal_rot_enabled": False,
                        "days_to_rotten": None, "add_time": stamp, "update_time": stamp})
            stage_id += 1


def first_stage(stages: Table, pipeline_id: int) -> int:
    in_pipeline = sorted((s for s in stages.values() if s["pipeline_id"] == pipeline_id),
                         key=lambda s: (s["order_nr"], s["id"]))
    if not in_pipeline:
        raise bad_request(f"Pipeline {pipeline_id} has no stages")
    return in_pipeline[0]["id"]


# ----------------------------------------------------------------------------- deals

DEAL_FIELDS = {
    "title": ("str", False), "owner_id": ("int", False), "person_id": ("int", True), "org_id": ("int", True),
    "pipeline_id": ("int", False), "stage_id": ("int", False), "value": ("num", False), "currency": ("str", False),
    "is_deleted": ("bool", False), "is_archived": ("bool", False), "archive_time": ("str", True),
    "status": ("str", False), "probability": ("num", True), "lost_reason": ("str", True),
    "visible_to": ("int", False), "close_time": ("str", True), "won_time": ("str", True), "lost_time": ("str", True),
    "expected_close_date": ("str", True), "label_ids": ("list", False), "custom_fields": ("dict", False),
}
DEAL_NULLABLE = frozenset({"probability", "lost_reason", "close_time", "origin_id", "channel", "channel_id",
                           "source_lead_id", "arr", "mrr", "acv"})
LISTED_STATUSES = frozenset({"open", "won", "lost", "deleted"})
NOT_DELETED = frozenset({"open", "won", "lost"})
# updateDeal's body times, each settable only in the status it belongs to (spec: "Can only be set if
# deal status is ..."); archive_time only on an archived deal.
_STATUS_TIMES = {"close_time": ("won", "lost"), "won_time": ("won",), "lost_time": ("lost",)}
_DEAL_COPIED = ("title", "owner_id", "person_id", "org_id", "value", "currency", "probability", "lost_reason",
                "visible_to", "expected_close_date", "label_ids")


def render_deal(deal: Row) -> dict[str, Any]:
    return render(deal, DEAL_NULLABLE)


def parse_statuses(request: Request, name: str) -> set[str] | frozenset[str]:
    """The deals list's ``status``: a comma list of open, won, lost, deleted (omitted: all but deleted)."""
    raw = request.arg(name)
    if not raw:
        return NOT_DELETED
    statuses = {s.strip() for s in raw.split(",") if s.strip()}
    unknown = statuses - LISTED_STATUSES
    if unknown:
        raise bad_request(f"Invalid 'status' value(s): {', '.join(sorted(unknown))}")
    return statuses


def check_deal(body: Any, db: Any) -> str:
    """Check a new deal's body against the store ``db``; answers its status."""
    check_common(body, DEAL_FIELDS, "title", required="title")
    return _check_deal_values(body, db, "open")


def _check_deal_values(body: dict[str, Any], db: Any, status: str) -> str:
    """The checks of a (type-checked) deal body shared by create and update: dates, status (``status``:
    the deal's when the body has none), referenced person and organization, custom fields."""
    check_date(body.get("expected_close_date"), "expected_close_date")
    status = body.get("status", status)
    if status not in NOT_DELETED:
        raise bad_request("Invalid 'status': one of open, won, lost")
    db.persons.require(body.get("person_id"))
    db.organizations.require(body.get("org_id"))
    check_custom_fields(body.get("custom_fields") or {}, custom_fields(db.deal_fields), "dealFields")
    return status


def check_deal_update(deal: Row, body: Any, db: Any) -> tuple[str, tuple[int, int]]:
    """Check an updateDeal body against the deal and the store ``db``: only the spec's body properties, at
    least one, each of add_deal's types and rules (``title`` non-blank when given); times, ``lost_reason``
    and ``archive_time`` only in the status they belong to. Answers the new status and (pipeline, stage)."""
    check_common(body, DEAL_FIELDS, "title")
    if not body:
        raise bad_request("Request body is empty: send at least one field to update")
    check_known_keys(body, DEAL_FIELDS, "updateDeal")
    if "title" in body and not body["title"].strip():
        raise bad_request("Field 'title' must not be empty")
    status = _check_deal_values(body, db, deal["status"])
    _check_status_fields(body, status, body.get("is_archived", deal["is_archived"]))
    return status, _updated_stage(deal, body, db.pipelines, db.stages)


def _check_status_fields(body: dict[str, Any], status: str, archived: bool) -> None:
    """close/won/lost times and ``lost_reason`` only in their status, ``archive_time`` only on an archived
    deal; the times RFC 3339 or ``YYYY-MM-DD HH:MM:SS``."""
    for name, statuses in {**_STATUS_TIMES, "lost_reason": ("lost",)}.items():
        if body.get(name) is not None and status not in statuses:
            raise bad_request(f"Field '{name}' can only be set if deal status is {' or '.join(statuses)}")
    if body.get("archive_time") is not None and not archived:
        raise bad_request("Field 'archive_time' can only be set when the deal is archived")
    for name in (*_STATUS_TIMES, "archive_time"):
        if body.get(name) is not None:
            parse_time(body[name], name)


def _updated_stage(deal: Row, body: dict[str, Any], pipelines: Table, stages: Table) -> tuple[int, int]:
    """(pipeline, stage) after an update: as a new deal's when the body moves the deal (a stage, or another
    pipeline); else the deal's own."""
    if body.get("stage_id") is None and body.get("pipeline_id") in (None, deal["pipeline_id"]):
        return deal["pipeline_id"], deal["stage_id"]
    return deal_stage(body, pipelines, stages)


def apply_deal_update(deal: Row, body: dict[str, Any], status: str, stage: tuple[int, int], now: float) -> None:
    """Write a checked updateDeal body into the deal: ``custom_fields`` merged key by key (null clears a
    key), a new stage stamps ``stage_change_time``, status times and archiving follow ``_apply_times`` and
    ``_apply_archive``; ``is_deleted: true`` deletes the deal (status ``deleted``)."""
    for key in _DEAL_COPIED:
        if key in body:
            deal[key] = copy.deepcopy(body[key])
    merge_custom_fields(deal, body.get("custom_fields"))
    if stage != (deal["pipeline_id"], deal["stage_id"]):
        deal["pipeline_id"], deal["stage_id"] = stage
        deal["stage_change_time"] = rfc3339(now)
    _apply_times(deal, body, status, now)
    _apply_archive(deal, body, now)
    if body.get("is_deleted"):
        deal["is_deleted"], deal["status"] = True, "deleted"


def _apply_times(deal: Row, body: dict[str, Any], status: str, now: float) -> None:
    """close/won/lost times: a given one is kept (RFC 3339); a status just reached stamps its times now; a
    status without a time (and a null in the body) clears it, as it clears ``lost_reason`` off lost."""
    reached = status != deal["status"]
    deal["status"] = status
    for name, statuses in _STATUS_TIMES.items():
        if body.get(name) is not None:
            deal[name] = rfc3339(parse_time(body[name], name))
        elif name in body or status not in statuses:
            deal[name] = None
        elif reached:
            deal[name] = rfc3339(now)
    if status != "lost":
        deal["lost_reason"] = None


def _apply_archive(deal: Row, body: dict[str, Any], now: float) -> None:
    """``is_archived``; an archived deal has an ``archive_time`` (the given one, else when it was archived)."""
    if "is_archived" in body:
        deal["is_archived"] = body["is_archived"]
    if not deal["is_archived"]:
        deal["archive_time"] = None
    elif body.get("archive_time") is not None:
        deal["archive_time"] = rfc3339(parse_time(body["archive_time"], "archive_time"))
    elif deal.get("archive_time") is None:
        deal["archive_time"] = rfc3339(now)


def deal_stage(body: dict[str, Any], pipelines: Table, stages: Table) -> tuple[int, int]:
    """(pipeline, stage) of a new deal: the stage wins (its pipeline is used); a pipeline alone gets its
    first stage; neither: the first stage of the first pipeline."""
    stage_id = body.get("stage_id")
    if stage_id is not None:
        stages.require(stage_id)
        return stages.get(stage_id)["pipeline_id"], stage_id  # type: ignore[index]
    pipeline_id = body.get("pipeline_id")
    if pipeline_id is None:
        pipeline_id = min(pipelines.values(), key=lambda p: (p["order_nr"], p["id"]))["id"]
    else:
        pipelines.require(pipeline_id)
    return pipeline_id, first_stage(stages, pipeline_id)


def new_deal(deal_id: int, body: dict[str, Any], status: str, stage: tuple[int, int], now: float) -> Row:
    stamp = rfc3339(now)
    return {
        "id": deal_id, "title": body["title"], "owner_id": body.get("owner_id", USER_ID),
        "person_id": body.get("person_id"), "org_id": body.get("org_id"), "pipeline_id": stage[0],
        "stage_id": stage[1], "value": body.get("value", 0), "currency": body.get("currency", "EUR"),
        "add_time": None, "update_time": None, "stage_change_time": None, "is_deleted": False,
        "is_archived": bool(body.get("is_archived", False)), "status": status,
        "archive_time": stamp if body.get("is_archived") else None,
        "probability": body.get("probability"), "lost_reason": body.get("lost_reason"),
        "visible_to": body.get("visible_to", 3), "close_time": stamp if status != "open" else None,
        "won_time": stamp if status == "won" else None, "lost_time": stamp if status == "lost" else None,
        "expected_close_date": body.get("expected_close_date"), "label_ids": list(body.get("label_ids") or []),
        "origin": "API", "origin_id": None, "channel": None, "channel_id": None, "source_lead_id": None,
        "arr": None, "mrr": None, "acv": None,
        "custom_fields": copy.deepcopy(body.get("custom_fields") or {}),
    }


# ----------------------------------------------------------------------------- activities

ACTIVITY_FIELDS = {
    "subject": ("str", False), "type": ("str", False), "owner_id": ("int", False), "deal_id": ("int", True),
    "lead_id": ("str", True), "org_id": ("int", True), "project_id": ("int", True), "due_date": ("str", True),
    "due_time": ("str", True), "duration": ("str", True), "busy": ("bool", False), "done": ("bool", False),
    "location": ("dict", True), "participants": ("list", False), "attendees": ("list", False),
    "public_description": ("str", True), "priority": ("int", True), "note": ("str", True),
}
PARTICIPANT_FIELDS = {"person_id": ("int", False), "primary": ("bool", False)}
ATTENDEE_FIELDS = {"email": ("str", False), "name": ("str", False), "status": ("str", False),
                   "is_organizer": ("bool", False), "person_id": ("int", False), "user_id": ("int", False)}


def render_activity(activity: Row) -> dict[str, Any]:
    return render(activity)


def check_activity(body: Any, db: Any) -> dict[str, Any]:
    """Check a new activity's body against the store ``db``; answers the values derived from it."""
    if isinstance(body, dict) and "person_id" in body:
        raise bad_request("'person_id' is a read-only field. Add a primary participant to set 'person_id' instead.")
    check_types(body, ACTIVITY_FIELDS)
    check_text(body, "subject")
    kind = _activity_type(body, db.activity_types)
    check_date(body.get("due_date"), "due_date")
    derived = {"type": kind["key_string"], "subject": body.get("subject") or kind["name"],
               "due_time": norm_time(body.get("due_time"), "due_time"),
               "duration": norm_time(body.get("duration"), "duration")}
    participants = mark_primary(check_items(body.get("participants"), "participants", PARTICIPANT_FIELDS,
                                            then=lambda entry: _participant(entry, db.persons)))
    check_items(body.get("attendees"), "attendees", ATTENDEE_FIELDS)
    db.organizations.require(body.get("org_id"))
    db.deals.require(body.get("deal_id"))
    db.leads.require(body.get("lead_id"))
    derived["person_id"], derived["org_id"] = _links(body, participants, db.deals)
    derived["participants"] = participants
    return derived


def _activity_type(body: dict[str, Any], types: Table) -> Row:
    by_key = {t["key_string"]: t for t in types.values() if t["active_flag"]}
    key = body.get("type")
    if key is None:
        key = "call"  # v1 documented default; unconfirmed for v2
    if key not in by_key:
        raise bad_request(f"Activity type '{key}' does not exist")
    return by_key[key]


def _participant(entry: dict[str, Any], persons: Table) -> dict[str, Any]:
    if "person_id" not in entry:
        raise bad_request("Field 'participants[].person_id' is required")
    persons.require(entry["person_id"])
    return {"person_id": entry["person_id"], "primary": bool(entry.get("primary", False))}


def _links(body: dict[str, Any], participants: list[dict[str, Any]], deals: Table) -> tuple[Any, Any]:
    """(person_id, org_id): the primary participant and the body's organization; a linked deal also
    links its person (as primary participant) and organization when those are not given."""
    person_id = next((p["person_id"] for p in participants if p["primary"]), None)
    org_id = body.get("org_id")
    deal = deals.get(body.get("deal_id"))
    if deal is not None:
        if person_id is None and deal.get("person_id") is not None:
            person_id = deal["person_id"]
            participants.append({"person_id": person_id, "primary": True})
        if org_id is None:
            org_id = deal.get("org_id")
    return person_id, org_id


def new_activity(activity_id: int, body: dict[str, Any], derived: dict[str, Any], now: float) -> Row:
    done = bool(body.get("done", False))
    return {
        "id": activity_id, "subject": derived["subject"], "type": derived["type"],
        "owner_id": body.get("owner_id", USER_ID), "creator_user_id": USER_ID,
        "is_deleted": False, "add_time": None, "update_time": None, "deal_id": body.get("deal_id"),
        "lead_id": body.get("lead_id"), "person_id": derived["person_id"], "org_id": derived["org_id"],
        "project_id": body.get("project_id"), "due_date": body.get("due_date"), "due_time": derived["due_time"],
        "duration": derived["duration"], "busy": bool(body.get("busy", False)), "done": done,
        "marked_as_done_time": rfc3339(now) if done else None,
        "location": copy.deepcopy(body.get("location")), "participants": derived["participants"],
        "attendees": copy.deepcopy(body.get("attendees") or []),
        "public_description": body.get("public_description"), "priority": body.get("priority"),
        "note": body.get("note"),
    }


def by_due_date(activity: Row) -> tuple[str, int]:
    return activity.get("due_date") or "", activity["id"]


# ----------------------------------------------------------------------------- activity types (v1)

ACTIVITY_TYPE_FIELDS = {"name": ("str", False), "icon_key": ("str", False), "color": ("str", True)}


def check_activity_type(body: Any) -> dict[str, Any]:
    check_types(body, ACTIVITY_TYPE_FIELDS, err=bad_request_v1)
    if not (body.get("name") or "").strip():
        raise bad_request_v1("Field 'name' is required")
    if body.get("icon_key") not in ICON_KEYS:
        raise bad_request_v1("Field 'icon_key' is required and must be a known icon key")
    return body


def activity_type_key(name: str, types: Table) -> str:
    """A new type's ``key_string``: the name in snake case, numbered when taken."""
    base = re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_") or "type"
    key, suffix = base, 1
    existing = {t["key_string"] for t in types.values()}
    while key in existing:
        suffix += 1
        key = f"{base}{suffix}"
    return key


def add_activity_type(types: Table, name: str, key: str, icon: str, color: str, custom: bool,
                      now: float) -> Row:
    type_id = types.new_id()
    stamp = rfc3339(now)
    return types.add({"id": type_id, "name": name, "icon_key": icon, "color": color, "order_nr": type_id,
                      "key_string": key, "active_flag": True, "is_custom_flag": custom,
                      "add_time": stamp, "update_time": stamp})


def seed_activity_types(types: Table, now: float) -> None:
    for name, key in SEED_ACTIVITY_TYPES:
        add_activity_type(types, name, key, key, "FFFFFF", custom=False, now=now)
