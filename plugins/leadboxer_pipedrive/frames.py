"""LeadBoxer records → pandas frames with our column names. Pure: no Airflow, no HTTP.

The extract hands over LeadBoxer's answers decoded: lists of lead records and of event records. Each
normalisation rule below is written once: the text rule for whole columns (``text_column``, in Arrow),
the others for one value (``clean_email``, ``epoch_ms``, ``segment_id_text``). Columns whose values
repeat (pages, titles, campaigns, lead and session ids) are categorical: each distinct value is
cleaned and stored once.

LeadBoxer sends most values as strings, timestamps as epoch milliseconds (sometimes as numbers,
strings, or seconds), and omits unknown fields. Nothing here raises on such input: what cannot be read
becomes missing, and validation later sets the row aside with its reason.

Rules (hostile input is read, never trusted):

* **Text** (``text_column``): numbers and booleans become their text (an integral float ``42.0`` reads
  ``42``); objects, lists and ``null`` are missing (nested objects are never flattened into text); a
  lone UTF-16 surrogate (JSON's ``"\\ud800"``, which UTF-8 cannot hold) reads U+FFFD; the value is
  Unicode-NFC-composed (no compatibility folding: names keep their characters); surrounding whitespace
  *and* invisible format characters (zero-width space/joiners, BOM, soft hyphen, bidi controls,
  Unicode spaces such as NBSP) are trimmed; a value left empty is missing. Inner text is left alone
  here: HTML is escaped and controls removed where a payload is built (``transforms``).
* **Emails** (``clean_email``): the text above, then Unicode **NFKC** (full-width ``＠``/``．``/letters
  fold to ASCII), invisible format characters removed *anywhere* (``ja\\u200bne@x.io`` is
  ``jane@x.io``), trimmed, **lower-cased** (``str.lower``, not ``casefold``: ``ß`` stays, as IDNA2008
  wants). Internationalised domains stay in Unicode (``jörg@bücher.de``). Whether the result is well
  formed is validation's business (``validation.EMAIL_REGEX``): nothing is "repaired" here.
* **Timestamps** (``epoch_ms``): epoch ms or seconds (a number below 1e11 is seconds) as numbers,
  numeric strings or floats (rounded to the millisecond), or ISO-8601 strings (with an offset, or
  naive = UTC), surrounding whitespace and invisible characters ignored. Anything else (``null``,
  garbage, booleans, objects, ``NaN``, infinities, zero, negative numbers) and anything outside the
  plausible range [2000-01-01, 2100-01-01) UTC (micro- or nanoseconds, overflowing numbers) is
  missing, so validation rejects the event with a reason instead of it being mistaken for another
  hour's event.
* **Segment ids** (``segment_id_text``): ``14118``, ``"14118"``, ``" 14118 "`` and ``14118.0`` are the
  same segment (as LeadBoxer's own ``segmentId`` filter reads them); a comma-separated string is a list.
* **Ids** (``use_id``, ``event_id``): text as above, so ``424242`` and ``"424242"`` are the same id.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import compress
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.api.extensions import take
from pandas.api.types import union_categoricals

from leadboxer_pipedrive.distinct import spread

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
# Each event's own values; every other event field repeats from event to event (categorical columns).
_OWN_EVENT_FIELDS = ("event_id", "eventUnixTimestamp")

LEAD_COLUMNS = [*LEAD_FIELDS.values(), "email", "segment_ids", "in_segment"]
# Columns of events framed from their records, before they are joined to their leads' facts.
EVENT_ROW_COLUMNS = [*EVENT_FIELDS.values(), "session_channel", "use_id", "event_time_ms"]
# The lead facts each event carries: what validating and transforming events read (the other lead
# facts serve the leads sync only; a million events would carry them for nothing).
EVENT_LEAD_FACTS = ["use_id", "email", "in_segment", "first_name", "last_name", "full_name", "phone", "job_title",
                    "org_name", "org_domain", "org_city", "org_country", "org_industry", "org_linkedin",
                    "leadcard_url", "lead_score", "first_channel", "last_channel", "visits", "country"]
EVENT_COLUMNS = [*(c for c in EVENT_FIELDS.values() if c != "event_use_id"), "event_time_ms",
                 "session_channel", "dataset_id", *EVENT_LEAD_FACTS]

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
# A decimal number as text (ASCII digits only): what ``epoch_ms`` reads as a number.
_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_EPOCH = pd.Timestamp(0, tz="UTC")


# -- the rules, one value at a time ------------------------------------------------------------------
def _scalar_text(value: Any) -> str | None:
    """One raw value as text: containers and missing values are None, integral floats read as ints."""
    if type(value) is str:
        return value
    if value is None or isinstance(value, (dict, list, tuple, set)):
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return str(int(value)) if value.is_integer() and abs(value) < 1e18 else repr(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def as_text(value: Any) -> str | None:
    """A raw value as text before any cleaning: numbers as their text, a lone surrogate as U+FFFD (a pair
    spelled apart is joined); objects, lists and missing values are None."""
    text = _scalar_text(value)
    if text is not None and not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def clean_email(value: Any) -> str | None:
    """One email address by the email rule (module docstring)."""
    text = as_text(value)
    if text is None:
        return None
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text).translate(_DELETE_INVISIBLE)
    return text.strip(_TRIM).lower() or None


def epoch_ms(value: Any) -> int | None:
    """One timestamp as epoch milliseconds by the timestamp rule (module docstring); None when unreadable."""
    if type(value) is str and value.isdigit() and value.isascii():  # as LeadBoxer sends them
        number: float | int | None = int(value)
    elif isinstance(value, bool):
        return None
    elif isinstance(value, (int, float)):
        number = value
    else:
        number = _number_of(_scalar_text(value))
    if number is None or isinstance(number, float) and not math.isfinite(number):
        return None
    if abs(number) < _SECONDS_CUTOFF:
        number = number * 1000
    if not MIN_PLAUSIBLE_MS <= number < MAX_PLAUSIBLE_MS:
        return None
    return round(number)


def _number_of(text: str | None) -> float | int | None:
    """A timestamp's text as a number: digits, a decimal number, or an ISO-8601 time as epoch ms."""
    text = text.strip(_TRIM) if text is not None else ""
    if text.isascii() and text.isdigit():
        return int(text)
    if _DECIMAL.fullmatch(text):
        return float(text)
    if not text[:1].isdigit():  # not ISO-8601 (pandas would read "now" and "today")
        return None
    moment = pd.to_datetime(text, errors="coerce", utc=True, format="ISO8601")
    return None if moment is pd.NaT else (moment - _EPOCH) / pd.Timedelta(milliseconds=1)


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


