"""The integrations file (``include/integrations.yaml``): one DAG per declared integration.

Read at DAG-parse time, so this module is cheap: PyYAML, pydantic (which Airflow's SDK loads anyway) and the
standard library only (no pandas, no great-expectations). The parsed result is cached per file path and
modification time, so a scheduler re-parsing an unchanged file does not read or validate it again.

Each entry is validated on its own (the model ``Integration``): a bad entry yields an error message naming
the entry and the field, and never hides the good entries (see ``dags/leadboxer_pipedrive_integrations.py``
for where errors go).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.functional_validators import AfterValidator, BeforeValidator
from pydantic.types import StringConstraints
from pydantic_core import PydanticCustomError

ENV_PATH = "LEADBOXER_PIPEDRIVE_INTEGRATIONS"
DAG_ID_PREFIX = "leadboxer_pipedrive__"
CONFIG_ERRORS_DAG_ID = DAG_ID_PREFIX + "config_errors"

Sync = Literal["activities", "leads"]
LinkTo = Literal["organization", "person", "both"]
ActivityMode = Literal["per_event", "digest"]
SYNCS, LINK_TO_OPTIONS, ACTIVITY_MODES = get_args(Sync), get_args(LinkTo), get_args(ActivityMode)
DEFAULT_SCHEDULE = "0 * * * *"
_CRON_ALIASES = {"@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually"}

ACTIVITY_FIELDS = ("pipeline_id", "activity_mode", "activity_type", "custom_fields")
LEAD_FIELDS = ("link_to", "segment_sync_hours")
CONNECTION_FIELDS = ("leadboxer_conn_id", "pipedrive_conn_id", "ledger_conn_id")  # never empty, if given
LIST_FIELDS = ("tags", "alert_emails")  # a single string is a list of one


def _digits(value: str) -> int:
    if not value.strip().isdigit():
        raise ValueError("not digits")
    return int(value)


# Strict types: an integer is never taken for a string, nor a string for an integer (except an id's digits).
_Text = Annotated[str, StringConstraints(strict=True, strip_whitespace=True, min_length=1)]  # kept stripped
_Id = Annotated[int, Field(strict=True, gt=0)] | Annotated[str, StringConstraints(strict=True), AfterValidator(_digits)]
_Texts = Annotated[tuple[_Text, ...], Field(strict=True),  # from a list (not a set)
                   BeforeValidator(lambda value: tuple(value) if isinstance(value, list) else value)]
_DatasetId = Annotated[_Text, BeforeValidator(  # an integer is taken as its digits
    lambda value: str(value) if isinstance(value, int) and not isinstance(value, bool) else value)]
_Count = Annotated[int, Field(strict=True, ge=0)]
_TEXT = "must be a non-empty string"


class Integration(BaseModel):
    """One validated entry of the integrations file. Its fields are checked in this order, and the first one
    refused is the entry's error: ``<field>: <the field's description>, not <the value>``."""

    model_config = ConfigDict(frozen=True, extra="forbid", regex_engine="python-re")

    name: Annotated[str, StringConstraints(strict=True, pattern=r"^[a-z0-9][a-z0-9_]{0,99}$")] = Field(
        description="must be 1-100 lowercase letters, digits and underscores, starting with a letter or digit "
                    f"(it makes the dag_id {DAG_ID_PREFIX}<name>)")
    sync: Sync  # checked before any other field: see _fields_of_its_sync
    dataset_id: _DatasetId = Field(description="required, the LeadBoxer dataset id (a string)")
    segment_id: _Id = Field(description="required, a positive LeadBoxer segment id")
    leadboxer_conn_id: _Text = Field("leadboxer_default", description=_TEXT)
    pipedrive_conn_id: _Text = Field("pipedrive_default", description=_TEXT)
    ledger_conn_id: _Text = Field("leadboxer_pipedrive_ledger", description=_TEXT)
    schedule: _Text = Field(DEFAULT_SCHEDULE, description=_TEXT)  # a cron expression: _cron
    tags: _Texts = Field((), description="must be a list of non-empty strings")
    alert_emails: _Texts = Field((), description="must be a list of non-empty strings")  # addresses: _addresses
    description: _Text | None = Field(None, description=_TEXT)
    organization_domain_field: _Text | None = Field(None, description=_TEXT)
    # None: the DAGs' default
    retries: _Count | None = Field(None, description="how many more times a failed task is tried (0 or more)")
    # activities only
    pipeline_id: _Id | None = Field(None, description="a positive Pipedrive pipeline id, or empty to never "
                                                      "create deals")
    activity_mode: ActivityMode = Field("per_event", description=f"must be one of {', '.join(ACTIVITY_MODES)}")
    activity_type: _Text = Field("task", description=_TEXT)
    custom_fields: dict[Literal["person", "organization", "deal"], dict[_Text, _Text]] = Field(
        default_factory=dict, description="must map person, organization or deal to {LeadBoxer fact: Pipedrive "
                                          "custom field name}")
    # leads only
    link_to: LinkTo = Field("both", description=f"must be one of {', '.join(LINK_TO_OPTIONS)}")
    segment_sync_hours: Annotated[float, Field(strict=True, ge=0)] | Annotated[int, Field(strict=True, ge=0)] = Field(
        24, description="hours between whole-segment syncs (0: only the first), a number 0 or more")

    @property
    def dag_id(self) -> str:
        return DAG_ID_PREFIX + self.name

    @model_validator(mode="wrap")
    @classmethod
    def _one_problem(cls, entry: Any, handler: Any) -> Integration:
        """The entry's first problem as its only error, a message naming the field."""
        entry = _as_given(_fields_of_its_sync(entry))
        try:
            return handler(entry)
        except ValidationError as invalid:
            first = invalid.errors(include_url=False)[0]
            field = first["loc"][0]
            if first["type"] == "integration":  # raised below, with its own message
                raise _problem(f"{field}: {first['msg']}") from None
            raise _problem(f"{field}: {cls.model_fields[field].description}, not {entry.get(field)!r}") from None

    @field_validator("schedule")
    @classmethod
    def _cron(cls, schedule: str) -> str:
        if schedule not in _CRON_ALIASES and len(schedule.split()) not in (5, 6):
            raise _problem(f"must be a cron expression such as '0 * * * *' (or @hourly, @daily...), "
                           f"not {schedule!r}")
        return schedule

    @field_validator("alert_emails")
    @classmethod
    def _addresses(cls, emails: tuple[str, ...]) -> tuple[str, ...]:
        for email in emails:
            if "@" not in email:
                raise _problem(f"{email!r} is not an email address")
        return emails


