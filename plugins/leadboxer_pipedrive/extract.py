"""Reads one data interval of a segment from LeadBoxer: its leads, and the events inside the window.

LeadBoxer's API is N+1 (the lead list, then each lead's sessions, then each session's events), so what
an extract costs is the time it waits for answers. It reads:

* the segment's lead list, "last seen since the window's day" (LeadBoxer's time filter is
  day-granular), most recently seen first, up to the first lead last seen before the window: every
  lead after it was last seen earlier still. That order is checked on each page as it comes; a list not
  in it is read to its end;
* the sessions of each lead that can have been active in the window (last seen since it started, not
  first seen after it ended), and the events of the sessions that can overlap it. Events are kept when
  their time is inside the window or cannot be read (validation then sets those aside with a reason).

Leads are read ``hook.max_concurrency`` at a time and framed in the order of the list: the frames are
the same whatever the concurrency. With a ``ReadCache`` (kept in the ledger), reads that can no longer
change are kept and not repeated: a lead's sessions once it had been quiet for longer than LeadBoxer's
session timeout when read (keyed by its last-seen time: a lead seen again is read again), and a
session's events once the session had ended by then. A backfill reads each session once.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import pandas as pd

from leadboxer_pipedrive.frames import (
    LEAD_FIELDS,
    EventRows,
    RawEvents,
    as_text,
    epoch_ms,
    leads_frame,
    raw_events,
    text_column,
)

# LeadBoxer ends a session after this long without events (its docs say 10 or 30 minutes: the longer).
SESSION_TIMEOUT_MS = 30 * 60_000
# The fields of a listed lead that are framed (a lead has dozens).
_LEAD_RECORD_FIELDS = (*LEAD_FIELDS, "segments")
# Leads read ahead of the one being framed, per concurrent read: enough to keep every reader busy
# behind a slow lead, few enough that a busy hour is not held in memory twice.
_AHEAD_PER_READER = 4


@dataclass
class WindowExtract:
    leads: pd.DataFrame  # ``frames.leads_frame`` of the window's leads, in the order listed
    events: pd.DataFrame  # ``frames.EVENT_ROW_COLUMNS``, one row per event, in the order read
    sessions_read: int  # sessions listed for the leads read (from LeadBoxer or the ReadCache)


class ReadCache:
    """LeadBoxer reads kept in the ledger (table ``lbpd_leadboxer_read``) for ``hours`` after they were
    made: older ones are ignored, and deleted by ``flush()``. Thread-safe; new reads are written in
    batches, the last of them by ``flush()``."""

    batch = 500

    def __init__(self, ledger: Any, dataset_id: str, hours: float = 24) -> None:
        self.ledger = ledger
        self.dataset_id = dataset_id
        self.hits = 0
        self._since = (datetime.now(timezone.utc) - timedelta(hours=hours)).isoformat(timespec="seconds")
        self._new: dict[str, str] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> list[Any] | None:
        body = self.ledger.leadboxer_reads(self.dataset_id, [key], self._since).get(key)
        if body is None:
            return None
        with self._lock:
            self.hits += 1
        return json.loads(body)

    def put(self, key: str, records: list[Any]) -> None:
        body = json.dumps(records)
        with self._lock:
            self._new[key] = body
            full = len(self._new) >= self.batch
        if full:
            self.flush(forget_expired=False)

    def flush(self, *, forget_expired: bool = True) -> None:
        with self._lock:
            new, self._new = self._new, {}
        if new:
            self.ledger.remember_leadboxer_reads(self.dataset_id, new)
        if forget_expired:
            self.ledger.forget_leadboxer_reads(self.dataset_id, self._since)


@dataclass
class _Lead:
    """A lead as listed: the fields framed; its id as the frames read it (None: no usable id) and as
    LeadBoxer is asked for its sessions (as sent); when it was first seen and last seen
    (``eventEsTimestamp``, as LeadBoxer's time filter reads it, else ``lastEvent``) and its
    ``lastEvent``, which the list is sorted by (epoch ms; None when unreadable)."""

    record: dict[str, Any]
    lead_id: str | None
    asked_as: str
    first_seen_ms: int | None
    last_seen_ms: int | None
    sorted_by_ms: int | None

    @classmethod
    def of_page(cls, records: list[Any]) -> list[_Lead]:
        records = [record if isinstance(record, dict) else {} for record in records]  # not an object: no id
        ids = text_column([record.get("use_id") for record in records])
        leads = []
        for record, lead_id in zip(records, ids):
            last_event = epoch_ms(record.get("lastEvent"))
            seen = record.get("eventEsTimestamp")
            raw_id = record.get("use_id")
            leads.append(cls(record=dict(zip(_LEAD_RECORD_FIELDS, map(record.get, _LEAD_RECORD_FIELDS))),
                             lead_id=None if lead_id is pd.NA else lead_id,
                             asked_as=as_text(raw_id) if isinstance(raw_id, str) else str(raw_id),
                             first_seen_ms=epoch_ms(record.get("first_session_unix_timestamp")),
                             last_seen_ms=last_event if seen is None else epoch_ms(seen), sorted_by_ms=last_event))
        return leads


@dataclass
class _LeadRead:
    sessions: int = 0  # sessions listed
    events: list[tuple[Any, RawEvents]] = field(default_factory=list)  # (session channel, its events kept)
    active: bool = False


def fetch_window(hook, dataset_id: str, segment_id: int | str | None, start: datetime, end: datetime,
                 max_leads: int | None = None, with_events: bool = True,
                 read_cache: ReadCache | None = None) -> WindowExtract:
    """``hook`` is a LeadBoxerHook; ``[start, end)`` the data interval. Returns the window's leads (as
    ``frames.leads_frame`` frames them, ``in_segment`` read against ``segment_id``) and their events
    (``frames.events_frame`` joins them to the leads). ``max_leads``: stop after that many active leads.

    With ``with_events`` False (the leads sync) a lead counts as active in the window when it was last
    seen inside it, or else when one of its sessions can overlap it; no events are read.
    """
    window = (int(start.timestamp() * 1000), int(end.timestamp() * 1000))
    reader = _LeadReader(hook, dataset_id, window, with_events, read_cache)
    leads: list[dict[str, Any]] = []
    events = EventRows()
    sessions_read = active_leads = 0
    listed = _candidates(hook.lead_pages_seen_since(dataset_id, segment_id, start), window)
    # With max_leads, no more leads are read ahead than could still be wanted (read when called: the
    # count goes up as leads are framed).
    wanted = (lambda: max_leads - active_leads) if max_leads else (lambda: None)
    try:
        with closing(_in_order(listed, reader.read, hook.max_concurrency, wanted)) as reads:
            for lead, read in reads:
                sessions_read += read.sessions
                if lead.lead_id is None:
                    leads.append(lead.record)  # kept so that validation reports it; it has no events to read
                elif read.active:
                    leads.append(lead.record)
                    for channel, kept in read.events:
                        events.add(kept, lead.lead_id, channel)
                    active_leads += 1
                    if max_leads and active_leads >= max_leads:
                        break
    finally:  # what was read whole is kept, even when a later read failed
        if read_cache is not None:
            read_cache.flush()
    return WindowExtract(leads=leads_frame(leads, segment_id), events=events.frame(), sessions_read=sessions_read)


def fetch_segment(hook, dataset_id: str, segment_id: int | str | None, max_leads: int | None = None) -> WindowExtract:
    """Every lead of the segment as LeadBoxer lists it now, most recently seen first (``max_leads``: the
    first that many): the leads sync's whole-segment run. One paged list; no sessions or events are read."""
    leads: list[dict[str, Any]] = []
    for page in hook.segment_lead_pages(dataset_id, segment_id):
        leads.extend(lead.record for lead in _Lead.of_page(page))
        if max_leads and len(leads) >= max_leads:
            leads = leads[:max_leads]
            break
    return WindowExtract(leads=leads_frame(leads, segment_id), events=EventRows().frame(), sessions_read=0)


