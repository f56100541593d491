"""What every loader shares: its settings, its result, and how it records refused rows."""

from __future__ import annotations

import json
import logging
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


@dataclass
class LoadResult:
    received: int = 0
    pushed: int = 0
    already_pushed: int = 0
    refused: int = 0
    counts: Counter = field(default_factory=Counter)
    refusals: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"received": self.received, "pushed": self.pushed, "already_pushed": self.already_pushed,
                "refused": self.refused, **dict(sorted(self.counts.items()))}


def refuse_rows(ledger, settings: LoadSettings, result: LoadResult, rows: pd.DataFrame, entity: str,
                id_column: str, reason: str) -> None:
    """Record rows Pipedrive refused, with its message, in the ledger and the result."""
    log.warning("%d %s row(s) refused: %s", len(rows), entity, reason)
    records = [{"dag_id": settings.dag_id, "run_id": settings.run_id, "entity": entity,
                "record_id": str(row[id_column]), "use_id": row.get("use_id"), "reason": reason[:1000],
                "record": json.dumps({k: row.get(k) for k in ("email", "subject", "title", "org_name")
                                      if k in row}, default=str)}
               for row in rows.to_dict("records")]
    ledger.record_rejections(records)
    result.refused += len(rows)
    result.refusals.extend({"record_id": r["record_id"], "reason": reason} for r in records)
