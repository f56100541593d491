"""Raw LeadBoxer records → pandas frames with our column names. Pure: no Airflow, no HTTP.

LeadBoxer sends most values as strings, timestamps as epoch milliseconds (sometimes as numbers,
strings, or seconds), and omits unknown fields. These functions never raise on such input: what cannot
be parsed becomes missing, and validation later sets the row aside with its reason.

Normalisation rules (hostile input is read, never trusted):

* **Text fields** (``text_column``): numbers and booleans become their text (an integral float
  ``42.0`` reads ``42``); objects, lists and ``null`` are missing (nested objects are never flattened
  into text); the value is Unicode-NFC-composed (no compatibility folding: names keep their
  characters); surrounding whitespace *and* invisible format characters (zero-width space/joiners,
  BOM, soft hyphen, bidi controls, Unicode spaces such as NBSP) are trimmed; a value left empty is
  missing. Inner text is left alone here: HTML is escaped and controls removed where a payload is
  built (``transforms``), so the frames keep what LeadBoxer sent.
* **Emails** (``normalise_email``): the text above, then Unicode **NFKC** (full-width ``＠``/``．``/
  letters fold to ASCII), invisible format characters removed *anywhere* (``ja\\u200bne@x.io`` is
  ``jane@x.io``), trimmed, **lower-cased** (``str.lower``, not ``casefold``: ``ß`` stays, as IDNA2008
  wants). Internationalised domains stay in Unicode (``jörg@bücher.de``), not converted to punycode.
  Whether the result is well formed is validation's business (``validation.EMAIL_REGEX``): quoted
  local parts, a trailing dot, ``mailto:``, spaces, control characters, over-long addresses are
  refused there, never "repaired" here.
* **Timestamps** (``parse_epoch_ms``): epoch ms or seconds (a number below 1e11 is seconds) as
  numbers, numeric strings or floats (rounded to the millisecond), or ISO-8601 strings (with an offset,
  or naive = UTC). Anything else (``null``, garbage, booleans, objects, ``NaN``, infinities, zero,
  negative numbers) and anything outside the plausible range [2000-01-01, 2100-01-01) UTC (micro- or
  nanoseconds, overflowing numbers) is missing, so validation rejects the event with a reason instead
  of it being mistaken for another hour's event and skipped.
* **Segment ids**: ``14118``, ``"14118"``, ``" 14118 "`` and ``14118.0`` are the same segment (as
  LeadBoxer's own ``segmentId`` filter reads them); a comma-separated string is a list.
* **Ids** (``use_id``, ``event_id``): text as above, so ``424242`` and ``"424242"`` are the same id.
  Records are read with ``dtype=object``: a numeric id column with gaps is never up-cast to floats
  (which would turn ``42`` into ``"42.0"``).
"""

from __future__ import annotations

import math
import unicodedata
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

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
# Plausible event times: [2000-01-01, 2100-01-01) UTC. Outside: unreadable (validation rejects it).
MIN_PLAUSIBLE_MS = 946_684_800_000
MAX_PLAUSIBLE_MS = 4_102_444_800_000

# Invisible format characters: soft hyphen, Mongolian vowel separator, zero-width space/non-joiner/
# joiner, LRM/RLM, line/paragraph separators, bidi embeddings/overrides/isolates, word joiner and
# invisible operators, BOM.
_INVISIBLE = ("\u00ad\u180e" + "".join(map(chr, range(0x200B, 0x2010))) + "".join(map(chr, range(0x2028, 0x202F)))
              + "".join(map(chr, range(0x2060, 0x2070))) + "\ufeff")
# Everything ``str.isspace`` calls whitespace (tabs, newlines, NBSP, ideographic space...), and the above.
_WHITESPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B)))
               + "\u2028\u2029\u202f\u205f\u3000")
_TRIM = _WHITESPACE + _INVISIBLE
_DELETE_INVISIBLE = str.maketrans("", "", _INVISIBLE)


def _scalar_text(value: Any) -> str | None:
    """One raw value as text: containers and missing values are None, integral floats read as ints."""
    if value is None or isinstance(value, (dict, list, tuple, set)):
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return str(int(value)) if value.is_integer() and abs(value) < 1e18 else repr(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _clean_text(value: Any) -> str | None:
    text = _scalar_text(value)
    if text is None:
        return None
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    return text.strip(_TRIM) or None


def _clean_email(value: Any) -> str | None:
    text = _scalar_text(value)
    if text is None:
        return None
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text).translate(_DELETE_INVISIBLE)
    return text.strip(_TRIM).lower() or None


