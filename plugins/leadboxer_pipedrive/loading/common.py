"""What every loader shares: its settings, its result, how it records refused rows, stale-id detection."""

from __future__ import annotations

import json
import logging
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

log = logging.getLogger(__name__)


@dataclass
class LoadSettings:
    dataset_id: str
    dag_id: str
    run_id: str
    pipeline_id: int | None = None  # activity sync: None links existing open deals, never creates one
    task_id: str = "load"
    try_number: int = 1
    workers: int = 4  # concurrent persons in flight; the hook's limiter keeps the burst limits
    activity_mode: str = "per_event"  # or "digest": one activity per lead and hour
    max_attempts: int = 3  # refusals by Pipedrive before a row is quarantined
    organization_domain_field: str | None = None  # Pipedrive organization custom field holding the domain
    # Activity sync: record kind (person, organization, deal) → LeadBoxer fact → Pipedrive field name.
    custom_fields: dict[str, dict[str, str]] = field(default_factory=dict)
    # Activity sync: find persons and organizations in the account index when cheaper than searching
    # (``loading.account_index``); False: always search.
    account_index: bool = True


@dataclass
class LoadResult:
    received: int = 0
    pushed: int = 0
    already_pushed: int = 0
    refused: int = 0
    counts: Counter = field(default_factory=Counter)
    refusals: list[dict[str, Any]] = field(default_factory=list)
    refused_by_reason: Counter = field(default_factory=Counter)  # this window's rows Pipedrive refused
    pushed_ids: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count_rows(self, rows: pd.DataFrame, key: str, retry_key: str) -> None:
        """Count rows of this window under ``key`` and rows retried from earlier runs under ``retry_key``."""
        retried = int(rows["_retry"].sum()) if "_retry" in rows else 0
        if len(rows) - retried:
            self.count(key, len(rows) - retried)
        if retried:
            self.count(retry_key, retried)

    def count(self, key: str, amount: int = 1) -> None:
        """Thread-safe increment of ``pushed``/``already_pushed``/``refused`` or a named counter."""
        with self._lock:
            if key in ("pushed", "already_pushed", "refused"):
                setattr(self, key, getattr(self, key) + amount)
            else:
                self.counts[key] += amount

    def mark_pushed(self, record_ids) -> None:
        """Thread-safe: these records are in Pipedrive (pushed now, earlier, or found there)."""
        with self._lock:
            self.pushed_ids.extend(record_ids)

    def add_refusals(self, record_ids, reason: str, window_rows: int = 0) -> None:
        """Thread-safe: Pipedrive refused these records (``window_rows`` of them this window's), for this
        reason."""
        with self._lock:
            self.refusals.extend({"record_id": record_id, "reason": reason} for record_id in record_ids)
            if window_rows:
                self.refused_by_reason[reason] += window_rows

    def as_dict(self) -> dict[str, Any]:
        """The figures; ``refused_by_reason`` sums to ``refused``."""
        return {"received": self.received, "pushed": self.pushed, "already_pushed": self.already_pushed,
                "refused": self.refused, **dict(sorted(self.counts.items())),
                **({"refused_by_reason": dict(self.refused_by_reason)} if self.refused_by_reason else {})}


def is_present(value: Any) -> bool:
    """A value that is there: not None, NA, NaN or the empty string."""
    if value is None or value is pd.NA:
        return False
    if isinstance(value, float) and pd.isna(value):
        return False
    return value != ""


def row_payload(row: dict[str, Any]) -> str:
    """A row as JSON with plain types, to be loaded again by a later run."""
    def plain(value: Any) -> Any:
        if value is None or value is pd.NA or (isinstance(value, float) and value != value):
            return None
        return value.item() if hasattr(value, "item") else value
    return json.dumps({k: plain(v) for k, v in row.items() if k != "_retry"}, default=str)


def retry_row(settings: LoadSettings, entity: str, record_id: str, row: dict[str, Any], attempts: int,
              reason: str, status: str) -> dict[str, Any]:
    """A row of the retry queue (``lbpd_retry``): the row itself, to be loaded again by a later run."""
    return {"dataset_id": settings.dataset_id, "entity": entity, "record_id": record_id, "payload": row_payload(row),
            "attempts": attempts, "last_error": reason[:1000], "status": status}


def refuse_rows(ledger, settings: LoadSettings, result: LoadResult, rows: pd.DataFrame, entity: str,
                id_column: str, reason: str) -> None:
    """Rows Pipedrive refused: recorded with its message, queued for later runs, quarantined after
    ``settings.max_attempts`` refusals."""
    log.warning("%d %s row(s) refused: %s", len(rows), entity, reason)
    records = rows.to_dict("records")
    ids = [str(row[id_column]) for row in records]
    attempts = ledger.retry_attempts(settings.dataset_id, entity, ids)
    queued, rejections, quarantined = [], [], 0
    for record_id, row in zip(ids, records):
        tries = attempts.get(record_id, 0) + 1
        status = "quarantined" if tries >= settings.max_attempts else "pending"
        quarantined += status == "quarantined"
        queued.append(retry_row(settings, entity, record_id, row, tries, reason, status))
        rejections.append({
            "dag_id": settings.dag_id, "run_id": settings.run_id, "entity": entity, "record_id": record_id,
            "use_id": row.get("use_id"), "email": row.get("email") if is_present(row.get("email")) else None,
            "outcome": "quarantined" if status == "quarantined" else "rejected",
            "reason": reason[:1000],
            "record": json.dumps({k: row.get(k) for k in ("email", "subject", "title", "org_name") if k in row},
                                 default=str)})
    ledger.queue_retries(queued)
    ledger.record_rejections(rejections)
    result.count_rows(rows, "refused", "retries_refused")
    if quarantined:
        result.count("quarantined", quarantined)
    result.add_refusals(ids, reason, window_rows=len(rows) - (int(rows["_retry"].sum()) if "_retry" in rows else 0))


def defer_rows(ledger, settings: LoadSettings, result: LoadResult, rows: pd.DataFrame, entity: str,
               id_column: str, reason: str) -> None:
    """Rows left for a later run, not refused: queued (pending, their attempts unchanged) and counted
    deferred."""
    log.info("%d %s row(s) left for a later run: %s", len(rows), entity, reason)
    records = rows.to_dict("records")
    ids = [str(row[id_column]) for row in records]
    attempts = ledger.retry_attempts(settings.dataset_id, entity, ids)
    ledger.queue_retries([retry_row(settings, entity, record_id, row, attempts.get(record_id, 0), reason, "pending")
                          for record_id, row in zip(ids, records)])
    result.count_rows(rows, "deferred", "retries_deferred")


def pending_retries(ledger, settings: LoadSettings, entity: str, exclude: set[str]) -> pd.DataFrame:
    """Rows an earlier run had refused, to try again (not those this run has anyway)."""
    rows = [json.loads(r["payload"]) for r in ledger.retries(settings.dataset_id, entity)
            if r["record_id"] not in exclude]
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame["_retry"] = True
    return frame


_STALE_RE = re.compile(r"\b(Person|Organization|Deal) with id (\d+) (?:not found|does not exist)", re.I)


def stale_reference(detail: str) -> tuple[str, int] | None:
    """``("person", 12)`` when Pipedrive says a referenced record is gone (deleted or merged)."""
    match = _STALE_RE.search(detail or "")
    return (match.group(1).lower(), int(match.group(2))) if match else None