def _candidates(pages: Iterable[list[Any]], window: tuple[int, int]) -> Iterator[_Lead]:
    """The listed leads that can have been active in the window, in order (and those without an id seen
    since it started: validation reports them). The list is read only as far as it can hold such
    leads: up to the first lead last seen before the window, as long as every lead of every page so far
    came newest first by ``lastEvent`` (the list's sort key) and was last seen when its ``lastEvent``
    says."""
    start_ms, end_ms = window
    newest_first, previous = True, math.inf
    for page in pages:
        leads = _Lead.of_page(page)
        for lead in leads:  # the whole page is checked before any of it is taken for the end of the list
            newest_first = (newest_first and lead.sorted_by_ms is not None and lead.sorted_by_ms <= previous
                            and lead.last_seen_ms == lead.sorted_by_ms)
            previous = lead.sorted_by_ms if newest_first else previous
        for lead in leads:
            if lead.last_seen_ms is not None and lead.last_seen_ms < start_ms:
                if newest_first:
                    return  # every lead after it was last seen earlier still: no further page is asked for
                continue
            if lead.lead_id is not None and lead.first_seen_ms is not None and lead.first_seen_ms >= end_ms:
                continue
            yield lead


def _in_order(leads: Iterable[_Lead], read: Callable[[_Lead], _LeadRead], concurrency: int,
              wanted: Callable[[], int | None]) -> Iterator[tuple[_Lead, _LeadRead]]:
    """Each lead with what ``read`` read of it, in order; ``concurrency`` leads are read at once, and at
    most ``wanted()`` (None: no limit) are read ahead of the one handed over. One at a time, they are
    read in the calling thread."""
    if concurrency == 1:
        for lead in leads:
            yield lead, read(lead)
        return
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="leadboxer-read") as pool:
        pending: deque = deque()
        try:
            for lead in leads:
                pending.append((lead, pool.submit(read, lead)))
                while len(pending) >= min(_AHEAD_PER_READER * concurrency, wanted() or math.inf):
                    lead, reading = pending.popleft()
                    yield lead, reading.result()
            while pending:
                lead, reading = pending.popleft()
                yield lead, reading.result()
        finally:  # stopped early or failed: what has not started is not read
            for _, reading in pending:
                reading.cancel()


