"""Activity frames for loader tests, built by the real frames/transforms from LeadBoxer records."""

from __future__ import annotations

from leadboxer_pipedrive.frames import events_frame, leads_frame
from leadboxer_pipedrive.transforms import activity_payloads

START = 1_795_150_800_000  # 2026-11-20T05:00Z


def activity_frame(leads: list[dict], events_per_lead: int = 2, prefix: str = "e"):
    """``leads``: LeadBoxer lead records (use_id, email, organizationName...); events are generated."""
    records = [{"segments": [1], **lead} for lead in leads]
    events = [{"event_id": f"{prefix}-{lead['use_id']}-{n}", "_lead_id": lead["use_id"],
               "eventUnixTimestamp": str(START + 60_000 * (n + 1)), "event_type": "pageview",
               "title": f"Page {n}", "original_url": f"https://example.com/p{n}"}
              for lead in records for n in range(events_per_lead)]
    frame = leads_frame(records, 1)
    return activity_payloads(events_frame(events, frame, "ds"), "task")
