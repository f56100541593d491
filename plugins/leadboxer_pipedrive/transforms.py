"""Valid LeadBoxer events → Pipedrive activity payload columns. Pure and vectorised: no Airflow.

One output row per event. Columns hold what the loader sends: the person and organization facts used
to find or create them, and the activity fields (subject, type, due date/time in UTC, done, HTML note).
"""

from __future__ import annotations

import pandas as pd

# Pipedrive rejects longer subjects, names and titles (sandbox assumption: 255 characters).
MAX_TEXT = 255
# Notes are HTML; keep each value readable and the whole note well under Pipedrive's limits.
MAX_NOTE_VALUE = 1000

EVENT_KIND_LABELS = {
    "pageview": "Page view",
    "email_open": "Email open",
    "email_click": "Email click",
    "form_submit": "Form submit",
    "download": "Download",
    "login": "Login",
    "referrer": "Referral",
    "exit": "Exit link",
}

ACTIVITY_COLUMNS = [
    "event_id", "use_id", "dataset_id", "event_time_ms", "email", "person_name", "phone",
    "org_key", "org_name", "org_domain", "org_address", "org_linkedin",
    "subject", "type", "due_date", "due_time", "done", "note",
]


def html_escape(values: pd.Series) -> pd.Series:
    """Vectorised ``html.escape(value, quote=True)``."""
    return (values.str.replace("&", "&amp;", regex=False).str.replace("<", "&lt;", regex=False)
            .str.replace(">", "&gt;", regex=False).str.replace('"', "&quot;", regex=False)
            .str.replace("'", "&#x27;", regex=False))


def clip(values: pd.Series, limit: int = MAX_TEXT) -> pd.Series:
    """Cut strings to ``limit`` characters, marking the cut with an ellipsis."""
    too_long = values.str.len() > limit
    return values.where(~too_long, values.str.slice(0, limit - 1) + "…")


def _strip_control(values: pd.Series) -> pd.Series:
    return values.str.replace(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", "", regex=True)


def event_kind_label(event_type: pd.Series) -> pd.Series:
    raw = event_type.fillna("event").str.lower()
    mapped = raw.map(EVENT_KIND_LABELS)
    fallback = raw.str.replace("_", " ", regex=False).str.capitalize()
    return mapped.fillna(fallback).astype("string")


def person_names(frame: pd.DataFrame) -> pd.Series:
    """Full name, else first + last, else the email's local part."""
    first_last = (frame["first_name"].fillna("") + " " + frame["last_name"].fillna("")).str.strip()
    name = frame["full_name"].fillna(first_last.mask(first_last == ""))
    name = name.fillna(frame["email"].str.split("@").str[0])
    return clip(_strip_control(name))


def organization_keys(frame: pd.DataFrame) -> pd.Series:
    """``domain:acme.com`` when LeadBoxer knows the domain, else ``name:acme bv``; missing otherwise."""
    domain = (frame["org_domain"].str.strip().str.lower()
              .str.replace(r"^https?://", "", regex=True).str.replace(r"^www\.", "", regex=True)
              .str.rstrip("/"))
    domain = domain.mask(domain == "")
    name = frame["org_name"].str.strip().str.casefold()
    name = name.mask(name == "")
    by_name = "name:" + name
    key = ("domain:" + domain).fillna(by_name)
    return key.where(frame["org_name"].notna() & (frame["org_name"].str.strip() != ""))


def activity_note(frame: pd.DataFrame) -> pd.Series:
    """The activity's HTML note: page, referrer, UTM values, campaign, lead card, event id."""
    def line(label: str, values: pd.Series) -> pd.Series:
        escaped = html_escape(clip(_strip_control(values), MAX_NOTE_VALUE))
        return ("<p><b>" + label + ":</b> " + escaped + "</p>").fillna("")

    url = frame["url"]
    safe_url = url.where(url.str.match(r"^https?://", na=False))
    page = ('<p><b>Page:</b> <a href="' + html_escape(clip(safe_url, MAX_NOTE_VALUE)) + '">'
            + html_escape(clip(_strip_control(frame["title"].fillna(url)), MAX_NOTE_VALUE)) + "</a></p>")
    page = page.fillna(line("Page", frame["title"].fillna(url)))
    card = frame["leadcard_url"].where(frame["leadcard_url"].str.match(r"^https?://", na=False))
    card_line = ('<p><a href="' + html_escape(card) + '">Open the lead card in LeadBoxer</a></p>').fillna("")
    note = (page
            + line("Referrer", frame["referrer"])
            + line("UTM source", frame["utm_source"])
            + line("UTM medium", frame["utm_medium"])
            + line("UTM campaign", frame["utm_campaign"])
            + line("UTM term", frame["utm_term"])
            + line("UTM content", frame["utm_content"])
            + line("Email campaign", frame["campaign"])
            + card_line
            # The event id doubles as a marker to find this activity again in Pipedrive.
            + "<p><small>LeadBoxer event " + html_escape(frame["event_id"]) + "</small></p>")
    return note


def activity_payloads(valid_events: pd.DataFrame, activity_type: str) -> pd.DataFrame:
    """One activity row per valid event."""
    frame = valid_events.reset_index(drop=True)
    out = pd.DataFrame(index=frame.index)
    for column in ("event_id", "use_id", "dataset_id", "event_time_ms", "email", "phone", "org_domain",
                   "org_linkedin"):
        out[column] = frame[column]
    out["person_name"] = person_names(frame)
    out["org_key"] = organization_keys(frame)
    out["org_name"] = clip(_strip_control(frame["org_name"].str.strip())).where(out["org_key"].notna())
    address = frame["org_city"].fillna("")
    address = (address + ", " + frame["org_country"].fillna("")).str.strip(", ")
    out["org_address"] = address.mask(address == "")
    kind = event_kind_label(frame["event_type"])
    what = frame["title"].fillna(frame["campaign"]).fillna(frame["url"]).fillna("")
    subject = ("LeadBoxer: " + kind + (" – " + _strip_control(what)).where(what != "", ""))
    out["subject"] = clip(subject)
    out["type"] = activity_type
    when = pd.to_datetime(frame["event_time_ms"].astype("int64"), unit="ms", utc=True)
    out["due_date"] = when.dt.strftime("%Y-%m-%d").astype("string")
    out["due_time"] = when.dt.strftime("%H:%M").astype("string")
    out["done"] = True
    out["note"] = activity_note(frame).astype("string")
    return out[ACTIVITY_COLUMNS]
