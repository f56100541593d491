"""Keeping existing Pipedrive records current with what LeadBoxer knows (pure: no API, no ledger).

Two kinds of fields:

* **filled** fields (a person's name, phone and job title; an organization's address, website, domain
  field, industry and LinkedIn page) are written only where Pipedrive's value is empty (for a person's
  name: only the email), or is still exactly what the sync wrote there last; a value someone typed in
  Pipedrive is kept;
* **mapped** fields (the ``custom_fields`` Param: a LeadBoxer fact → a custom field) are the sync's own
  and are overwritten whenever the fact changes.

What the sync last considered for each field is kept in the ledger (``lbpd_record_field``): a field is
looked at again only when LeadBoxer's fact changes, so an unchanged lead costs no call at all.

Fields are named as in Pipedrive's v2 bodies; a custom field is ``custom:<field code>``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pandas as pd

from leadboxer_pipedrive.loading.common import is_present
from leadboxer_pipedrive.loading.fields import CUSTOM, Field

# LeadBoxer facts the activity sync's ``custom_fields`` Param may map onto person, organization and deal
# fields (``last_visit``: the lead's latest event of the run).
ACTIVITY_FACTS = ("lead_score", "leadcard_url", "first_channel", "last_channel", "visits", "country", "last_visit")


def person_fields(facts: pd.Series, email: str, fields: Mapping[str, Field] | None = None) -> dict[str, Any]:
    """The person fields LeadBoxer knows for ``email``: its name (not the email's local part, which only
    stands in for a missing name), its phone and, where the account has the field (``fields``: its
    person fields; ``job_title`` exists only with contact sync), its job title."""
    wanted: dict[str, Any] = {}
    name = facts.get("person_name")
    if is_present(name) and str(name).strip().lower() not in _email_names({email.strip().lower()}):
        wanted["name"] = str(name)
    if is_present(facts.get("phone")):
        wanted["phones"] = [{"value": str(facts["phone"]), "primary": True, "label": "work"}]
    if is_present(facts.get("job_title")) and fields and "job_title" in fields:
        wanted["job_title"] = fields["job_title"].value(facts["job_title"])
    return wanted


def organization_fields(facts: pd.Series, domain_field_code: str | None = None,
                        fields: Mapping[str, Field] | None = None) -> dict[str, Any]:
    """The organization fields LeadBoxer knows: address (city, country), website and the mapped domain
    field (from its domain), LinkedIn page and, where the account's ``industry`` field (``fields``: its
    organization fields) has an option of that name, industry."""
    wanted: dict[str, Any] = {}
    industry = fields.get("industry") if fields and is_present(facts.get("org_industry")) else None
    option = industry.value(facts["org_industry"]) if industry is not None else None
    if option is not None:
        wanted["industry"] = option
    if is_present(facts.get("org_address")):
        wanted["address"] = {"value": str(facts["org_address"])}
    domain = facts.get("org_domain")
    if is_present(domain):
        wanted["website"] = domain if "://" in domain else f"https://{domain}"
        if domain_field_code:
            wanted[CUSTOM + domain_field_code] = str(domain)
    if is_present(facts.get("org_linkedin")):
        wanted["linkedin"] = str(facts["org_linkedin"])
    return wanted


def mapped_values(facts: pd.Series, mapped: Mapping[str, Field]) -> dict[str, Any]:
    """The mapped fields' values (``mapped``: LeadBoxer fact → field), each as its field takes it; a fact
    LeadBoxer does not know, or one the field cannot hold, is left out (the field keeps its value)."""
    values = {field.key: field.value(facts.get(fact)) for fact, field in mapped.items() if is_present(facts.get(fact))}
    return {key: value for key, value in values.items() if value is not None}


def with_last_visit(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with ``last_visit``: the time (ISO 8601, UTC) of each email's latest event among them."""
    latest = pd.to_datetime(rows.groupby("email")["event_time_ms"].transform("max"), unit="ms", utc=True)
    return rows.assign(last_visit=latest.dt.strftime("%Y-%m-%dT%H:%M:%SZ"))


