"""Pipedrive's field lists: what a field name means in one account (its code, its type, its options).

Read through ``GET /api/v2/{entity}Fields`` (10 tokens each) and remembered in the ledger for a day,
read again sooner when a field asked for is not in the remembered list (made since). Every mapped
field, the organization domain field and the standard fields whose presence depends on the account
(a person's ``job_title`` exists only with contact sync; an organization's ``industry`` options) are
looked up here, and every value sent to a field goes through :meth:`Field.value`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import datetime, timezone
from typing import Any

from leadboxer_pipedrive.exceptions import SyncConfigurationError

ENTITIES = ("person", "organization", "deal")
# Field codes and options rarely change: a day between reads keeps a run from paying 10 tokens each.
FIELD_CODE_CHECK_SECONDS = 24 * 3600
# A custom field's key in the field dicts of ``loading.updates`` (its value goes under ``custom_fields``).
CUSTOM = "custom:"

TEXT_TYPES = frozenset({"varchar", "varchar_auto", "text", "phone"})
NUMBER_TYPES = frozenset({"double", "monetary"})
OPTION_TYPES = frozenset({"enum", "set"})
MAPPABLE_TYPES = TEXT_TYPES | NUMBER_TYPES | OPTION_TYPES | {"int", "date", "time"}
VARCHAR_LIMIT = 255
# Custom field types Pipedrive's organization search can match (and that hold a domain as text).
DOMAIN_FIELD_TYPES = ("varchar", "varchar_auto", "text")


@dataclass(frozen=True)
class Field:
    """One Pipedrive field: ``options`` maps each option's label (case-folded) to its id."""

    name: str
    code: str
    type: str
    custom: bool
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def key(self) -> str:
        """The field's key in ``loading.updates``' field dicts: its code, ``custom:<code>`` when custom."""
        return CUSTOM + self.code if self.custom else self.code

    def value(self, fact: Any) -> Any:
        """``fact`` as this field takes it (a number, ``YYYY-MM-DD``, ``HH:MM:SS``, an option id, text);
        None when the field cannot hold it (not a number, no option of that label)."""
        if fact is None:
            return None
        if self.type in NUMBER_TYPES or self.type == "int":
            try:
                number = float(fact)
            except (TypeError, ValueError):
                return None
            if not math.isfinite(number):
                return None
            return int(round(number)) if self.type == "int" else number
        if self.type in ("date", "time"):
            moment = _moment(fact)
            if moment is None:
                return None
            return moment.strftime("%Y-%m-%d" if self.type == "date" else "%H:%M:%S")
        text = str(fact).strip()
        if self.type in OPTION_TYPES:
            option = dict(self.options).get(text.casefold())
            if option is None:
                return None
            return [option] if self.type == "set" else option
        return text[:VARCHAR_LIMIT] if self.type != "text" else text


