"""The leads sync's whole-segment runs: when one is due, and how far the segment is in Pipedrive.

An hourly run pushes the leads active in its hour. A whole-segment run pushes every member of the
segment as LeadBoxer lists it now, whether active or not: on the first run of a dataset and segment, on
demand (``scope="segment"``), and every ``segment_sync_hours`` (daily by default, 0: never on its own) to
catch members who joined without activity. A large segment's first sync may take several runs within
the token budget; until it is complete, every run carries on with it (the members already pushed cost
nothing: the ledger knows them). Progress is kept in the ledger (a fact per dataset and segment).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

SCOPES = ("auto", "hour", "segment")
DEFAULT_SEGMENT_SYNC_HOURS = 24.0


@dataclass(frozen=True)
class SegmentProgress:
    """After a whole-segment run: the segment's members, how many are in Pipedrive, how many are left
    (and what they would cost), and when the segment was last complete (None: not yet)."""

    members: int
    in_pipedrive: int
    left: int
    left_tokens: int
    updated_at: str
    completed_at: str | None

    def describe(self) -> str:
        if self.left:
            return (f"{self.in_pipedrive} of {self.members} members in Pipedrive; {self.left} left for the next "
                    f"runs (about {self.left_tokens} tokens)")
        return f"{self.in_pipedrive} of {self.members} members in Pipedrive; complete"


def _fact(dataset_id: str, segment_id: Any) -> str:
    return f"segment_sync:{dataset_id}:{segment_id}"


def progress(ledger, dataset_id: str, segment_id: Any) -> SegmentProgress | None:
    """The segment's progress as the last whole-segment run left it (None: never run)."""
    remembered = ledger.fresh_fact(_fact(dataset_id, segment_id), float("inf"))
    return SegmentProgress(**json.loads(remembered)) if remembered else None


def record_progress(ledger, dataset_id: str, segment_id: Any, *, members: int, in_pipedrive: int, left: int,
                    left_tokens: int, now: datetime | None = None) -> SegmentProgress:
    """Remember a whole-segment run's outcome: complete when nothing was left for later runs."""
    now = now or datetime.now(timezone.utc)
    before = progress(ledger, dataset_id, segment_id)
    completed_at = now.isoformat(timespec="seconds") if not left else (before.completed_at if before else None)
    state = SegmentProgress(members, in_pipedrive, left, left_tokens, now.isoformat(timespec="seconds"), completed_at)
    ledger.remember_fact(_fact(dataset_id, segment_id), json.dumps(asdict(state)))
    return state


def scope_of_run(ledger, dataset_id: str, segment_id: Any, requested: str = "auto",
                 every_hours: float = DEFAULT_SEGMENT_SYNC_HOURS, now: datetime | None = None) -> tuple[str, str]:
    """``("segment" | "hour", why)``: what a leads sync run reads. ``requested``: ``hour`` and ``segment``
    are obeyed; ``auto`` reads the whole segment on the first run, while an earlier whole-segment sync is
    unfinished, and when the last complete one is ``every_hours`` old (0: only those two)."""
    if requested not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}, not {requested!r}")
    if requested != "auto":
        return requested, f"scope={requested} was asked for"
    state = progress(ledger, dataset_id, segment_id)
    if state is None:
        return "segment", "first run of this dataset and segment"
    if state.completed_at is None or state.left:
        return "segment", f"the whole-segment sync is unfinished ({state.left} members left)"
    now = now or datetime.now(timezone.utc)
    if every_hours and now - datetime.fromisoformat(state.completed_at) >= timedelta(hours=every_hours):
        return "segment", f"the last whole-segment sync was {every_hours:g} hours ago or more"
    return "hour", "the leads active in the hour"