def organization_rows(rows: pd.DataFrame) -> list[pd.Series]:
    """The first row (by email) of each organization in ``rows``: whose facts stand for it, whichever
    thread reaches it first."""
    named = rows[rows["org_key"].notna()].sort_values("email", kind="stable").drop_duplicates("org_key")
    return [row for _, row in named.iterrows()]


def encoded(value: Any) -> str:
    """A field's value as the ledger keeps it."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def changed(wanted: dict[str, Any], last: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The fields whose fact differs from what the sync last considered for them (all, the first time;
    a refused update is not remembered, so its fields stay changed until Pipedrive takes them)."""
    return {key: value for key, value in wanted.items() if (last.get(key) or {}).get("value") != encoded(value)}


def free_fields(todo: dict[str, Any], held: dict[str, Any], last: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The fields of ``todo`` that may be written: empty in Pipedrive (``held``: its values, as
    ``person_held``/``organization_held`` read them), or still what the sync wrote last."""
    def ours(key: str) -> bool:
        row = last.get(key) or {}
        return row.get("outcome") == "written" and _comparable(key, json.loads(row["value"])) == held.get(key)
    return {key: value for key, value in todo.items() if not held.get(key) or ours(key)}


def person_held(person: dict[str, Any]) -> dict[str, Any]:
    """A person's name (empty when it is only one of its emails), phone numbers and job title, as
    Pipedrive holds them."""
    name = str(person.get("name") or "").strip()
    return {"name": "" if name.lower() in _email_names(emails_of(person)) else name,
            "phones": _comparable("phones", person.get("phones")), "job_title": person.get("job_title") or ""}


def organization_held(organization: dict[str, Any]) -> dict[str, Any]:
    """An organization's address, website, industry, LinkedIn page and custom fields, as Pipedrive
    holds them."""
    custom = organization.get("custom_fields") or {}
    return {"address": _comparable("address", organization.get("address")),
            "website": organization.get("website") or "", "linkedin": organization.get("linkedin") or "",
            "industry": organization.get("industry"),
            **{CUSTOM + code: value for code, value in custom.items() if value not in (None, "")}}


def patch_body(fields: dict[str, Any]) -> dict[str, Any]:
    """The v2 update body of these fields (custom ones under ``custom_fields``)."""
    body = {key: value for key, value in fields.items() if not key.startswith(CUSTOM)}
    custom = {key[len(CUSTOM):]: value for key, value in fields.items() if key.startswith(CUSTOM)}
    return {**body, "custom_fields": custom} if custom else body


def field_rows(entity: str, record_id: int, considered: dict[str, Any], written: dict[str, Any]) -> list[dict]:
    """Ledger rows for the fields considered: written, or kept (someone else's value)."""
    return [{"entity": entity, "record_id": int(record_id), "field_key": key, "value": encoded(value),
             "outcome": "written" if key in written else "kept"} for key, value in considered.items()]


def emails_of(record: dict[str, Any]) -> set[str]:
    """A Pipedrive person's emails, trimmed and lower-cased."""
    return {str(e.get("value") if isinstance(e, dict) else e).strip().lower() for e in record.get("emails") or []}


def _email_names(emails: set[str]) -> set[str]:
    """Emails (lower-cased), and their local parts: what a person created from an email alone is named."""
    return emails | {e.split("@")[0] for e in emails if e}


def _comparable(key: str, value: Any) -> Any:
    """A field's value in the form both sides compare: phone numbers as a list, an address as its text."""
    if key == "phones":
        return [str(c.get("value") if isinstance(c, dict) else c) for c in value or []
                if (c.get("value") if isinstance(c, dict) else c)]
    if key == "address":
        return str((value or {}).get("value") or "") if isinstance(value, dict) else str(value or "")
    return value
