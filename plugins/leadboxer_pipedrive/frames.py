"""Raw LeadBoxer records → pandas frames with our column names. Pure: no Airflow, no HTTP.

LeadBoxer sends most values as strings, timestamps as epoch milliseconds (sometimes as numbers,
strings, or seconds), and omits unknown fields. These functions never raise on such input: what cannot
be parsed becomes missing, and validation later sets the row aside with its reason.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

# LeadBoxer lead field -> our column.
LEAD_FIELDS = {
    "use_id": "use_id",
    "email": "email_raw",
    "firstName": "first_name",
    "lastName": "last_name",
    "fullName": "full_name",
    "title": "job_title",
    "phoneNumber": "phone",
    "organizationName": "org_name",
    "organizationDomain": "org_domain",
    "organizationCity": "org_city",
    "organizationCountry": "org_country",
    "organizationCountryCode": "org_country_code",
    "organizationIndustryName": "org_industry",
    "organizationLinkedInUrl": "org_linkedin",
    "esScore": "lead_score",
    "leadcard_url": "leadcard_url",
    "first_channel": "first_channel",
    "last_channel": "last_channel",
    "total_number_visits": "visits",
    "last_country_name": "country",
}

# LeadBoxer event field -> our column.
EVENT_FIELDS = {
    "event_id": "event_id",
    "use_id": "event_use_id",
    "session_id": "session_id",
    "eventUnixTimestamp": "event_time_raw",
    "event_type": "event_type",
    "title": "title",
    "original_url": "url",
    "referrer": "referrer",
    "utm_source": "utm_source",
    "utm_medium": "utm_medium",
    "utm_campaign": "utm_campaign",
    "utm_term": "utm_term",
    "utm_content": "utm_content",
    "campaign": "campaign",
}

LEAD_COLUMNS = [*LEAD_FIELDS.values(), "email", "segment_ids", "in_segment"]
EVENT_COLUMNS = [*(c for c in EVENT_FIELDS.values() if c != "event_use_id"), "event_time_ms",
                 "session_channel", "dataset_id", *(c for c in LEAD_COLUMNS if c != "segment_ids")]

# Below this an epoch value is taken to be in seconds (1e11 ms is 1973; 1e11 s is year 5138).
_SECONDS_CUTOFF = 100_000_000_000


def text_column(values: pd.Series) -> pd.Series:
    """Any values → nullable strings; containers and blanks become missing."""
    series = values.astype("object").where(values.notna(), None)
    series = series.map(lambda v: None if isinstance(v, (dict, list, tuple, set)) else v)
    out = series.astype("string").str.strip()
    return out.mask(out == "")


def parse_epoch_ms(values: pd.Series) -> pd.Series:
    """Epoch milliseconds (``Int64``) from numbers, numeric strings, seconds or ISO-8601 strings."""
    as_text = text_column(values)
    numeric = pd.to_numeric(as_text, errors="coerce")
    numeric = numeric.where(numeric.abs() >= _SECONDS_CUTOFF, numeric * 1000)
    missing = numeric.isna() & as_text.notna()
    if missing.any():
        parsed = pd.to_datetime(as_text[missing], errors="coerce", utc=True, format="ISO8601")
        numeric.loc[missing] = (parsed - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(milliseconds=1)
    numeric = numeric.where(numeric.isna() | (numeric > 0))
    return numeric.round().astype("Int64")


def normalise_email(values: pd.Series) -> pd.Series:
    """Trimmed, lower-cased email addresses (validation decides whether they are well formed)."""
    return text_column(values).str.lower()


def leads_frame(leads: list[dict[str, Any]], segment_id: int | str | None) -> pd.DataFrame:
    """One row per lead, our columns, with ``in_segment`` saying whether LeadBoxer lists the segment."""
    raw = pd.DataFrame.from_records(leads) if leads else pd.DataFrame()
    frame = pd.DataFrame(index=raw.index)
    for source, column in LEAD_FIELDS.items():
        frame[column] = text_column(raw[source]) if source in raw else pd.Series(pd.NA, index=raw.index,
                                                                                  dtype="string")
    frame["email"] = normalise_email(frame["email_raw"])
    segments = raw["segments"] if "segments" in raw else pd.Series([None] * len(raw), index=raw.index)
    frame["segment_ids"] = segments.map(_segment_list)
    wanted = str(segment_id) if segment_id not in (None, "") else None
    frame["in_segment"] = frame["segment_ids"].map(lambda ids: wanted is None or wanted in ids).astype(bool)
    frame = frame[frame["use_id"].notna()].drop_duplicates("use_id", keep="first")
    return frame.reset_index(drop=True)[LEAD_COLUMNS]


def events_frame(events: list[dict[str, Any]], leads: pd.DataFrame, dataset_id: str) -> pd.DataFrame:
    """One row per event, joined to its lead's facts. Events keep their raw order."""
    raw = pd.DataFrame.from_records(events) if events else pd.DataFrame()
    frame = pd.DataFrame(index=raw.index)
    for source, column in EVENT_FIELDS.items():
        frame[column] = text_column(raw[source]) if source in raw else pd.Series(pd.NA, index=raw.index,
                                                                                  dtype="string")
    frame["session_channel"] = (text_column(raw["_session_channel"]) if "_session_channel" in raw
                                else pd.Series(pd.NA, index=raw.index, dtype="string"))
    # The lead an event belongs to is the lead it was fetched for (``_lead_id``), else its own use_id.
    lead_ids = text_column(raw["_lead_id"]) if "_lead_id" in raw else frame["event_use_id"]
    frame["use_id"] = lead_ids.fillna(frame["event_use_id"])
    frame["event_time_ms"] = parse_epoch_ms(frame["event_time_raw"])
    frame["dataset_id"] = dataset_id
    lead_facts = leads.drop(columns=["segment_ids"])
    merged = frame.drop(columns=["event_use_id"]).merge(lead_facts, on="use_id", how="left")
    merged["in_segment"] = merged["in_segment"].fillna(False).astype(bool)
    return merged[EVENT_COLUMNS]


def _segment_list(value: Any) -> tuple[str, ...]:
    if isinstance(value, (list, tuple, set)):
        return tuple(str(v).strip() for v in value)
    if isinstance(value, (str, int)) and str(value).strip():
        return tuple(part.strip() for part in str(value).split(","))
    return ()