def segment_ids(value: Any) -> tuple[str, ...]:
    """A lead's ``segments`` as segment ids: a list, a comma-separated string or one number; entries
    that are not ids (objects, booleans, blanks) are left out."""
    if isinstance(value, str):
        entries: Sequence[Any] = value.split(",")
    elif isinstance(value, (list, tuple)):
        entries = [entry for entry in value if isinstance(entry, (str, int, float))]
    elif isinstance(value, (int, float)):
        entries = [value]
    else:
        entries = []
    return tuple(text for text in map(segment_id_text, entries) if text is not None)


# -- rules applied to columns ------------------------------------------------------------------------
def text_column(values: Sequence[Any]) -> pd.Series:
    """The text rule (module docstring), for a whole column: nullable text."""
    try:
        texts = pa.array(values, type=pa.string(), from_pandas=True)  # text and missing values: the usual
    except (pa.ArrowException, UnicodeEncodeError):
        texts = pa.array(map(as_text, values), type=pa.string(), size=len(values))
    return pd.Series(pd.arrays.ArrowStringArray(_cleaned(texts)))


def _cleaned(texts: pa.Array) -> pa.Array:
    """Text NFC-composed, trimmed, and missing where left empty."""
    if pc.any(pc.invert(pc.string_is_ascii(texts))).as_py():  # NFC changes nothing in ASCII text
        texts = pc.utf8_normalize(texts, form="NFC")
    texts = pc.utf8_trim(texts, characters=_TRIM)
    return pc.if_else(pc.equal(pc.binary_length(texts), 0), pa.scalar(None, pa.string()), texts)


def categorical_text_column(values: Sequence[Any]) -> pd.Series:
    """The text rule for values that repeat, as a categorical column: each distinct raw value is
    cleaned once, and values cleaned alike share a category."""
    try:
        encoded = pc.dictionary_encode(pa.array(values, type=pa.string(), from_pandas=True))
        codes, distinct = pc.fill_null(encoded.indices, -1).to_numpy(), encoded.dictionary
    except (pa.ArrowException, UnicodeEncodeError):  # not all text: told apart in Python, kind by kind
        codes, raw = _distinct(values)
        distinct = pa.array(map(as_text, raw), type=pa.string(), size=len(raw))
    recode, categories = pd.factorize(pd.arrays.ArrowStringArray(_cleaned(distinct)))
    return pd.Series(pd.Categorical.from_codes(np.append(recode, -1)[codes], categories=pd.Index(categories)))


def _distinct(values: Sequence[Any]) -> tuple[np.ndarray, list[Any]]:
    """Each value's position among the distinct values (-1: ``None``, ``NaN``, an object or a list:
    missing by every rule) and the distinct values, in order of first appearance. Values of several
    kinds are told apart by kind: ``True == 1`` in Python, but they read differently."""
    positions: dict[tuple[type, Any], int] = {}
    codes = np.full(len(values), -1, dtype=np.int64)
    for row, value in enumerate(values):
        if not isinstance(value, (dict, list)) and not pd.isna(value):
            codes[row] = positions.setdefault((type(value), value), len(positions))
    return codes, [value for _, value in positions]