def _as_text(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """``values`` as nullable strings, vectorised: strings as they are, integers and integral floats as
    their digits; plus the mask of the values left to ``_scalar_text`` (bytes, other floats, booleans,
    other scalars). Containers and missing values are missing."""
    if isinstance(values.dtype, pd.StringDtype) or values.dtype == "str":
        return values.astype("string"), pd.Series(False, index=values.index)
    raw = values.astype("object")
    try:  # the usual case, all text or missing: one pass in Arrow instead of a type test per value
        strings = pa.array(raw.to_numpy(), type=pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    else:
        return (pd.Series(pd.arrays.ArrowStringArray(strings), index=values.index),
                pd.Series(False, index=values.index))
    kinds = raw.map(type, na_action="ignore")
    is_str = kinds.isin([str]).to_numpy(dtype=bool)
    text = raw.where(is_str, None).astype("string")
    is_int = kinds.isin([int]).to_numpy(dtype=bool)
    if is_int.any():
        text[is_int] = raw[is_int].astype(str)
    is_float = kinds.isin([float]).to_numpy(dtype=bool)
    rest = ~is_str & ~is_int & raw.notna().to_numpy(dtype=bool)
    if is_float.any():
        floats = raw[is_float].astype("float64")
        integral = (np.isfinite(floats) & (floats == np.floor(floats)) & (floats.abs() < 1e18)).to_numpy(dtype=bool)
        if integral.any():
            text[floats.index[integral]] = floats[integral].astype("int64").astype(str)
        rest &= ~(is_float & np.isin(np.arange(len(raw)), np.flatnonzero(is_float)[integral]))
    # Objects, lists (and the rare bytes, non-integral floats, booleans...) the slow, exact way.
    rest &= ~kinds.isin([dict, list, tuple, set]).to_numpy(dtype=bool)
    return text, pd.Series(rest, index=values.index)


def _non_ascii(text: pd.Series) -> np.ndarray:
    return (~text.str.isascii()).fillna(False).to_numpy(dtype=bool)


def text_column(values: pd.Series) -> pd.Series:
    """Any values → nullable strings (NFC, trimmed of whitespace and invisible characters); containers
    and blanks become missing. Vectorised (pandas string methods); only values that are neither text
    nor numbers (bytes, booleans...) are read one by one."""
    text, rest = _as_text(values)
    unusual = _non_ascii(text)
    if unusual.any():  # NFC only where it can change something
        text[unusual] = text[unusual].astype("object").str.normalize("NFC").astype("string")
    text = text.str.strip(_TRIM)
    if rest.any():
        text[rest.to_numpy()] = values[rest.to_numpy()].astype("object").map(_clean_text).astype("string")
    return text.mask((text == "").fillna(False))


def parse_epoch_ms(values: pd.Series) -> pd.Series:
    """Epoch milliseconds (``Int64``) from numbers, numeric strings, seconds or ISO-8601 strings;
    missing when unreadable or outside [2000, 2100)."""
    as_text = text_column(values)
    numeric = pd.to_numeric(as_text.astype("object"), errors="coerce").astype("float64")
    numeric = numeric.where(numeric.abs() < float("inf"))
    numeric = numeric.where(numeric.abs() >= _SECONDS_CUTOFF, numeric * 1000)
    missing = numeric.isna() & as_text.notna()
    if missing.any():
        parsed = pd.to_datetime(as_text[missing], errors="coerce", utc=True, format="ISO8601")
        numeric.loc[missing] = (parsed - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(milliseconds=1)
    numeric = numeric.where((numeric >= MIN_PLAUSIBLE_MS) & (numeric < MAX_PLAUSIBLE_MS))
    return numeric.round().astype("Int64")


def normalise_email(values: pd.Series) -> pd.Series:
    """NFKC, invisible characters removed, trimmed, lower-cased email addresses (see the module
    docstring; validation decides whether they are well formed). Vectorised; addresses with non-ASCII
    characters go through ``str.lower``/NFKC exactly as the rules say."""
    text, rest = _as_text(values)
    unusual = _non_ascii(text)
    if unusual.any():
        odd = text[unusual].astype("object")
        odd = odd.str.normalize("NFKC").str.translate(_DELETE_INVISIBLE).str.strip(_TRIM).str.lower()
        text[unusual] = odd.astype("string")
    plain = ~unusual
    text[plain] = text[plain].str.strip(_TRIM).str.lower()  # ASCII: arrow's lower is str.lower
    if rest.any():
        text[rest.to_numpy()] = values[rest.to_numpy()].astype("object").map(_clean_email).astype("string")
    return text.mask((text == "").fillna(False))


def _records_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Raw records as object columns: no dtype inference (ints with gaps would become floats)."""
    return pd.DataFrame(records, dtype=object) if records else pd.DataFrame()


def leads_frame(leads: list[dict[str, Any]], segment_id: int | str | None) -> pd.DataFrame:
    """One row per lead, our columns, with ``in_segment`` saying whether LeadBoxer lists the segment."""
    raw = _records_frame(leads)
    frame = pd.DataFrame(index=raw.index)
    for source, column in LEAD_FIELDS.items():
        frame[column] = text_column(raw[source]) if source in raw else pd.Series(pd.NA, index=raw.index,
                                                                                  dtype="string")
    frame["email"] = normalise_email(frame["email_raw"])
    segments = raw["segments"] if "segments" in raw else pd.Series([None] * len(raw), index=raw.index)
    ids = segment_ids(segments)
    listed = ids.groupby(level=0, sort=False).agg(tuple) if len(ids) else ids
    segment_lists = pd.Series([()] * len(raw), index=raw.index, dtype="object")
    if len(listed):
        segment_lists.loc[listed.index] = listed
    frame["segment_ids"] = segment_lists
    wanted = segment_id_text(segment_id) if segment_id not in (None, "") else None
    if wanted is None:
        frame["in_segment"] = True
    else:
        hits = ids.eq(wanted).groupby(level=0).any()
        frame["in_segment"] = hits.reindex(raw.index, fill_value=False).astype(bool)
    # Leads without an id, and repeated ones, stay: validation rejects them with a reason.
    return frame.reset_index(drop=True)[LEAD_COLUMNS]


def events_frame(events: list[dict[str, Any]], leads: pd.DataFrame, dataset_id: str) -> pd.DataFrame:
    """One row per event, joined to its lead's facts. Events keep their raw order."""
    raw = _records_frame(events)
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
    # Each event takes the facts of the first row of its lead (repeated lead rows are validation's business).
    lead_facts = leads.dropna(subset=["use_id"]).drop_duplicates("use_id", keep="first").drop(columns=["segment_ids"])
    merged = frame.drop(columns=["event_use_id"]).merge(lead_facts, on="use_id", how="left")
    merged["in_segment"] = merged["in_segment"].fillna(False).astype(bool)
    return merged[EVENT_COLUMNS]


def segment_id_text(value: Any) -> str | None:
    """One segment id as text: ``14118``, ``"14118"``, ``" 14118 "`` and ``14118.0`` all read ``"14118"``."""
    if isinstance(value, bool):
        return None
    text = _scalar_text(value)
    text = text.strip() if text is not None else None
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if math.isfinite(number) and number.is_integer() else text


def segment_ids(segments: pd.Series) -> pd.Series:
    """Every lead's segment ids as text, one row per id, indexed by the lead's row (vectorised: lists
    are exploded, comma-separated strings split; each distinct raw id is read once)."""
    raw = segments.astype("object")
    kinds = raw.map(type, na_action="ignore")
    pieces = [raw[kinds.isin([list, tuple, set])].explode(), raw[kinds.isin([str])].str.split(",").explode(),
              raw[kinds.isin([int, float])]]  # not booleans: type(True) is bool
    flat = pd.concat([p for p in pieces if len(p)]) if any(len(p) for p in pieces) else raw.iloc[:0]
    flat = flat[flat.map(type, na_action="ignore").isin([str, int, float])].sort_index(kind="stable")
    if flat.empty:
        return flat
    readings = {value: segment_id_text(value) for value in pd.unique(flat.to_numpy())}
    return flat.map(readings).dropna()


def _segment_list(value: Any) -> tuple[str, ...]:
    if isinstance(value, (list, tuple, set)):
        parts = value
    elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
        parts = str(value).split(",") if isinstance(value, str) else [value]
    else:
        return ()
    return tuple(t for t in (segment_id_text(v) for v in parts) if t is not None)