COMMON_FIELDS = tuple(field for field in Integration.model_fields if field not in ACTIVITY_FIELDS + LEAD_FIELDS)


def _problem(message: str) -> PydanticCustomError:
    """An error whose message is shown as it is."""
    return PydanticCustomError("integration", "{message}", {"message": message})


def _fields_of_its_sync(entry: Any) -> dict[Any, Any]:
    """A mapping with a known sync, and the fields of that sync only (the other sync's may be empty)."""
    if not isinstance(entry, dict):
        raise _problem(f"must be a mapping of fields, not {type(entry).__name__}")
    sync = entry.get("sync")
    if sync not in SYNCS:
        raise _problem(f"sync: must be one of {', '.join(SYNCS)}, not {sync!r}")
    own, other = (ACTIVITY_FIELDS, LEAD_FIELDS) if sync == "activities" else (LEAD_FIELDS, ACTIVITY_FIELDS)
    for key, value in entry.items():
        if key in other and value is not None:
            raise _problem(f"{key}: applies to sync: {'leads' if sync == 'activities' else 'activities'} only, "
                           f"not to sync: {sync}")
        if key not in COMMON_FIELDS + own + other:
            raise _problem(f"{key}: unknown field (known: {', '.join(COMMON_FIELDS + own)})")
    return entry


def _as_given(entry: dict[Any, Any]) -> dict[Any, Any]:
    """An empty field is left out (its default applies), except a connection id; a single string in place of
    a list is a list of one."""
    return {key: [value] if key in LIST_FIELDS and isinstance(value, str) else value
            for key, value in entry.items() if value is not None or key in CONNECTION_FIELDS}


@dataclass(frozen=True)
class IntegrationsConfig:
    """What a file yielded: the valid integrations, and one message per problem found."""

    integrations: tuple[Integration, ...] = ()
    errors: tuple[str, ...] = ()
    path: str | None = None


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
    problem = _layout_problem(document)
    if problem:
        return IntegrationsConfig(errors=(f"{source}: {problem}",), path=source)
    errors: list[str] = []
    unknown = sorted(set(document) - {"integrations", "defaults"})
    if unknown:
        errors.append(f"{source}: unknown top-level key(s) {', '.join(map(str, unknown))} "
                      "(expected 'integrations' and optional 'defaults')")
    integrations = _integrations(document.get("integrations") or [], document.get("defaults") or {}, source, errors)
    return IntegrationsConfig(tuple(integrations), tuple(errors), source)


def _layout_problem(document: Any) -> str | None:
    if not isinstance(document, dict) or not isinstance(document.get("integrations", []), list):
        return "expected a mapping with an 'integrations' list (and optional 'defaults')"
    if not isinstance(document.get("defaults") or {}, dict):
        return "'defaults' must be a mapping"
    return None


def _integrations(entries: list[Any], defaults: dict[str, Any], source: str, errors: list[str]) -> list[Integration]:
    """The valid entries, with unique names; one message in ``errors`` for each other entry."""
    integrations: list[Integration] = []
    seen: dict[str, int] = {}
    for number, entry in enumerate(entries, start=1):
        label = _label(number, entry)
        try:
            integration = Integration.model_validate(_with_defaults(defaults, entry))
        except ValidationError as invalid:
            errors.append(f"{source}: integration {label}: {invalid.errors()[0]['msg']}")
            continue
        if integration.name in seen:
            errors.append(f"{source}: integration {label}: name: {integration.name!r} is already used by "
                          f"entry #{seen[integration.name]}; names must be unique (they make the dag_id)")
            continue
        seen[integration.name] = number
        integrations.append(integration)
    return integrations


def _with_defaults(defaults: dict[str, Any], entry: Any) -> Any:
    """``defaults`` under ``entry``; a default that applies only to the other sync is left out."""
    if not isinstance(entry, dict):
        return entry
    sync = entry.get("sync", defaults.get("sync"))
    other = LEAD_FIELDS if sync == "activities" else ACTIVITY_FIELDS if sync == "leads" else ()
    return {**{k: v for k, v in defaults.items() if k not in other}, **entry}


def _label(number: int, entry: Any) -> str:
    name = entry.get("name") if isinstance(entry, dict) else None
    return f"#{number} ({name!r})" if name else f"#{number}"