def email_column(values: Iterable[Any]) -> pd.Series:
    """``clean_email`` of each value, as nullable text."""
    return pd.Series(pd.arrays.ArrowStringArray(pa.array(map(clean_email, values), type=pa.string())))


def epoch_ms_column(values: Iterable[Any]) -> pd.Series:
    """``epoch_ms`` of each value (``Int64``, missing when unreadable)."""
    return pd.Series(pd.array(list(map(epoch_ms, values)), dtype="Int64"))


# -- frames ------------------------------------------------------------------------------------------
def _objects(records: Sequence[Any]) -> list[dict[str, Any]]:
    """A record that is not an object reads as an empty one: a row of missing values, kept so that
    validation rejects it with a reason."""
    return [record if isinstance(record, dict) else {} for record in records]


def leads_without_id(leads: pd.DataFrame) -> pd.DataFrame:
    """The segment's leads LeadBoxer listed without an id (``use_id``): no session or event of theirs can
    be read, so the activity sync rejects each as a record of its own."""
    return leads[leads["use_id"].isna() & leads["in_segment"]]


def leads_frame(leads: Sequence[Any], segment_id: int | str | None) -> pd.DataFrame:
    """One row per lead record, our columns, with ``in_segment`` saying whether LeadBoxer lists the
    segment. Leads without an id, and repeated ones, stay: validation rejects them with a reason."""
    leads = _objects(leads)
    frame = pd.DataFrame({column: text_column([lead.get(field) for lead in leads])
                          for field, column in LEAD_FIELDS.items()}, index=pd.RangeIndex(len(leads)))
    frame["email"] = email_column([lead.get("email") for lead in leads])
    frame["segment_ids"] = pd.Series([segment_ids(lead.get("segments")) for lead in leads], dtype=object)
    wanted = segment_id_text(segment_id) if segment_id not in (None, "") else None
    frame["in_segment"] = pd.Series([wanted is None or wanted in ids for ids in frame["segment_ids"]], dtype=bool)
    return frame[LEAD_COLUMNS]


# The fields read from an event record: ours, and where a record names its lead and its session's
# channel itself (when they are not given).
_RECORD_FIELDS = [*EVENT_FIELDS, "_lead_id", "_session_channel"]


@dataclass
class RawEvents:
    """Event records as read, before any rule: each field's raw values (one per event) and each event's
    time (``epoch_ms``)."""

    values: dict[str, list[Any]]
    times_ms: list[int | None]

    def __len__(self) -> int:
        return len(self.times_ms)


def raw_events(records: Sequence[Any], window: tuple[int, int] | None = None) -> RawEvents:
    """The raw values of event records, taken field by field while the records are fresh from the
    decoder: decoded dicts kept for framing later cost several times as much to read (they fall out of
    the processor's caches, and the garbage collector scans them again and again).

    With ``window`` (``[start_ms, end_ms)``) only the events to keep: those inside it, and those whose
    time cannot be read (validation rejects them with a reason: nothing vanishes unexplained)."""
    records = _objects(records)
    times = [epoch_ms(record.get("eventUnixTimestamp")) for record in records]
    if window is not None:
        start_ms, end_ms = window
        keep = [ms is None or start_ms <= ms < end_ms for ms in times]
        if not all(keep):
            records, times = list(compress(records, keep)), list(compress(times, keep))
    return RawEvents({field: [record.get(field) for record in records] for field in _RECORD_FIELDS}, times)


def event_rows(records: Sequence[Any], lead_ids: Sequence[Any] | None = None,
               channels: Sequence[Any] | None = None) -> pd.DataFrame:
    """Event records → ``EVENT_ROW_COLUMNS``, one row per record, in order.

    An event belongs to the lead it was fetched for (``lead_ids``, one per record; else the record's
    ``_lead_id``, else its own ``use_id``); its channel is its session's (``channels``, else the
    record's ``_session_channel``)."""
    unknown = [None] * len(records)
    return _event_rows(raw_events(records), unknown if lead_ids is None else lead_ids,
                       unknown if channels is None else channels)


def _event_rows(events: RawEvents, lead_ids: Sequence[Any], channels: Sequence[Any]) -> pd.DataFrame:
    values = events.values
    columns = {column: (text_column if field in _OWN_EVENT_FIELDS else categorical_text_column)(values[field])
               for field, column in EVENT_FIELDS.items()}
    lead_id = categorical_text_column([given if given is not None else own
                                       for given, own in zip(lead_ids, values["_lead_id"])])
    columns["use_id"] = _first_present(lead_id, columns["event_use_id"])
    columns["session_channel"] = categorical_text_column([given if given is not None else own
                                                          for given, own in zip(channels, values["_session_channel"])])
    columns["event_time_ms"] = pd.Series(pd.array(events.times_ms, dtype="Int64"))
    return pd.DataFrame(columns, index=pd.RangeIndex(len(events)))[EVENT_ROW_COLUMNS]