def _moment(fact: Any) -> datetime | None:
    """A time from epoch milliseconds or ISO 8601 text (UTC when it names no zone)."""
    if isinstance(fact, (int, float)):
        return datetime.fromtimestamp(fact / 1000, tz=timezone.utc)
    try:
        moment = datetime.fromisoformat(str(fact).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _fields_fact(entity: str) -> str:
    return f"pipedrive_{entity}_fields"


def _read(pipedrive, entity: str) -> list[dict[str, Any]]:
    return [{"name": f["field_name"], "code": f["field_code"], "type": f.get("field_type") or "varchar",
             "custom": bool(f.get("is_custom_field")),
             "options": [[str(o.get("label", "")).casefold(), o.get("id")] for o in f.get("options") or []]}
            for f in pipedrive.list_fields(entity)]


def _catalog(rows: Iterable[dict[str, Any]]) -> dict[str, Field]:
    fields: dict[str, Field] = {}
    for row in rows:
        field = Field(row["name"], row["code"], row["type"], row["custom"], tuple(map(tuple, row["options"])))
        fields.setdefault(field.name, field)
        fields.setdefault(field.code, field)
    return fields


def cached_fields(ledger, entity: str, max_age_seconds: float = FIELD_CODE_CHECK_SECONDS) -> dict[str, Field] | None:
    """The entity's fields, by name and by code, as the ledger learned them less than ``max_age_seconds``
    ago."""
    remembered = ledger.fresh_fact(_fields_fact(entity), max_age_seconds)
    return _catalog(json.loads(remembered)) if remembered is not None else None


def needs_reading(ledger, entity: str, wanted: Iterable[str] = ()) -> bool:
    """Whether :func:`fields_of` would read Pipedrive's list (what the plan prices)."""
    known = cached_fields(ledger, entity)
    return known is None or not set(wanted) <= set(known)


def fields_of(pipedrive, ledger, entity: str, wanted: Iterable[str] = ()) -> dict[str, Field]:
    """The entity's fields, by name and by code: the ledger's (less than a day old) when they hold every
    name in ``wanted``, else read from Pipedrive (and remembered)."""
    known = cached_fields(ledger, entity)
    if known is not None and set(wanted) <= set(known):
        return known
    rows = _read(pipedrive, entity)
    ledger.remember_fact(_fields_fact(entity), json.dumps(rows))
    return _catalog(rows)


def custom_field(fields: Mapping[str, Field], entity: str, name: str, setting: str) -> Field:
    """The custom field named ``name``; a clear error naming the existing ones when there is none."""
    field = fields.get(name)
    if field is None or not field.custom:
        existing = sorted({f.name for f in fields.values() if f.custom})
        raise SyncConfigurationError(f"{setting}: Pipedrive has no {entity} custom field named {name!r}; "
                                     f"existing {entity} custom fields: {existing}")
    return field


def organization_domain_field_code(pipedrive, ledger, field_name: str) -> str:
    """The code of the organization custom field named ``field_name``; a clear error when it does not
    exist or cannot be searched for a domain."""
    field = custom_field(fields_of(pipedrive, ledger, "organization", [field_name]), "organization", field_name,
                         "organization_domain_field")
    if field.type not in DOMAIN_FIELD_TYPES:
        raise SyncConfigurationError(
            f"organization_domain_field: {field_name!r} is a field of type {field.type}; a domain "
            f"needs a text field Pipedrive can search ({', '.join(DOMAIN_FIELD_TYPES)})")
    return field.code


def mapped_fields(pipedrive, ledger, mapping: Mapping[str, Mapping[str, str]], facts: Iterable[str],
                  setting: str = "custom_fields") -> dict[str, dict[str, Field]]:
    """``{entity: {LeadBoxer fact: Pipedrive field name}}`` → ``{entity: {fact: Field}}``, every name
    resolved before anything is written; a clear error for an unknown entity, fact, field or type."""
    facts = tuple(facts)
    unknown = set(mapping) - set(ENTITIES)
    if unknown:
        raise SyncConfigurationError(f"{setting} maps unknown record kind(s) {sorted(unknown)}; "
                                     f"use {', '.join(ENTITIES)}")
    resolved: dict[str, dict[str, Field]] = {}
    for entity, names in mapping.items():
        if not names:
            continue
        unknown_facts = set(names) - set(facts)
        if unknown_facts:
            raise SyncConfigurationError(f"{setting}.{entity} maps unknown LeadBoxer fact(s) {sorted(unknown_facts)}; "
                                         f"mappable: {', '.join(facts)}")
        catalog = fields_of(pipedrive, ledger, entity, names.values())
        resolved[entity] = {fact: custom_field(catalog, entity, name, f"{setting}.{entity}")
                            for fact, name in names.items()}
        for fact, field in resolved[entity].items():
            if field.type not in MAPPABLE_TYPES:
                raise SyncConfigurationError(
                    f"{setting}.{entity}: {field.name!r} (for {fact}) is a field of type {field.type}; "
                    f"mappable types: {', '.join(sorted(MAPPABLE_TYPES))}")
    return resolved


def mapping_by_entity(custom_fields: Any) -> dict[str, dict[str, str]]:
    """The activity sync's ``custom_fields`` Param as ``{entity: {fact: field name}}``; a clear error
    when it is not shaped so."""
    if not custom_fields:
        return {}
    if not isinstance(custom_fields, Mapping) or not all(isinstance(v, Mapping) for v in custom_fields.values()):
        raise SyncConfigurationError(
            "custom_fields must map each record kind to its fields, e.g. "
            '{"deal": {"lead_score": "LeadBoxer lead score"}, "person": {...}}; got ' + repr(custom_fields)[:200])
    return {str(entity): {str(f): str(n) for f, n in names.items()} for entity, names in custom_fields.items()}


@dataclass(frozen=True)
class SyncFields:
    """The fields one run writes: each record kind's field list where the run needs it (``catalogs``),
    the mapped fields (``mapped``: kind → LeadBoxer fact → field) and the organization domain field's code."""

    catalogs: Mapping[str, Mapping[str, Field]] = dataclass_field(default_factory=dict)
    mapped: Mapping[str, Mapping[str, Field]] = dataclass_field(default_factory=dict)
    domain_field_code: str | None = None

    def mapped_keys(self, entity: str) -> set[str]:
        return {field.key for field in self.mapped.get(entity, {}).values()}


def lists_needed(rows, mapping: Mapping[str, Mapping[str, str]], domain_field: str | None) -> dict[str, list[str]]:
    """Record kind → the field names a load of ``rows`` looks up: mapped fields, the domain field, and
    the account-dependent standard fields LeadBoxer has facts for (``job_title``, ``industry``)."""
    needed = {entity: list(names.values()) for entity, names in mapping.items() if names}
    if "job_title" in rows and rows["job_title"].notna().any():
        needed.setdefault("person", [])
    if domain_field:
        needed.setdefault("organization", []).append(domain_field)
    if "org_industry" in rows and rows["org_industry"].notna().any():
        needed.setdefault("organization", [])
    return needed


def sync_fields(pipedrive, ledger, rows, mapping: Mapping[str, Mapping[str, str]], facts: Iterable[str],
                domain_field: str | None) -> SyncFields:
    """Everything a load of ``rows`` needs to know of the account's fields, resolved before any write."""
    catalogs = {entity: fields_of(pipedrive, ledger, entity, wanted)
                for entity, wanted in lists_needed(rows, mapping, domain_field).items()}
    return SyncFields(catalogs, mapped_fields(pipedrive, ledger, mapping, facts),
                      organization_domain_field_code(pipedrive, ledger, domain_field) if domain_field else None)
