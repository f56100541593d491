"""Errors, timestamps, query arguments and body checks shared by every Pipedrive sandbox entity.

Validation errors come in two shapes: v2 ``{"success": false, "error", "code": "ERR_BAD_REQUEST"}``
(``bad_request``) and the v1 envelope with ``error_info``, ``data`` and ``additional_data``
(``bad_request_v1``). Checks take the error factory as ``err`` so v1 and v2 entities share them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from sandbox.common import HttpError, Request

ERROR_INFO = "Please check developers.pipedrive.com"
# Pipedrive limit on names, titles and subjects. ASSUMPTION: the spec declares no maxLength; 255 is
# the limit commonly observed for Pipedrive text fields, and the sandbox enforces it to catch overruns.
MAX_TEXT = 255
VISIBLE_TO = (1, 3, 5, 7)

DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
TIME_RE = re.compile(r"^(\d{2}):(\d{2})(?::(\d{2}))?$")

ErrorFactory = Callable[[str], HttpError]
FieldTypes = dict[str, tuple[str, bool]]  # {name: (kind, nullable)}


# ----------------------------------------------------------------------------- errors

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


def ok(data: Any, additional: dict[str, Any] | None = None, status: int = 200) -> tuple[int, Any]:
    body: dict[str, Any] = {"success": True, "data": data}
    if additional is not None:
        body["additional_data"] = additional
    return status, body


# ----------------------------------------------------------------------------- timestamps

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


# ----------------------------------------------------------------------------- query arguments
# Each parser takes (request, name) and answers None when the argument is absent (or empty).

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


def parse_text_arg(request: Request, name: str) -> str | None:
    return request.arg(name) or None


def parse_time_arg(request: Request, name: str) -> float | None:
    raw = request.arg(name)
    return parse_time(raw, name) if raw else None


def parse_list_arg(request: Request, name: str) -> list[str]:
    """A comma-separated argument as its non-empty, stripped parts ([] when absent)."""
    raw = request.arg(name)
    return [part.strip() for part in raw.split(",") if part.strip()] if raw else []


def v1_arg(parse: Callable[[Request, str], Any]) -> Callable[[Request, str], Any]:
    """The same parser, answering its errors in the v1 envelope."""
    def parse_v1(request: Request, name: str) -> Any:
        try:
            return parse(request, name)
        except HttpError as exc:
            raise bad_request_v1(exc.body["error"]) from exc
    return parse_v1


def int_key(raw: str) -> int:
    """A path ``{id}`` of an entity with integer ids."""
    try:
        return int(raw)
    except ValueError as exc:
        raise bad_request("Invalid id: expected integer") from exc


# ----------------------------------------------------------------------------- body checks

_KIND_NAMES = {"str": "string", "int": "integer", "bool": "boolean", "num": "number", "list": "array",
               "dict": "object"}
_KIND_TESTS: dict[str, Callable[[Any], bool]] = {
    "str": lambda value: isinstance(value, str),
    "int": lambda value: isinstance(value, int) and not isinstance(value, bool),
    "bool": lambda value: isinstance(value, bool),
    "num": lambda value: isinstance(value, (int, float)) and not isinstance(value, bool),
    "list": lambda value: isinstance(value, list),
    "dict": lambda value: isinstance(value, dict),
}


def type_ok(value: Any, kind: str) -> bool:
    test = _KIND_TESTS.get(kind)
    return test is None or test(value)


def check_types(body: Any, fields: FieldTypes, err: ErrorFactory = bad_request) -> dict[str, Any]:
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


def check_items(items: Any, name: str, fields: FieldTypes,
                then: Callable[[dict[str, Any]], Any] | None = None) -> list[Any]:
    """An array of objects (``participants``, ``attendees``): each item an object of those field types,
    then ``then(item)`` (item by item, so the first bad item decides the error); answers ``then``'s results."""
    out = []
    for item in items or []:
        if not isinstance(item, dict):
            raise bad_request(f"Invalid type for field '{name}': items must be objects")
        check_types(item, fields)
        out.append(then(item) if then else item)
    return out


def check_text(body: dict[str, Any], name: str, err: ErrorFactory = bad_request, required: bool = False) -> None:
    value = body.get(name)
    if value is None:
        if required:
            raise err(f"Field '{name}' is required")
        return
    if required and not value.strip():
        raise err(f"Field '{name}' is required")
    if len(value) > MAX_TEXT:
        raise err(f"Field '{name}' is too long: at most {MAX_TEXT} characters")


def check_date(value: str | None, name: str, err: ErrorFactory = bad_request) -> None:
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


def check_visible_to(body: dict[str, Any]) -> None:
    if body.get("visible_to") is not None and body["visible_to"] not in VISIBLE_TO:
        raise bad_request("Invalid 'visible_to': one of 1, 3, 5, 7")


