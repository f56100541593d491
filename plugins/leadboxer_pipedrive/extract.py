"""Reads one data interval of a segment from LeadBoxer: its leads, and the events inside the window.

LeadBoxer's lead list filters by *last seen* day, so the window's leads are "seen since the window's
day"; sessions that cannot overlap the window are skipped; events are kept when their timestamp is
inside the window or cannot be read (validation then sets those aside with a reason, so nothing
vanishes unexplained).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from leadboxer_pipedrive.frames import parse_epoch_ms


@dataclass
class WindowExtract:
    leads: list[dict[str, Any]]
    events: list[dict[str, Any]]
    sessions_read: int


def _ms(value: Any) -> int | None:
    parsed = parse_epoch_ms(pd.Series([value], dtype="object")).iloc[0]
    return None if pd.isna(parsed) else int(parsed)


def fetch_window(hook, dataset_id: str, segment_id: int | str | None, start: datetime, end: datetime,
                 max_leads: int | None = None, with_events: bool = True) -> WindowExtract:
    """``hook`` is a LeadBoxerHook; ``[start, end)`` the data interval.

    With ``with_events`` False (the leads sync) a lead counts as active in the window when it was last
    seen inside it, or else when one of its sessions overlaps it; no events are read.
    """
    start_ms, end_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    leads: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    sessions_read = 0
    active_leads = 0  # leads with an id counted against max_leads
    for lead in hook.iter_leads_seen_since(dataset_id, segment_id, start):
        # "Last seen" is eventEsTimestamp (as LeadBoxer's time filter reads it), else lastEvent.
        last_seen = _ms(lead.get("eventEsTimestamp", lead.get("lastEvent")))
        if last_seen is not None and last_seen < start_ms:
            continue
        lead_id = lead.get("use_id")
        if not lead_id:
            leads.append(lead)  # kept so validation can report it; it has no events to read
            continue
        if not with_events and last_seen is not None and last_seen < end_ms:
            leads.append(lead)  # last seen inside the window: active, no need to read sessions
            active_leads += 1
            if max_leads and active_leads >= max_leads:
                break
            continue
        lead_events = []
        active = False
        for session in hook.iter_sessions(dataset_id, str(lead_id)):
            sessions_read += 1
            if not isinstance(session, dict):
                continue  # not a session: it has no id to read events with
            session_start = _ms(session.get("session_unix_timestamp"))
            duration = pd.to_numeric(pd.Series([session.get("duration")]), errors="coerce").iloc[0]
            if session_start is not None:
                if session_start >= end_ms:
                    continue
                if not pd.isna(duration) and session_start + (float(duration) + 1) * 1000 < start_ms:
                    continue
            if not with_events:
                active = True
                break
            session_events = list(hook.iter_events(dataset_id, str(session.get("session_id"))))
            # One vectorised parse per session, not one per event.
            times = parse_epoch_ms(pd.Series([e.get("eventUnixTimestamp") if isinstance(e, dict) else None
                                              for e in session_events], dtype="object"))
            for event, event_ms in zip(session_events, times):
                if not isinstance(event, dict):
                    # Kept (without an id) so validation rejects it with a reason: nothing vanishes.
                    lead_events.append({"_lead_id": lead_id, "_raw": repr(event)[:200]})
                    continue
                if not pd.isna(event_ms) and not (start_ms <= event_ms < end_ms):
                    continue
                lead_events.append({**event, "_lead_id": lead_id,
                                    "_session_channel": session.get("channel")})
        if lead_events or active:
            leads.append(lead)
            events.extend(lead_events)
            active_leads += 1
            if max_leads and active_leads >= max_leads:
                break
    return WindowExtract(leads=leads, events=events, sessions_read=sessions_read)
