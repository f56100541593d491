"""Keeping existing Pipedrive records current with what LeadBoxer knows (pure: no API, no ledger).

A field is filled only where Pipedrive's value is empty (for a person's name: only the email), or is
still exactly what the sync wrote there last; a value someone typed in Pipedrive is kept. What the sync
last considered for each field is kept in the ledger (``lbpd_record_field``): a field is looked at
again only when LeadBoxer's fact changes, so an unchanged lead costs no call at all.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from leadboxer_pipedrive.loading.common import is_present


def person_fields(facts: pd.Series, email: str) -> dict[str, Any]:
    """The person fields LeadBoxer knows for ``email``: its name (not the email's local part, which only
    stands in for a missing name) and its phone."""
    wanted: dict[str, Any] = {}
    name = facts.get("person_name")
    if is_present(name) and str(name).strip().lower() not in _email_names([email]):
        wanted["name"] = str(name)
    if is_present(facts.get("phone")):
        wanted["phones"] = [{"value": str(facts["phone"]), "primary": True, "label": "work"}]
    return wanted


def encoded(value: Any) -> str:
    """A field's value as the ledger keeps it."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def changed(wanted: dict[str, Any], last: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The fields whose fact differs from what the sync last considered for them (all, the first time)."""
    return {key: value for key, value in wanted.items() if (last.get(key) or {}).get("value") != encoded(value)}


def free_person_fields(todo: dict[str, Any], current: dict[str, Any],
                       last: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The fields of ``todo`` that may be written to the person ``current`` (as Pipedrive holds it)."""
    held = {"name": current.get("name"), "phones": _values(current.get("phones"))}
    emails = [e.get("value") if isinstance(e, dict) else e for e in current.get("emails") or []]
    free = {}
    for key, value in todo.items():
        empty = not held[key] or (key == "name" and str(held[key]).strip().lower() in _email_names(emails))
        ours = (last.get(key) or {}).get("outcome") == "written" and \
            _comparable(key, json.loads(last[key]["value"])) == held[key]
        if empty or ours:
            free[key] = value
    return free


def field_rows(entity: str, record_id: int, considered: dict[str, Any], written: dict[str, Any]) -> list[dict]:
    """Ledger rows for the fields considered: written, or kept (someone else's value)."""
    return [{"entity": entity, "record_id": int(record_id), "field_key": key, "value": encoded(value),
             "outcome": "written" if key in written else "kept"} for key, value in considered.items()]


def _email_names(emails: list[Any]) -> set[str]:
    """Emails, and their local parts: what a person created from an email alone is named."""
    values = {str(e).strip().lower() for e in emails if e}
    return values | {e.split("@")[0] for e in values}


def _values(contacts: Any) -> list[str]:
    return [str(c.get("value") if isinstance(c, dict) else c) for c in contacts or []
            if (c.get("value") if isinstance(c, dict) else c)]


def _comparable(key: str, value: Any) -> Any:
    return _values(value) if key == "phones" else value