def check_int_list(body: dict[str, Any], name: str) -> None:
    if body.get(name) is not None and not all(type_ok(v, "int") for v in body[name]):
        raise bad_request(f"Invalid type for field '{name}': expected an array of integers")


def check_common(body: Any, fields: FieldTypes, *texts: str, required: str | None = None) -> dict[str, Any]:
    """The checks every v2 entity body gets: field types, text lengths (``required`` must be non-blank),
    ``visible_to`` and ``label_ids``."""
    check_types(body, fields)
    for name in texts:
        check_text(body, name, required=name == required)
    check_visible_to(body)
    check_int_list(body, "label_ids")
    return body


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
    mark_primary(out)
    return out


def mark_primary(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The first entry becomes primary when none is."""
    if entries and not any(entry["primary"] for entry in entries):
        entries[0]["primary"] = True
    return entries


# Custom field values by field type (the spec's field_type table): texts with their length limits,
# then the types checked by shape.
TEXT_LIMITS = {"varchar": MAX_TEXT, "varchar_auto": MAX_TEXT, "phone": MAX_TEXT, "text": 65535}
_ID_TYPES = frozenset({"int", "user", "org", "people", "stage"})


def option_ids(field: dict[str, Any]) -> list[Any]:
    return [option["id"] for option in field.get("options") or []]


def _is_date(value: Any) -> bool:
    if not isinstance(value, str) or not DATE_RE.match(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_time(value: Any) -> bool:
    match = TIME_RE.match(value) if isinstance(value, str) else None
    return bool(match and match[3] is not None and int(match[1]) <= 23 and int(match[2]) <= 59
                and int(match[3]) <= 59)


def _is_option(value: Any, field: dict[str, Any]) -> bool:
    return type_ok(value, "int") and value in option_ids(field)


def custom_value_ok(value: Any, field: dict[str, Any]) -> bool:
    """Whether a (non-null) value fits the custom field: double/monetary a number; varchar, varchar_auto,
    phone (at most 255 characters) and text a string; date ``YYYY-MM-DD`` (a real date); time
    ``HH:MM:SS``; enum one of the option ids; set a non-empty array of option ids; int/user/org/people
    an integer. Other types are not checked."""
    field_type = field["field_type"]
    if field_type in ("double", "monetary"):
        return type_ok(value, "num")
    if field_type in TEXT_LIMITS:
        return isinstance(value, str) and len(value) <= TEXT_LIMITS[field_type]
    if field_type == "date":
        return _is_date(value)
    if field_type == "time":
        return _is_time(value)
    if field_type == "enum":
        return _is_option(value, field)
    if field_type == "set":
        return isinstance(value, list) and bool(value) and all(_is_option(v, field) for v in value)
    if field_type in _ID_TYPES:
        return type_ok(value, "int")
    return True


def custom_expectation(field: dict[str, Any]) -> str:
    """What ``custom_value_ok`` wants for the field, for error messages."""
    field_type = field["field_type"]
    ids = ", ".join(str(i) for i in option_ids(field)) or "none"
    wanted = {
        "double": "a number", "monetary": "a number", "date": "a date string YYYY-MM-DD",
        "time": "a time string HH:MM:SS", "enum": f"one of the option ids {ids}",
        "set": f"a non-empty array of option ids from {ids} (null clears the field)",
    }
    if field_type in TEXT_LIMITS:
        return f"a string of at most {TEXT_LIMITS[field_type]} characters"
    return wanted.get(field_type, "an integer" if field_type in _ID_TYPES else "a value")


def check_custom_fields(values: dict[str, Any], known: dict[str, dict[str, Any]], listing: str) -> None:
    """A v2 ``custom_fields`` object: every key an existing custom field's code (``known``), every value
    of its type (``custom_value_ok``) or null (clears the field)."""
    for key, value in values.items():
        field = known.get(key)
        if field is None:
            raise bad_request(f"Unknown custom field key '{key}' (see GET /api/v2/{listing})")
        if value is not None and not custom_value_ok(value, field):
            raise bad_request(f"Invalid value for custom field '{field['field_name']}' ({key}): "
                              f"expected {field['field_type']}, {custom_expectation(field)}")


def check_option(body: dict[str, Any], field: dict[str, Any], listing: str) -> None:
    """A standard option field (e.g. an organization's ``industry``): null or one of its option ids."""
    name = field["field_code"]
    if body.get(name) is not None and not _is_option(body[name], field):
        raise bad_request(f"Invalid '{name}': expected null or one of the option ids "
                          f"{', '.join(str(i) for i in option_ids(field))} (see GET /api/v2/{listing})")


def check_known_keys(body: dict[str, Any], fields: FieldTypes, operation: str) -> None:
    """Refuse a body key that is not one of the operation's body properties (``fields``)."""
    unknown = [key for key in body if key not in fields]
    if unknown:
        raise bad_request(f"Unknown field '{unknown[0]}': {operation} takes {', '.join(fields)}")