class _LeadReader:
    """Reads one lead's sessions and their events (from the hook, or the ReadCache), on a worker thread."""

    def __init__(self, hook, dataset_id: str, window: tuple[int, int], with_events: bool,
                 cache: ReadCache | None) -> None:
        self.hook = hook
        self.dataset_id = dataset_id
        self.window = window
        self.with_events = with_events
        self.cache = cache

    def read(self, lead: _Lead) -> _LeadRead:
        if lead.lead_id is None:
            return _LeadRead()
        if not self.with_events and lead.last_seen_ms is not None and lead.last_seen_ms < self.window[1]:
            return _LeadRead(active=True)  # last seen inside the window: no need to read sessions
        sessions = self._records(f"sessions/{lead.asked_as}/{lead.last_seen_ms}", lead.last_seen_ms,
                                 self.hook.iter_sessions, lead.asked_as)
        read = _LeadRead(sessions=len(sessions))
        for session in sessions:
            if not isinstance(session, dict) or not self._may_overlap(session):
                continue
            if not self.with_events:
                read.active = True
                break
            session_id, ended_ms = as_text(session.get("session_id")), _ended_ms(session)
            if not session_id:
                continue  # no id to read its events with
            # Keyed by when it ended too: a session that grew since is read again.
            records = self._records(f"events/{session_id}/{ended_ms}", ended_ms, self.hook.iter_events, session_id)
            kept = raw_events(records, self.window)
            if len(kept):
                read.events.append((session.get("channel"), kept))
                read.active = True
        return read

    def _may_overlap(self, session: dict[str, Any]) -> bool:
        """False only for a session that started after the window or ended before it."""
        start_ms, end_ms = self.window
        session_start = epoch_ms(session.get("session_unix_timestamp"))
        if session_start is None:
            return True
        duration = _seconds(session.get("duration"))
        return session_start < end_ms and (duration is None or session_start + (duration + 1) * 1000 >= start_ms)

    def _records(self, key: str, quiet_since_ms: int | None, read: Callable[[str, str], Iterable[Any]],
                 record_id: str) -> list[Any]:
        """``read(dataset_id, record_id)``, or the ReadCache's copy of it. Only what can no longer change
        is kept: what had been quiet for longer than the session timeout when it was read."""
        keep = (self.cache is not None and quiet_since_ms is not None
                and quiet_since_ms + SESSION_TIMEOUT_MS < time.time() * 1000)
        if keep:
            cached = self.cache.get(key)
            if cached is not None:
                return cached
        records = list(read(self.dataset_id, record_id))
        if keep:
            self.cache.put(key, records)
        return records


def _ended_ms(session: dict[str, Any]) -> int | None:
    """When a session's last event was (its start plus its duration); None when unreadable."""
    started, duration = epoch_ms(session.get("session_unix_timestamp")), _seconds(session.get("duration"))
    return None if started is None or duration is None else started + int(duration * 1000)


def _seconds(value: Any) -> float | None:
    """A session's duration in seconds; None when it is not a finite number."""
    if isinstance(value, bool):
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if math.isfinite(seconds) else None