def _first_present(first: pd.Series, second: pd.Series) -> pd.Series:
    """``first`` where it has a value, else ``second``: two categorical text columns, as one."""
    if not first.isna().any():
        return first
    return categorical_text_column(first.astype(object).where(first.notna(), second.astype(object)))


class EventRows:
    """A window's events, framed ``batch_rows`` at a time as they are added, in order."""

    def __init__(self, batch_rows: int = 50_000) -> None:
        self.batch_rows = batch_rows
        self._frames: list[pd.DataFrame] = []
        self._pending = RawEvents({field: [] for field in _RECORD_FIELDS}, [])
        self._lead_ids: list[Any] = []
        self._channels: list[Any] = []

    def __len__(self) -> int:
        return sum(map(len, self._frames)) + len(self._pending)

    def add(self, events: RawEvents, lead_id: Any = None, channel: Any = None) -> None:
        """Events of one lead's session (``lead_id``, ``channel``: see ``event_rows``)."""
        for field, values in events.values.items():
            self._pending.values[field].extend(values)
        self._pending.times_ms.extend(events.times_ms)
        self._lead_ids.extend([lead_id] * len(events))
        self._channels.extend([channel] * len(events))
        if len(self._pending) >= self.batch_rows:
            self._frame_pending()

    def _frame_pending(self) -> None:
        if len(self._pending) or not self._frames:
            self._frames.append(_event_rows(self._pending, self._lead_ids, self._channels))
        self._pending = RawEvents({field: [] for field in _RECORD_FIELDS}, [])
        self._lead_ids, self._channels = [], []

    def frame(self) -> pd.DataFrame:
        self._frame_pending()
        if len(self._frames) > 1:
            self._frames = [concat_rows(self._frames)]
        return self._frames[0]


def concat_rows(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The rows of ``frames`` (same columns) one after the other, renumbered from 0; categorical columns
    get the union of their categories (``pd.concat`` would make text of categoricals that differ)."""
    frames = [frame for frame in frames if len(frame)] or frames[:1]
    columns = {}
    for name in frames[0].columns:
        parts = [frame[name] for frame in frames]
        if all(isinstance(part.dtype, pd.CategoricalDtype) for part in parts):
            columns[name] = union_categoricals(parts)
        else:
            columns[name] = pd.concat(parts, ignore_index=True).array
    return pd.DataFrame(columns, index=pd.RangeIndex(sum(map(len, frames))))


def events_frame(events: Sequence[Any] | pd.DataFrame, leads: pd.DataFrame, dataset_id: str) -> pd.DataFrame:
    """One row per event, joined to its lead's facts. Events keep their order. The lead facts are
    categorical columns (``distinct.spread``): every event of a lead shares its lead's values.

    ``events``: event records, or the frame ``EventRows.frame()`` made of them while they were read."""
    rows = events if isinstance(events, pd.DataFrame) else event_rows(events)
    # Each event takes the facts of the first row of its lead (repeated lead rows are validation's business).
    lead_facts = leads.dropna(subset=["use_id"]).drop_duplicates("use_id", keep="first")
    position = _positions_in(pd.Index(lead_facts["use_id"]), rows["use_id"])  # -1: no such lead
    columns = {column: rows[column] for column in EVENT_ROW_COLUMNS if column != "event_use_id"}
    columns["dataset_id"] = pd.Series(pd.Categorical.from_codes(np.zeros(len(rows), dtype=np.int8), [dataset_id]),
                                      index=rows.index)
    for column in EVENT_LEAD_FACTS:
        if column not in ("use_id", "in_segment"):
            columns[column] = spread(lead_facts[column], position, rows.index)
    columns["in_segment"] = pd.Series(take(lead_facts["in_segment"].to_numpy(dtype=bool), position, allow_fill=True,
                                           fill_value=False), index=rows.index)
    return pd.DataFrame(columns, index=rows.index)[EVENT_COLUMNS]


def _positions_in(index: pd.Index, values: pd.Series) -> np.ndarray:
    """``index.get_indexer(values)`` (-1: not in ``index``); a categorical column is looked up once per
    category."""
    if not isinstance(values.dtype, pd.CategoricalDtype):
        return index.get_indexer(values)
    per_category = index.get_indexer(values.cat.categories)
    return take(per_category, values.cat.codes.to_numpy(), allow_fill=True, fill_value=-1)
