"""The integrations file (``include/integrations.yaml``): one DAG per declared integration.

Read at DAG-parse time, so this module is cheap: PyYAML and the standard library only (no pandas, no
great-expectations, no Airflow). The parsed result is cached per file path and modification time, so
a scheduler re-parsing an unchanged file does not read or validate it again.

Each entry is validated on its own: a bad entry yields an error message naming the entry and the field,
and never hides the good entries (see ``dags/leadboxer_pipedrive_integrations.py`` for where errors go).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_PATH = "LEADBOXER_PIPEDRIVE_INTEGRATIONS"
DAG_ID_PREFIX = "leadboxer_pipedrive__"
CONFIG_ERRORS_DAG_ID = DAG_ID_PREFIX + "config_errors"

SYNCS = ("activities", "leads")
LINK_TO_OPTIONS = ("organization", "person", "both")
ACTIVITY_MODES = ("per_event", "digest")
DEFAULT_SCHEDULE = "0 * * * *"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_]{0,99}$")
_CRON_ALIASES = {"@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually"}

COMMON_FIELDS = ("name", "sync", "dataset_id", "segment_id", "leadboxer_conn_id", "pipedrive_conn_id",
                 "ledger_conn_id", "schedule", "tags", "alert_emails", "description", "organization_domain_field",
                 "retries")
ACTIVITY_FIELDS = ("pipeline_id", "activity_mode", "activity_type")
LEAD_FIELDS = ("link_to",)


@dataclass(frozen=True)
class Integration:
    """One validated entry of the integrations file."""

    name: str
    sync: str
    dataset_id: str
    segment_id: int | str
    leadboxer_conn_id: str = "leadboxer_default"
    pipedrive_conn_id: str = "pipedrive_default"
    ledger_conn_id: str = "leadboxer_pipedrive_ledger"
    schedule: str = DEFAULT_SCHEDULE
    tags: tuple[str, ...] = ()
    alert_emails: tuple[str, ...] = ()
    description: str | None = None
    organization_domain_field: str | None = None
    retries: int | None = None  # None: the DAGs' default
    # activities only
    pipeline_id: int | None = None
    activity_mode: str = "per_event"
    activity_type: str = "task"
    # leads only
    link_to: str = "both"

    @property
    def dag_id(self) -> str:
        return DAG_ID_PREFIX + self.name


@dataclass(frozen=True)
class IntegrationsConfig:
    """What a file yielded: the valid integrations, and one message per problem found."""

    integrations: tuple[Integration, ...] = ()
    errors: tuple[str, ...] = field(default_factory=tuple)
    path: str | None = None


class _EntryError(ValueError):
    pass


def default_path() -> tuple[Path, bool]:
    """The integrations file, and whether it was named explicitly (``LEADBOXER_PIPEDRIVE_INTEGRATIONS``).

    By default ``include/integrations.yaml`` beside the ``dags/`` folder (the repository, the compose
    mounts, an Airflow home with both folders)."""
    explicit = os.environ.get(ENV_PATH)
    if explicit:
        return Path(explicit), True
    dags = os.environ.get("AIRFLOW__CORE__DAGS_FOLDER")
    base = Path(dags).parent if dags else Path(__file__).resolve().parents[2]
    return base / "include" / "integrations.yaml", False


_CACHE: dict[str, tuple[tuple[int, int], IntegrationsConfig]] = {}


def load_integrations(path: str | Path | None = None) -> IntegrationsConfig:
    """Read and validate the integrations file; cached by path, modification time and size."""
    explicit = path is not None
    if path is None:
        path, explicit = default_path()
    path = Path(path)
    try:
        stat = path.stat()
    except FileNotFoundError:
        if explicit:
            return IntegrationsConfig(errors=(f"{path}: integrations file not found",), path=str(path))
        return IntegrationsConfig(path=str(path))  # no file, no integrations: nothing to report
    key = str(path.resolve())
    stamp = (stat.st_mtime_ns, stat.st_size)
    cached = _CACHE.get(key)
    if cached and cached[0] == stamp:
        return cached[1]
    config = parse_integrations(path.read_text(encoding="utf-8"), source=str(path))
    _CACHE[key] = (stamp, config)
    return config


def parse_integrations(text: str, source: str = "integrations.yaml") -> IntegrationsConfig:
    """Validate the YAML text of an integrations file: every entry on its own."""
    import yaml

    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        return IntegrationsConfig(errors=(f"{source}: not valid YAML: {error}",), path=source)
    if document is None:
        return IntegrationsConfig(path=source)
    if not isinstance(document, dict) or not isinstance(document.get("integrations", []), list):
        return IntegrationsConfig(errors=(
            f"{source}: expected a mapping with an 'integrations' list (and optional 'defaults')",), path=source)
    unknown = sorted(set(document) - {"integrations", "defaults"})
    errors: list[str] = []
    if unknown:
        errors.append(f"{source}: unknown top-level key(s) {', '.join(map(str, unknown))} "
                      "(expected 'integrations' and optional 'defaults')")
    defaults = document.get("defaults") or {}
    if not isinstance(defaults, dict):
        return IntegrationsConfig(errors=(f"{source}: 'defaults' must be a mapping",), path=source)
    integrations: list[Integration] = []
    seen: dict[str, int] = {}
    for number, entry in enumerate(document.get("integrations") or [], start=1):
        label = _label(number, entry)
        try:
            if not isinstance(entry, dict):
                raise _EntryError(f"must be a mapping of fields, not {type(entry).__name__}")
            integration = _validate_entry(_with_defaults(defaults, entry))
        except _EntryError as error:
            errors.append(f"{source}: integration {label}: {error}")
            continue
        if integration.name in seen:
            errors.append(f"{source}: integration {label}: name: {integration.name!r} is already used by "
                          f"entry #{seen[integration.name]}; names must be unique (they make the dag_id)")
            continue
        seen[integration.name] = number
        integrations.append(integration)
    return IntegrationsConfig(tuple(integrations), tuple(errors), source)


def _with_defaults(defaults: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    """``defaults`` under ``entry``; a default that applies only to the other sync is left out."""
    sync = entry.get("sync", defaults.get("sync"))
    other = LEAD_FIELDS if sync == "activities" else ACTIVITY_FIELDS if sync == "leads" else ()
    return {**{k: v for k, v in defaults.items() if k not in other}, **entry}


def _label(number: int, entry: Any) -> str:
    name = entry.get("name") if isinstance(entry, dict) else None
    return f"#{number} ({name!r})" if name else f"#{number}"


def _validate_entry(entry: dict[str, Any]) -> Integration:
    sync = entry.get("sync")
    if sync not in SYNCS:
        raise _EntryError(f"sync: must be one of {', '.join(SYNCS)}, not {sync!r}")
    allowed = COMMON_FIELDS + (ACTIVITY_FIELDS if sync == "activities" else LEAD_FIELDS)
    other = LEAD_FIELDS if sync == "activities" else ACTIVITY_FIELDS
    for key in entry:
        if key in other and entry[key] is not None:
            raise _EntryError(f"{key}: applies to sync: {'leads' if sync == 'activities' else 'activities'} "
                              f"only, not to sync: {sync}")
        if key not in allowed and key not in other:
            raise _EntryError(f"{key}: unknown field (known: {', '.join(allowed)})")

    name = entry.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise _EntryError(f"name: must be 1-100 lowercase letters, digits and underscores, starting with a "
                          f"letter or digit (it makes the dag_id {DAG_ID_PREFIX}<name>), not {name!r}")
    values: dict[str, Any] = {"name": name, "sync": sync}

    dataset_id = entry.get("dataset_id")
    if isinstance(dataset_id, bool) or not isinstance(dataset_id, str | int) or not str(dataset_id).strip():
        raise _EntryError(f"dataset_id: required, the LeadBoxer dataset id (a string), not {dataset_id!r}")
    values["dataset_id"] = str(dataset_id).strip()

    segment_id = entry.get("segment_id")
    if isinstance(segment_id, bool) or not (
            (isinstance(segment_id, int) and segment_id > 0)
            or (isinstance(segment_id, str) and segment_id.strip().isdigit())):
        raise _EntryError(f"segment_id: required, a positive LeadBoxer segment id, not {segment_id!r}")
    values["segment_id"] = int(segment_id)

    for key in ("leadboxer_conn_id", "pipedrive_conn_id", "ledger_conn_id"):
        if key in entry:
            values[key] = _text(entry, key)
    if entry.get("schedule") is not None:
        schedule = _text(entry, "schedule")
        if schedule not in _CRON_ALIASES and len(schedule.split()) not in (5, 6):
            raise _EntryError(f"schedule: must be a cron expression such as '0 * * * *' (or @hourly, @daily...), "
                              f"not {schedule!r}")
        values["schedule"] = schedule
    values["tags"] = _strings(entry, "tags")
    values["alert_emails"] = _strings(entry, "alert_emails")
    for email in values["alert_emails"]:
        if "@" not in email:
            raise _EntryError(f"alert_emails: {email!r} is not an email address")
    if entry.get("description") is not None:
        values["description"] = _text(entry, "description")
    if entry.get("organization_domain_field") is not None:
        values["organization_domain_field"] = _text(entry, "organization_domain_field")
    if entry.get("retries") is not None:
        retries = entry["retries"]
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise _EntryError(f"retries: how many more times a failed task is tried (0 or more), not {retries!r}")
        values["retries"] = retries

    if sync == "activities":
        pipeline_id = entry.get("pipeline_id")
        if pipeline_id is not None:
            if isinstance(pipeline_id, bool) or not (
                    (isinstance(pipeline_id, int) and pipeline_id > 0)
                    or (isinstance(pipeline_id, str) and pipeline_id.strip().isdigit())):
                raise _EntryError(f"pipeline_id: a positive Pipedrive pipeline id, or empty to never create deals, "
                                  f"not {pipeline_id!r}")
            values["pipeline_id"] = int(pipeline_id)
        if entry.get("activity_mode") is not None:
            if entry["activity_mode"] not in ACTIVITY_MODES:
                raise _EntryError(f"activity_mode: must be one of {', '.join(ACTIVITY_MODES)}, "
                                  f"not {entry['activity_mode']!r}")
            values["activity_mode"] = entry["activity_mode"]
        if entry.get("activity_type") is not None:
            values["activity_type"] = _text(entry, "activity_type")
    else:
        if entry.get("link_to") is not None:
            if entry["link_to"] not in LINK_TO_OPTIONS:
                raise _EntryError(f"link_to: must be one of {', '.join(LINK_TO_OPTIONS)}, not {entry['link_to']!r}")
            values["link_to"] = entry["link_to"]
    return Integration(**values)


def _text(entry: dict[str, Any], key: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise _EntryError(f"{key}: must be a non-empty string, not {value!r}")
    return value.strip()


def _strings(entry: dict[str, Any], key: str) -> tuple[str, ...]:
    value = entry.get(key)
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise _EntryError(f"{key}: must be a list of non-empty strings, not {value!r}")
    return tuple(v.strip() for v in value)
