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


@dataclass
class LoadResult:
    received: int = 0
    pushed: int = 0
    already_pushed: int = 0
    refused: int = 0
    counts: Counter = field(default_factory=Counter)
    refusals: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, key: str, amount: int = 1) -> None:
        """Thread-safe increment of ``pushed``/``already_pushed``/``refused`` or a named counter."""
        with self._lock:
            if key in ("pushed", "already_pushed", "refused"):
                setattr(self, key, getattr(self, key) + amount)
            else:
                self.counts[key] += amount

    def as_dict(self) -> dict[str, Any]:
        return {"received": self.received, "pushed": self.pushed, "already_pushed": self.already_pushed,
                "refused": self.refused, **dict(sorted(self.counts.items()))}


def refuse_rows(ledger, settings: LoadSettings, result: LoadResult, rows: pd.DataFrame, entity: str,
                id_column: str, reason: str, *, weight: int | None = None) -> None:
    """Record rows Pipedrive refused, with its message, in the ledger and the result.

    ``weight``: how many extracted records these rows stand for (a digest row stands for its events).
    """
    log.warning("%d %s row(s) refused: %s", len(rows), entity, reason)
    records = [{"dag_id": settings.dag_id, "run_id": settings.run_id, "entity": entity,
                "record_id": str(row[id_column]), "use_id": row.get("use_id"), "reason": reason[:1000],
                "record": json.dumps({k: row.get(k) for k in ("email", "subject", "title", "org_name")
                                      if k in row}, default=str)}
               for row in rows.to_dict("records")]
    ledger.record_rejections(records)
    result.count("refused", len(rows) if weight is None else weight)
    with result._lock:
        result.refusals.extend({"record_id": r["record_id"], "reason": reason} for r in records)


_STALE_RE = re.compile(r"\b(Person|Organization|Deal) with id (\d+) (?:not found|does not exist)", re.I)


def stale_reference(detail: str) -> tuple[str, int] | None:
    """``("person", 12)`` when Pipedrive says a referenced record is gone (deleted or merged)."""
    match = _STALE_RE.search(detail or "")
    return (match.group(1).lower(), int(match.group(2))) if match else None
