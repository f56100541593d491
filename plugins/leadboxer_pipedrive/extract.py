"""Reads one data interval of a segment from LeadBoxer: its leads, and the events inside the window.

LeadBoxer's lead list filters by *last seen* day, so the window's leads are "seen since the window's
day"; sessions that cannot overlap the window are skipped; events are kept when their timestamp is
inside the window or cannot be read (validation then sets those aside with a reason, so nothing
vanishes unexplained).

Leads and events are read from the undecoded pages LeadBoxer answers straight into Arrow columns
(``frames.lead_page``, ``frames.EventRows.add_page``) and framed a batch at a time as they are read
(``frames.LeadRows``, ``frames.EventRows``): a busy hour's leads and million events never become Python
dicts (pages Arrow's strict reader refuses are decoded and framed the exact way).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from leadboxer_pipedrive.frames import EventRows, LeadPage, LeadRows, epoch_ms, lead_page


@dataclass
class WindowExtract:
    leads: pd.DataFrame  # ``frames.leads_frame`` of the window's leads, in the order read
    events: pd.DataFrame  # ``frames.EVENT_ROW_COLUMNS``, one row per event in the order read
    sessions_read: int


def _seconds(value: Any) -> float | None:
    """A session's duration in seconds; None when it is not a finite number."""
    if isinstance(value, bool):
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if math.isfinite(seconds) else None


def fetch_window(hook, dataset_id: str, segment_id: int | str | None, start: datetime, end: datetime,
                 max_leads: int | None = None, with_events: bool = True) -> WindowExtract:
    """``hook`` is a LeadBoxerHook; ``[start, end)`` the data interval. Returns the window's leads (as
    ``frames.leads_frame`` frames them, ``in_segment`` read against ``segment_id``) and their events
    (``frames.EventRows``; ``frames.events_frame`` joins them to the leads).

    With ``with_events`` False (the leads sync) a lead counts as active in the window when it was last
    seen inside it, or else when one of its sessions overlaps it; no events are read.
    """
    start_ms, end_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    leads = LeadRows(segment_id)
    events = EventRows(window=(start_ms, end_ms))
    sessions_read = 0
    active_leads = 0  # leads with an id counted against max_leads
    for page, row, lead_id, last_seen in _leads_of(hook.read_lead_pages_seen_since(dataset_id, segment_id, start,
                                                                                     lead_page)):
        if last_seen is not None and last_seen < start_ms:
            continue
        if not lead_id:
            leads.add(page, row)  # kept so validation can report it; it has no events to read
            continue
        if not with_events and last_seen is not None and last_seen < end_ms:
            leads.add(page, row)  # last seen inside the window: active, no need to read sessions
            active_leads += 1
            if max_leads and active_leads >= max_leads:
                break
            continue
        rows_before = events.flush() if max_leads else 0
        active = pages_read = False
        for session in hook.iter_sessions(dataset_id, str(lead_id)):
            sessions_read += 1
            if not isinstance(session, dict):
                continue  # not a session: it has no id to read events with
            session_start = epoch_ms(session.get("session_unix_timestamp"))
            duration = _seconds(session.get("duration"))
            if session_start is not None:
                if session_start >= end_ms:
                    continue
                if duration is not None and session_start + (duration + 1) * 1000 < start_ms:
                    continue
            if not with_events:
                active = True
                break
            # Pages are framed in batches; events outside the window are left out then. Events that are
            # not objects are kept (framed without an id) so validation rejects them with a reason.
            for events_page in hook.iter_event_pages(dataset_id, str(session.get("session_id"))):
                events.add_page(events_page, lead_id, session.get("channel"))
                pages_read = True
        if active:
            leads.add(page, row)
            active_leads += 1
        elif pages_read:
            # The lead stays if any of its events is in the window: known once its pages are framed.
            leads.add(page, row, if_it_has_events=True)
            if max_leads and events.flush() > rows_before:
                active_leads += 1
        if max_leads and active_leads >= max_leads:
            break
    event_rows = events.frame()
    return WindowExtract(leads=leads.frame(event_rows["use_id"]), events=event_rows,
                         sessions_read=sessions_read)


def _leads_of(pages: Iterator[LeadPage]) -> Iterator[tuple[LeadPage, int, Any, int | None]]:
    """Each lead of each page as it comes: its page, its row there, its id as sent and when it was last
    seen (``eventEsTimestamp``, as LeadBoxer's time filter reads it, else ``lastEvent``)."""
    for page in pages:
        for row, (lead_id, last_seen) in enumerate(zip(page.lead_ids, page.last_seen_ms)):
            yield page, row, lead_id, last_seen
