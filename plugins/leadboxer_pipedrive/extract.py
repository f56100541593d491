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

from leadboxer_pipedrive.frames import parse_epoch_ms

import pandas as pd


@dataclass
class WindowExtract:
    leads: list[dict[str, Any]]
    events: list[dict[str, Any]]
    sessions_read: int


def _ms(value: Any) -> int | None:
    parsed = parse_epoch_ms(pd.Series([value], dtype="object")).iloc[0]
    return None if pd.isna(parsed) else int(parsed)


def fetch_window(hook, dataset_id: str, segment_id: int | str | None, start: datetime, end: datetime,
                 max_leads: int | None = None) -> WindowExtract:
    """``hook`` is a LeadBoxerHook; ``[start, end)`` the data interval."""
    start_ms, end_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    leads: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    sessions_read = 0
    for lead in hook.iter_leads_seen_since(dataset_id, segment_id, start):
        last_seen = _ms(lead.get("lastEvent", lead.get("eventEsTimestamp")))
        if last_seen is not None and last_seen < start_ms:
            continue
        lead_id = lead.get("use_id")
        if not lead_id:
            leads.append(lead)  # kept so validation can report it; it has no events to read
            continue
        lead_events = []
        for session in hook.iter_sessions(dataset_id, str(lead_id)):
            sessions_read += 1
            session_start = _ms(session.get("session_unix_timestamp"))
            duration = pd.to_numeric(pd.Series([session.get("duration")]), errors="coerce").iloc[0]
            if session_start is not None:
                if session_start >= end_ms:
                    continue
                if not pd.isna(duration) and session_start + (float(duration) + 1) * 1000 < start_ms:
                    continue
            for event in hook.iter_events(dataset_id, str(session.get("session_id"))):
                event_ms = _ms(event.get("eventUnixTimestamp"))
                if event_ms is not None and not (start_ms <= event_ms < end_ms):
                    continue
                lead_events.append({**event, "_lead_id": lead_id,
                                    "_session_channel": session.get("channel")})
        if lead_events:
            leads.append(lead)
            events.extend(lead_events)
            if max_leads and len(leads) >= max_leads:
                break
    return WindowExtract(leads=leads, events=events, sessions_read=sessions_read)
