"""Raw LeadBoxer records → pandas frames with our column names. Pure: no Airflow, no HTTP.

LeadBoxer sends most values as strings, timestamps as epoch milliseconds (sometimes as numbers,
strings, or seconds), and omits unknown fields. These functions never raise on such input: what cannot
be parsed becomes missing, and validation later sets the row aside with its reason.

Lead and event pages are read undecoded, by Arrow's JSON reader against explicit schemas
(``lead_page``, ``read_event_pages``), and framed a batch at a time (``LeadRows``, ``EventRows``);
a page that reader refuses (its schema is strict) is decoded with ``json.loads`` and framed from its
records by the same rules: both readings give the same frames. Event fields whose values repeat
(pages, titles, referrers, UTM values, campaigns, session and lead ids) are categorical columns: each
distinct raw value is cleaned once.

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

import functools
import itertools
import json
import math
import unicodedata
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json
from pandas.api.extensions import take
from pandas.api.types import union_categoricals

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
# The lead facts each event carries: what validating and transforming events read (the other lead
# facts serve the leads sync only; a million events would carry them for nothing).
EVENT_LEAD_FACTS = ["use_id", "email", "in_segment", "first_name", "last_name", "full_name", "phone", "org_name",
                    "org_domain", "org_city", "org_country", "org_linkedin", "leadcard_url"]
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


_NO_TEXT = pa.scalar(None, type=pa.string())


def _arrow_strings(values: pd.Series) -> pa.Array | pa.ChunkedArray | None:
    """``values`` as Arrow strings when they are all text or missing (the usual case: one pass in
    Arrow instead of a type test per value); None when some are not."""
    if isinstance(values.dtype, pd.StringDtype):
        return values.array.__arrow_array__()
    try:
        return pa.array(values.astype("object").to_numpy(), type=pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None


def _as_text(values: pd.Series, strings: pa.Array | pa.ChunkedArray | None) -> tuple[pd.Series, pd.Series]:
    """``values`` as nullable strings, vectorised: strings as they are, integers and integral floats as
    their digits; plus the mask of the values left to ``_scalar_text`` (bytes, other floats, booleans,
    other scalars). Containers and missing values are missing. ``strings``: ``_arrow_strings(values)``."""
    if strings is not None:
        return (pd.Series(pd.arrays.ArrowStringArray(strings), index=values.index),
                pd.Series(False, index=values.index))
    raw = values.astype("object")
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


def _lone_surrogates_read_as_replacement(read):
    """``read`` (values → text), where text with a lone surrogate (JSON's ``"\\ud800"``), which UTF-8
    cannot hold, reads U+FFFD there instead of failing."""
    def repaired(value: Any) -> Any:
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace") if isinstance(value, str) else value

    @functools.wraps(read)
    def reading(values: pd.Series) -> pd.Series:
        try:
            return read(values)
        except UnicodeEncodeError:
            return read(values.astype("object").map(repaired, na_action="ignore"))
    return reading


@_lone_surrogates_read_as_replacement
def text_column(values: pd.Series) -> pd.Series:
    """Any values → nullable strings (NFC, trimmed of whitespace and invisible characters); containers
    and blanks become missing. Vectorised (pandas string methods); only values that are neither text
    nor numbers (bytes, booleans...) are read one by one."""
    strings = _arrow_strings(values)
    if strings is not None:
        # Text and missing values only (nearly every column): NFC (where anything is not ASCII), trimmed,
        # and blanks made missing, in Arrow directly. Arrow's UTF-8 kernels refuse text that is not UTF-8.
        if pc.any(pc.invert(pc.string_is_ascii(strings))).as_py():
            strings = pc.utf8_normalize(strings, form="NFC")
        trimmed = pc.utf8_trim(strings, characters=_TRIM)
        blank = pc.equal(pc.binary_length(trimmed), 0)
        if pc.any(blank).as_py():  # only then: it writes the column out again
            trimmed = pc.if_else(blank, _NO_TEXT, trimmed)
        return pd.Series(pd.arrays.ArrowStringArray(trimmed), index=values.index)
    text, rest = _as_text(values, strings)
    unusual = _non_ascii(text)
    if unusual.any():  # NFC only where it can change something
        text[unusual] = text[unusual].astype("object").str.normalize("NFC").astype("string")
    text = text.str.strip(_TRIM)
    if rest.any():
        text[rest.to_numpy()] = values[rest.to_numpy()].astype("object").map(_clean_text).astype("string")
    return text.mask((text == "").fillna(False))


def categorical_text_column(values: pd.Series | pa.Array | pa.ChunkedArray) -> pd.Series:
    """``text_column(values)`` as a categorical column, for values that repeat (a site's pages, a
    session's id...): each distinct value is stored once and every row holds a small code. Arrow strings
    are dictionary-encoded first, so each distinct raw value is cleaned once, not once per row."""
    if isinstance(values, pd.Series):
        return _categorical(text_column(values))
    return categorical_of_codes([dictionary_codes(values)])


def dictionary_codes(values: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, np.ndarray]:
    """Arrow strings dictionary-encoded: their distinct raw values, and each row's index among them
    (-1: missing)."""
    encoded = pc.dictionary_encode(values)
    chunks = encoded.chunks if isinstance(encoded, pa.ChunkedArray) else [encoded]
    if not chunks:
        return pa.array([], type=pa.string()), np.zeros(0, dtype=np.int32)
    # A chunked array is encoded against one dictionary, shared by its chunks.
    indices = pa.chunked_array([chunk.indices for chunk in chunks]).combine_chunks()
    return chunks[0].dictionary, pc.fill_null(indices, -1).to_numpy()


def categorical_of_codes(pieces: list[tuple[pa.Array, np.ndarray]]) -> pd.Series:
    """One categorical text column of the rows of ``pieces`` (``dictionary_codes`` of each, one after
    the other, each with its own dictionary): every distinct raw value is cleaned once (``text_column``),
    and raw values cleaned alike (or in several dictionaries) share a category."""
    dictionaries = [dictionary for dictionary, _ in pieces]
    cleaned = text_column(pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array(dictionaries, type=pa.string()))))
    recode, categories = pd.factorize(cleaned)  # blanks: -1
    codes, start = [], 0
    for dictionary, indices in pieces:
        # Each dictionary's entries recoded; a missing raw value (-1) reads the appended -1.
        codes.append(np.append(recode[start:start + len(dictionary)], -1)[indices])
        start += len(dictionary)
    codes = np.concatenate(codes) if codes else np.zeros(0, dtype=np.int64)
    return pd.Series(pd.Categorical.from_codes(codes, categories=pd.Index(categories)))


def _categorical(text: pd.Series) -> pd.Series:
    """Text as a categorical column, categories in order of first appearance."""
    codes, categories = pd.factorize(text)
    return pd.Series(pd.Categorical.from_codes(codes, categories=pd.Index(categories)), index=text.index)


def first_present(first: pd.Series, second: pd.Series) -> pd.Series:
    """``first`` where it has a value, else ``second``: two categorical text columns, as one."""
    if not first.isna().any():
        return first
    return _categorical(plain_values(first).fillna(plain_values(second)))


def parse_epoch_ms(values: pd.Series) -> pd.Series:
    """Epoch milliseconds (``Int64``) from numbers, numeric strings, seconds or ISO-8601 strings;
    missing when unreadable or outside [2000, 2100)."""
    as_text = text_column(values)
    strings = as_text.array.__arrow_array__()
    if pc.all(pc.and_(pc.ascii_is_decimal(strings), pc.less_equal(pc.binary_length(strings), 15))).as_py() is not False:
        # The usual column, digits only: read as integers in Arrow (the same rules, exact below 1e15).
        whole = pd.Series(pd.arrays.ArrowExtensionArray(pc.cast(strings, pa.int64())), index=values.index)
        whole = whole.astype("Int64")
        whole = whole.where((whole >= _SECONDS_CUTOFF).fillna(True), whole * 1000)
        return whole.where(((whole >= MIN_PLAUSIBLE_MS) & (whole < MAX_PLAUSIBLE_MS)).fillna(False)).astype("Int64")
    numeric = pd.to_numeric(as_text.astype("object"), errors="coerce").astype("float64")
    numeric = numeric.where(numeric.abs() < float("inf"))
    numeric = numeric.where(numeric.abs() >= _SECONDS_CUTOFF, numeric * 1000)
    missing = numeric.isna() & as_text.notna()
    if missing.any():
        parsed = pd.to_datetime(as_text[missing], errors="coerce", utc=True, format="ISO8601")
        numeric.loc[missing] = (parsed - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(milliseconds=1)
    numeric = numeric.where((numeric >= MIN_PLAUSIBLE_MS) & (numeric < MAX_PLAUSIBLE_MS))
    return numeric.round().astype("Int64")


def epoch_ms(value: Any) -> int | None:
    """``parse_epoch_ms`` of one value, without pandas for what LeadBoxer usually sends (an integer, or
    a string of ASCII digits): the extract reads one per event. Any other value goes the vectorised
    way, so the rules are the same."""
    if type(value) is int:
        number = value
    elif type(value) is str and value.isascii() and value.isdigit():
        number = int(value)
    else:
        parsed = parse_epoch_ms(pd.Series([value], dtype="object")).iloc[0]
        return None if pd.isna(parsed) else int(parsed)
    if abs(number) < _SECONDS_CUTOFF:
        number *= 1000
    return number if MIN_PLAUSIBLE_MS <= number < MAX_PLAUSIBLE_MS else None


@_lone_surrogates_read_as_replacement
def normalise_email(values: pd.Series) -> pd.Series:
    """NFKC, invisible characters removed, trimmed, lower-cased email addresses (see the module
    docstring; validation decides whether they are well formed). Vectorised; addresses with non-ASCII
    characters go through ``str.lower``/NFKC exactly as the rules say."""
    text, rest = _as_text(values, _arrow_strings(values))
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


def _raw_columns(records: list[Any], names: list[str]) -> pd.DataFrame:
    """Those fields of every record as raw values, missing ones NaN; a record that is not an object is
    a row of missing values (kept, so validation rejects it with a reason). ``dtype=object``: a numeric
    id column with gaps is never up-cast to floats (which would turn ``42`` into ``"42.0"``)."""
    records = [record if isinstance(record, dict) else {} for record in records]
    return pd.DataFrame(records, columns=names, index=pd.RangeIndex(len(records)), dtype=object)


def leads_frame(leads: list[dict[str, Any]], segment_id: int | str | None) -> pd.DataFrame:
    """One row per lead, our columns, with ``in_segment`` saying whether LeadBoxer lists the segment."""
    raw = _raw_columns(leads, [*LEAD_FIELDS, "segments"])
    texts = {column: text_column(raw[source]) for source, column in LEAD_FIELDS.items()}
    return _lead_columns(texts, segment_ids(raw["segments"]), segment_id, raw.index)


def _lead_columns(texts: dict[str, pd.Series], ids: pd.Series, segment_id: int | str | None,
                  index: pd.Index) -> pd.DataFrame:
    """``leads_frame`` of the leads' cleaned text fields (by our names) and their segment ids
    (``segment_ids``: text, one row per id, indexed by the lead's row)."""
    frame = pd.DataFrame(texts, index=index)
    frame["email"] = normalise_email(frame["email_raw"])
    # Each lead's ids as a tuple: ``ids`` is ordered by lead row, so each lead's ids are one run of it.
    segment_lists: list[tuple[str, ...]] = [()] * len(index)
    if len(ids):
        rows = ids.index.to_numpy()
        starts = np.r_[0, np.flatnonzero(np.diff(rows)) + 1]
        values = ids.to_numpy(dtype=object).tolist()
        for row, start, end in zip(rows[starts].tolist(), starts.tolist(), [*starts[1:].tolist(), len(values)]):
            segment_lists[row] = tuple(values[start:end])
    frame["segment_ids"] = pd.Series(segment_lists, index=frame.index, dtype="object")
    wanted = segment_id_text(segment_id) if segment_id not in (None, "") else None
    if wanted is None:
        frame["in_segment"] = True
    else:
        hits = ids.eq(wanted).groupby(level=0).any()
        frame["in_segment"] = hits.reindex(frame.index, fill_value=False).astype(bool)
    # Leads without an id, and repeated ones, stay: validation rejects them with a reason.
    return frame[LEAD_COLUMNS]


# A page of LeadBoxer's lead list as Arrow reads it: the fields we use, text as text and LeadBoxer's
# numbers (visits, ``lastEvent``, segment ids) as numbers. Arrow's reader is strict: any other kind of
# value (a number where text is expected, an object, a segment id as text...) makes it refuse the page,
# which is then decoded the exact way (``json.loads``): both read the same leads.
_LEAD_NUMBER_FIELDS = ("total_number_visits", "lastEvent")
_LEAD_PAGE_SCHEMA = pa.schema([
    ("data", pa.list_(pa.struct(
        [(field, pa.string()) for field in LEAD_FIELDS if field not in _LEAD_NUMBER_FIELDS]
        + [(field, pa.int64()) for field in _LEAD_NUMBER_FIELDS]
        + [("eventEsTimestamp", pa.string()), ("segments", pa.list_(pa.int64()))]))),
    ("nextToken", pa.string())])


@dataclass
class LeadPage:
    """One page of LeadBoxer's lead list, as ``lead_page`` reads it: each lead's id as sent and when it
    was last seen (what the extract decides by), and the leads themselves, read by Arrow (``data``) or,
    where Arrow refused the page, decoded (``records``)."""

    lead_ids: list[Any]
    last_seen_ms: list[int | None]
    next_token: Any
    data: pa.StructArray | None = None
    records: list[Any] | None = None


def lead_page(body: bytes | None) -> LeadPage:
    """An undecoded page of LeadBoxer's lead list (``{"data": [lead, ...], "nextToken": ...}``), read
    by Arrow's JSON reader where it can be (no Python dict per lead), else decoded with ``json.loads``."""
    data, next_token = _read_lead_page(body)
    if data is not None:
        times = zip(*(pc.struct_field(data, field).to_pylist() for field in ("eventEsTimestamp", "lastEvent")))
        return LeadPage(pc.struct_field(data, "use_id").to_pylist(), [_last_seen_ms(*seen) for seen in times],
                        next_token, data=data)
    decoded = _decoded_page(body, "a page of leads")
    records = decoded.get("data") or []
    leads = [lead if isinstance(lead, dict) else {} for lead in records]  # not an object: no id, never seen
    return LeadPage([lead.get("use_id") for lead in leads],
                    [_last_seen_ms(lead.get("eventEsTimestamp"), lead.get("lastEvent")) for lead in leads],
                    decoded.get("nextToken"), records=records)


def _last_seen_ms(event_es_timestamp: Any, last_event: Any) -> int | None:
    """When a lead was last seen: its ``eventEsTimestamp`` (as LeadBoxer's time filter reads it), else
    its ``lastEvent``."""
    return epoch_ms(last_event if event_es_timestamp is None else event_es_timestamp)


def _read_lead_page(body: bytes | None) -> tuple[pa.StructArray | None, Any]:
    """A lead page's leads and next token as Arrow reads them; no leads when Arrow refuses the page."""
    if not body or body.isspace():
        return None, None
    options = pa_json.ParseOptions(explicit_schema=_LEAD_PAGE_SCHEMA, unexpected_field_behavior="ignore",
                                   newlines_in_values=b"\n" in body)
    try:
        table = pa_json.read_json(pa.BufferReader(body), parse_options=options,
                                  read_options=pa_json.ReadOptions(block_size=max(1 << 20, 2 * len(body))))
        if table.num_rows != 1:
            return None, None
        data = pc.list_flatten(table.column("data")).combine_chunks()
        data.validate(full=True)  # Arrow's reader lets text that is not UTF-8 through; this does not
        return data, table.column("nextToken")[0].as_py()
    except (pa.ArrowException, UnicodeDecodeError):
        return None, None


def _decoded_page(body: bytes | None, what: str) -> dict[str, Any]:
    """One undecoded page decoded as the hook decodes any answer (an empty one has nothing)."""
    if not body or body.isspace():
        return {}
    try:
        decoded = json.loads(body)
    except UnicodeDecodeError:  # as ``requests`` reads a body that is not UTF-8
        decoded = json.loads(body.decode("utf-8", errors="replace"))
    if decoded is None:
        return {}
    if not isinstance(decoded, dict) or not isinstance(decoded.get("data") or [], list):
        raise ValueError(f"LeadBoxer answered {what} that is not {{\"data\": [...]}}: {body[:200]!r}")
    return decoded


def arrow_leads_frame(data: pa.StructArray | pa.ChunkedArray, segment_id: int | str | None) -> pd.DataFrame:
    """``leads_frame`` of leads read by Arrow (``lead_page``): the same columns, vectorised."""
    index = pd.RangeIndex(len(data))
    texts = {}
    for source, column in LEAD_FIELDS.items():
        values = pc.struct_field(data, source)
        if source in _LEAD_NUMBER_FIELDS:
            values = pc.cast(values, pa.string())  # a number's text is its digits
        texts[column] = text_column(pd.Series(pd.arrays.ArrowStringArray(values), index=index))
    segments = pc.struct_field(data, "segments")
    ids = pd.Series(pd.arrays.ArrowStringArray(pc.cast(pc.list_flatten(segments), pa.string())),
                    index=pd.Index(pc.list_parent_indices(segments).to_numpy(zero_copy_only=False)))
    return _lead_columns(texts, ids.dropna(), segment_id, index)


class _Pages:
    """Records framed a page (``page_rows``) at a time as they come, each page's Python objects let go
    once framed; ``frame()`` hands every row so far, in order."""

    def __init__(self, page_rows: int) -> None:
        self.page_rows = page_rows
        self._pages: list[pd.DataFrame] = []
        self._framed = 0
        self._records: list[Any] = []

    def __len__(self) -> int:
        return self._framed + len(self._records)

    def _frame_records(self) -> pd.DataFrame:
        """The pending records as a frame (all of them: also called with none)."""
        raise NotImplementedError

    def _clear_records(self) -> None:
        self._records = []

    def _frame_if_full(self) -> None:
        if len(self._records) >= self.page_rows:
            self._frame_pending()

    def _frame_pending(self) -> None:
        if self._records:
            self._pages.append(self._frame_records())
            self._framed += len(self._pages[-1])
            self._clear_records()

    def frame(self) -> pd.DataFrame:
        self._frame_pending()
        if len(self._pages) > 1:
            self._pages = [concat_rows(self._pages)]
        return self._pages[0] if self._pages else self._frame_records()


def concat_rows(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The rows of ``frames`` (same columns) one after the other, renumbered from 0. Arrow columns are
    concatenated as chunks, without copying; categorical ones get the union of their categories
    (``pd.concat`` would make text of categoricals whose categories differ)."""
    frames = [frame for frame in frames if len(frame)] or frames[:1]
    columns = {}
    for name in frames[0].columns:
        parts = [frame[name] for frame in frames]
        if all(isinstance(part.dtype, pd.CategoricalDtype) for part in parts):
            columns[name] = union_categoricals(parts)
        else:
            columns[name] = pd.concat(parts, ignore_index=True).array
    return pd.DataFrame(columns, index=pd.RangeIndex(sum(map(len, frames))))


class LeadRows(_Pages):
    """A window's leads, framed a page (``page_rows``) at a time as they are read: decoded records
    (``append``) by ``leads_frame``, leads of pages Arrow read (``add``) by ``arrow_leads_frame``."""

    def __init__(self, segment_id: int | str | None, page_rows: int = 5_000) -> None:
        super().__init__(page_rows)
        self.segment_id = segment_id
        self._needs_events: list[bool] = []
        self._arrow_rows: list[tuple[pa.StructArray, list[int]]] = []  # not framed yet: (page data, rows)

    def __len__(self) -> int:
        return super().__len__() + self._arrow_count

    @property
    def _arrow_count(self) -> int:
        """Leads of Arrow-read pages not framed yet."""
        return sum(len(rows) for _, rows in self._arrow_rows)

    def append(self, lead: Any, *, if_it_has_events: bool = False) -> None:
        """``if_it_has_events``: the lead stays only if ``frame(event_lead_ids)`` names it (its events
        are read as undecoded pages: whether any is in the window is known once they are framed)."""
        if self._arrow_rows:
            self._frame_pending()  # rows stay in the order given
        self._records.append(lead)
        self._needs_events.append(if_it_has_events)
        self._frame_if_full()

    def add(self, page: LeadPage, row: int, *, if_it_has_events: bool = False) -> None:
        """Lead ``row`` of ``page`` (``lead_page``), as ``append`` adds a record."""
        if page.records is not None:
            self.append(page.records[row], if_it_has_events=if_it_has_events)
            return
        if self._records:
            self._frame_pending()
        if not self._arrow_rows or self._arrow_rows[-1][0] is not page.data:
            self._arrow_rows.append((page.data, []))
        self._arrow_rows[-1][1].append(row)
        self._needs_events.append(if_it_has_events)
        if self._arrow_count >= self.page_rows:
            self._frame_pending()

    def _frame_pending(self) -> None:
        if self._arrow_rows:
            data = pa.concat_arrays([data.take(pa.array(rows, type=pa.int64())) for data, rows in self._arrow_rows])
            self._pages.append(arrow_leads_frame(data, self.segment_id))
            self._framed += len(data)
            self._arrow_rows = []
        super()._frame_pending()

    def frame(self, event_lead_ids: pd.Series | None = None) -> pd.DataFrame:
        """Every lead so far; with ``event_lead_ids`` (the framed events' ``use_id`` column), those
        appended ``if_it_has_events`` only if an event names them."""
        frame = super().frame()
        if event_lead_ids is None or not any(self._needs_events):
            return frame
        lead_ids = pa.array(frame["use_id"].astype("string").array)
        with_events = pc.is_in(lead_ids, value_set=distinct_present(event_lead_ids)).to_numpy(zero_copy_only=False)
        keep = ~np.array(self._needs_events, dtype=bool) | with_events
        return frame if keep.all() else rows_where(frame, keep)

    def _frame_records(self) -> pd.DataFrame:
        return leads_frame(self._records, self.segment_id)


# Raw events are framed this many at a time, and undecoded event pages this many bytes at a time (see
# ``EventRows``).
EVENT_PAGE_ROWS = 20_000
EVENT_PAGE_BYTES = 16 << 20
# Batches of pages framed, or waiting to be, while more are fetched.
FRAMING_AHEAD = 2
# Columns of events framed from their records, before they are joined to their leads' facts.
EVENT_ROW_COLUMNS = [*EVENT_FIELDS.values(), "session_channel", "use_id", "event_time_ms"]
# The fields read from an event record (``_lead_id`` and ``_session_channel``: where a record says itself).
EVENT_RECORD_FIELDS = [*EVENT_FIELDS, "_lead_id", "_session_channel"]
# Event fields whose values repeat from event to event (a site's pages and titles, kinds, referrers,
# campaigns, a session's id, a lead's id): framed as categorical columns (``categorical_text_column``),
# each distinct value cleaned and stored once. Each event's id and time are its own.
_REPEATED_EVENT_FIELDS = frozenset(EVENT_RECORD_FIELDS) - {"event_id", "eventUnixTimestamp"}
# An event page as Arrow reads it: each field as text. Arrow's reader is strict: another type for a field
# (a number, an object), an event that is not an object, a repeated key or a broken string make it refuse
# the pages, which are then decoded the exact way (``json.loads``): both read the same rows.
_EVENT_PAGE_SCHEMA = pa.schema([("data", pa.list_(pa.struct([(field, pa.string()) for field in EVENT_RECORD_FIELDS])))])


def event_rows(records: list[Any], lead_ids: list[Any] | None = None,
               channels: list[Any] | None = None) -> pd.DataFrame:
    """Raw event records → our event columns (``EVENT_ROW_COLUMNS``), one row per record, in order.

    An event belongs to the lead it was fetched for (``lead_ids``, else the record's ``_lead_id``, else
    its own ``use_id``); its channel is its session's (``channels``, else the record's
    ``_session_channel``). A record that is not an object is kept as a row without an id, so validation
    rejects it with a reason instead of it vanishing."""
    raw = _raw_columns(records, EVENT_RECORD_FIELDS)
    # Given values, else the record's own.
    lead_id = raw["_lead_id"] if lead_ids is None else pd.Series(lead_ids, dtype=object).fillna(raw["_lead_id"])
    channel = (raw["_session_channel"] if channels is None
               else pd.Series(channels, dtype=object).fillna(raw["_session_channel"]))
    columns = {column: (categorical_text_column if source in _REPEATED_EVENT_FIELDS else text_column)(raw[source])
               for source, column in EVENT_FIELDS.items()}
    return _event_columns(columns, categorical_text_column(lead_id), categorical_text_column(channel))


def event_page_rows(pages: list[bytes], lead_ids: list[Any], channels: list[Any],
                    window: tuple[int, int] | None = None) -> pd.DataFrame:
    """``event_rows`` of every event in ``pages``, the undecoded bodies LeadBoxer answers for a session's
    events (``{"data": [event, ...], ...}``); each page's events belong to its lead (``lead_ids``) and
    session channel (``channels``). With ``window``, only ``in_window`` events (see ``read_event_pages``)."""
    read = read_event_pages(pages, lead_ids, channels, window)
    return read if isinstance(read, pd.DataFrame) else read_events_frame([read])


def read_event_pages(pages: list[bytes], lead_ids: list[Any], channels: list[Any],
                     window: tuple[int, int] | None = None) -> ReadEvents | pd.DataFrame:
    """The events of ``pages`` (see ``event_page_rows``), read by Arrow's JSON reader straight into
    columns, no Python object per event, and left unframed (``ReadEvents``: batches read one after
    another are framed together). Pages it refuses (see ``_EVENT_PAGE_SCHEMA``) are decoded with
    ``json.loads`` and framed as records (``event_rows``)."""
    if not all(page and not page.isspace() for page in pages):  # an empty answer has no events
        kept = [n for n, page in enumerate(pages) if page and not page.isspace()]
        pages, lead_ids, channels = [pages[n] for n in kept], [lead_ids[n] for n in kept], [channels[n] for n in kept]
    data = _read_event_pages(pages) if pages else None
    if data is not None:
        try:
            return _read_events(data, lead_ids, channels, window)
        except (pa.ArrowException, UnicodeDecodeError):
            pass  # text that is not UTF-8 (Arrow's reader lets it through, full validation does not)
    records: list[Any] = []
    record_lead_ids: list[Any] = []
    record_channels: list[Any] = []
    for page, lead_id, channel in zip(pages, lead_ids, channels):
        events = decoded_event_page(page)
        records.extend(events)
        record_lead_ids.extend([lead_id] * len(events))
        record_channels.extend([channel] * len(events))
    return _rows_in_window(event_rows(records, record_lead_ids, record_channels), window)


def in_window(event_time_ms: pd.Series, window: tuple[int, int]) -> np.ndarray:
    """Which events to keep for ``window`` (``[start_ms, end_ms)``): those inside it, and those whose time
    cannot be read (validation rejects them with a reason: nothing vanishes unexplained)."""
    start_ms, end_ms = window
    return (event_time_ms.isna() | ((event_time_ms >= start_ms) & (event_time_ms < end_ms))).to_numpy(dtype=bool)


def _rows_in_window(rows: pd.DataFrame, window: tuple[int, int] | None) -> pd.DataFrame:
    """The framed ``rows`` ``in_window`` (all of them without a window)."""
    if window is None:
        return rows
    inside = in_window(rows["event_time_ms"], window)
    return rows if inside.all() else rows_where(rows, inside)


@dataclass
class ReadEvents:
    """A batch of event pages read by Arrow (``read_event_pages``), not framed yet: the fields whose
    values repeat as ``dictionary_codes``, each event's own id and time as raw text, the times read, and
    each event's page with the pages' lead ids and channels."""

    repeated: dict[str, tuple[pa.Array, np.ndarray]]
    unique: dict[str, pa.Array | pa.ChunkedArray]
    event_time_ms: pd.Series
    page_of_event: np.ndarray
    lead_ids: list[Any]
    channels: list[Any]

    def __len__(self) -> int:
        return len(self.page_of_event)


def _read_events(data: pa.ChunkedArray, lead_ids: list[Any], channels: list[Any],
                 window: tuple[int, int] | None) -> ReadEvents:
    events = pc.list_flatten(data)  # an event that is null stays: a row of missing values
    page_of_event = np.repeat(np.arange(len(lead_ids)), pc.fill_null(pc.list_value_length(data), 0).to_numpy())
    event_time_ms = parse_epoch_ms(pd.Series(pd.arrays.ArrowStringArray(pc.struct_field(events, "eventUnixTimestamp"))))
    keep = in_window(event_time_ms, window) if window is not None else None
    if keep is not None and keep.all():
        keep = None
    if keep is not None:  # left out now: only the unique fields and the codes are filtered
        page_of_event = page_of_event[keep]
        event_time_ms = event_time_ms[keep].reset_index(drop=True)
    repeated, unique = {}, {}
    for field in EVENT_RECORD_FIELDS:
        values = pc.struct_field(events, field)
        if field in _REPEATED_EVENT_FIELDS:
            dictionary, codes = dictionary_codes(values)
            dictionary.validate(full=True)  # text that is not UTF-8 is refused here, while it can be decoded
            repeated[field] = (dictionary, codes if keep is None else codes[keep])
        else:
            unique[field] = values if keep is None else pc.filter(values, pa.array(keep))
            unique[field].validate(full=True)
    return ReadEvents(repeated, unique, event_time_ms, page_of_event, lead_ids, channels)


def read_events_frame(batches: list[ReadEvents]) -> pd.DataFrame:
    """``event_rows`` of batches read one after another, each column framed in one pass: a repeated
    field's distinct values cleaned once for all the batches."""
    columns = {}
    for source, column in EVENT_FIELDS.items():
        if source in _REPEATED_EVENT_FIELDS:
            columns[column] = categorical_of_codes([batch.repeated[source] for batch in batches])
        else:
            text = [batch.unique[source] for batch in batches]
            text = pa.chunked_array([c for part in text for c in getattr(part, "chunks", [part])], type=pa.string())
            columns[column] = text_column(pd.Series(pd.arrays.ArrowStringArray(text)))
    page_counts = np.cumsum([0, *(len(batch.lead_ids) for batch in batches)])
    page_of_event = np.concatenate([batch.page_of_event + first for batch, first in zip(batches, page_counts)])

    def own(field: str):
        return lambda: categorical_of_codes([batch.repeated[field] for batch in batches])
    lead_id = _page_values([i for batch in batches for i in batch.lead_ids], page_of_event, own("_lead_id"))
    channel = _page_values([c for batch in batches for c in batch.channels], page_of_event, own("_session_channel"))
    event_time_ms = pd.concat([batch.event_time_ms for batch in batches], ignore_index=True)
    return _event_columns(columns, lead_id, channel, event_time_ms)


def _page_values(values: list[Any], page_of_event: np.ndarray, own) -> pd.Series:
    """Each event's value from its page (``values``: one per page) as categorical text, or its own
    (``own()``: the record's field, read only when needed) where the page's is None. Each page's value
    is read once; its events hold its code."""
    values = pd.Series(values, dtype=object)
    per_page = categorical_text_column(values)
    taken = pd.Series(pd.Categorical.from_codes(per_page.cat.codes.to_numpy()[page_of_event],
                                                dtype=per_page.dtype))
    page_has_none = values.isna().to_numpy()
    if not page_has_none.any():
        return taken
    return first_present(taken.where(~page_has_none[page_of_event]), own())


def _read_event_pages(pages: list[bytes]) -> pa.ChunkedArray | None:
    """The ``data`` list of each page, read by Arrow; None when Arrow refuses any page."""
    # Pages on one line each (as LeadBoxer sends them) are split into blocks at newlines, which is faster
    # than finding where each page ends by parsing, as pretty-printed pages need.
    options = pa_json.ParseOptions(explicit_schema=_EVENT_PAGE_SCHEMA, unexpected_field_behavior="ignore",
                                   newlines_in_values=any(b"\n" in page for page in pages))
    try:
        # Blocks are read in parallel; a page must fit in one.
        block_size = max(1 << 20, 2 * max(map(len, pages)))
        table = pa_json.read_json(pa.BufferReader(b"\n".join(pages)), parse_options=options,
                                  read_options=pa_json.ReadOptions(block_size=block_size))
    except pa.ArrowInvalid:
        return None
    return table.column("data") if table.num_rows == len(pages) else None


def decoded_event_page(page: bytes) -> list[Any]:
    """The events of one undecoded page, decoded as the hook decodes any answer (an empty one has none)."""
    return _decoded_page(page, "an events page").get("data") or []


def _event_columns(columns: dict[str, pd.Series], lead_id: pd.Series, channel: pd.Series,
                   event_time_ms: pd.Series | None = None) -> pd.DataFrame:
    """``event_rows`` of the cleaned fields ``columns`` (by our names, ``EVENT_FIELDS``' values; the
    repeated ones categorical), each event's lead id and session channel (categorical text);
    ``event_time_ms``: the times, when already read."""
    index = columns["event_id"].index
    columns = {**columns, "session_channel": channel.set_axis(index),
               "use_id": first_present(lead_id.set_axis(index), columns["event_use_id"])}
    columns["event_time_ms"] = (parse_epoch_ms(columns["event_time_raw"]) if event_time_ms is None
                                else event_time_ms.set_axis(index))
    return pd.DataFrame(columns, index=index)[EVENT_ROW_COLUMNS]


class EventRows(_Pages):
    """A window's events, framed as they are read: from records (``add``) or undecoded pages
    (``add_page``), in the order given.

    Every ``page_rows`` records, or ``page_bytes`` of pages, are turned into Arrow-backed columns and let
    go, so a busy hour is never held in memory as a million dicts (which alone take several times the
    frame's size). Pages are framed on a worker thread while the next ones are fetched (Arrow works
    without Python's lock; over HTTP the fetching is mostly waiting), at most ``FRAMING_AHEAD`` batches
    at a time. With ``window`` (``(start_ms, end_ms)``) only the events inside it, or whose time cannot
    be read (validation rejects those with a reason), are kept."""

    def __init__(self, page_rows: int = EVENT_PAGE_ROWS, page_bytes: int = EVENT_PAGE_BYTES,
                 window: tuple[int, int] | None = None) -> None:
        super().__init__(page_rows)
        self.page_bytes = page_bytes
        self.window = window
        self._lead_ids: list[Any] = []
        self._channels: list[Any] = []
        self._pending_pages: list[bytes] = []
        self._pending_bytes = 0
        self._framing: ThreadPoolExecutor | None = None

    def add(self, records: list[Any], lead_id: Any = None, channel: Any = None) -> None:
        if self._pending_pages:
            self._frame_pending()
        self._records.extend(records)
        self._lead_ids.extend([lead_id] * len(records))
        self._channels.extend([channel] * len(records))
        self._frame_if_full()

    def add_page(self, page: bytes, lead_id: Any, channel: Any = None) -> None:
        """One undecoded page of a session's events (see ``event_page_rows``)."""
        if self._records:
            self._frame_pending()
        self._pending_pages.append(page)
        self._lead_ids.append(lead_id)
        self._channels.append(channel)
        self._pending_bytes += len(page)
        if self._pending_bytes >= self.page_bytes:
            self._frame_pending()

    def _frame_pending(self) -> None:
        if self._pending_pages:
            batch = (self._pending_pages, self._lead_ids, self._channels, self.window)
            self._clear_records()
            framing = [page for page in self._pages if isinstance(page, Future) and not page.done()]
            if len(framing) >= FRAMING_AHEAD:  # bounded: unframed pages are not piled up
                framing[0].result()
            if self._framing is None:
                self._framing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="frame-events")
            self._pages.append(self._framing.submit(read_event_pages, *batch))
        super()._frame_pending()

    def _framed_pages(self) -> None:
        """Wait for the worker: every batch read (its errors raised here)."""
        self._pages = [page.result() if isinstance(page, Future) else page for page in self._pages]
        self._framed = sum(map(len, self._pages))

    def flush(self) -> int:
        """Frame what is pending; the number of rows framed so far."""
        self._frame_pending()
        self._framed_pages()
        return self._framed

    def frame(self) -> pd.DataFrame:
        self.flush()
        if self._framing is not None:
            self._framing.shutdown()
            self._framing = None
        # Batches read by Arrow one after another are framed together, each column in one pass.
        framed: list[pd.DataFrame] = []
        for is_read, run in itertools.groupby(self._pages, key=lambda page: isinstance(page, ReadEvents)):
            run = list(run)
            framed += [read_events_frame(run)] if is_read else run
        self._pages = framed
        return super().frame()

    def _frame_records(self) -> pd.DataFrame:
        return _rows_in_window(event_rows(self._records, self._lead_ids, self._channels), self.window)

    def _clear_records(self) -> None:
        self._records, self._lead_ids, self._channels = [], [], []
        self._pending_pages, self._pending_bytes = [], 0


def distinct_present(column: pd.Series) -> pa.Array:
    """The distinct values present in a text column (categorical or not), as Arrow strings."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes = column.cat.codes.to_numpy()
        used = np.flatnonzero(np.bincount(codes[codes >= 0], minlength=len(column.cat.categories)))
        return pa.array(column.cat.categories.array.take(used), type=pa.string())
    return pa.array(column.dropna().astype("string").unique(), type=pa.string())


def distinct_codes(frame: pd.DataFrame, columns: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Each row's code for its combination of ``columns`` (missing counts as a value), numbered in order
    of first appearance, and the first row of each code, in code order (found without sorting).

    Several columns are worked out on integer codes (a categorical column's own, any other column's
    ``pd.factorize``), combined into one integer per row (re-numbered whenever the combinations could
    outgrow 64 bits), which is then factorised."""
    if len(columns) == 1:
        codes = np.asarray(pd.factorize(frame[columns[0]], use_na_sentinel=False)[0])
    else:
        key, size = np.zeros(len(frame), dtype=np.int64), 1
        for column in columns:
            column_codes, count = _value_codes(frame[column])
            if size * count >= 1 << 62:  # re-number the combinations seen so far: at most one per row
                key, uniques = pd.factorize(key)
                size = len(uniques)
            key, size = key * count + column_codes, size * count
        codes = np.asarray(pd.factorize(key)[0])
    # Codes are numbered in order of first appearance: a row is a code's first where it exceeds every
    # code before it.
    seen = np.maximum.accumulate(codes) if len(codes) else codes
    first = np.ones(len(codes), dtype=bool)
    first[1:] = codes[1:] > seen[:-1]
    return codes, np.flatnonzero(first)


def _value_codes(column: pd.Series) -> tuple[np.ndarray, int]:
    """Each row's value as an integer in ``[0, count)``, missing values included (as one value)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        return column.cat.codes.to_numpy().astype(np.int64) + 1, len(column.cat.categories) + 1
    codes, uniques = pd.factorize(column, use_na_sentinel=False)
    return np.asarray(codes, dtype=np.int64), max(len(uniques), 1)


def positions_in(index: pd.Index, values: pd.Series) -> np.ndarray:
    """``index.get_indexer(values)`` (-1: not in ``index``); a categorical column is looked up once per
    category, not once per row."""
    if not isinstance(values.dtype, pd.CategoricalDtype):
        return index.get_indexer(values)
    per_category = index.get_indexer(values.cat.categories)
    return take(per_category, values.cat.codes.to_numpy(), allow_fill=True, fill_value=-1)


def spread(values: pd.Series, position: np.ndarray, index: pd.Index) -> pd.Series:
    """``values`` taken at ``position`` (-1: missing) as a categorical column: each distinct value is
    stored once and every row holds a small code. Events repeat their lead's facts (and a site's pages)
    many times over, so this keeps a million-event frame a fraction of its size as plain text."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    taken = take(codes, position, allow_fill=True, fill_value=-1)
    return pd.Series(pd.Categorical.from_codes(taken, categories=pd.Index(uniques)), index=index, name=values.name)


def rows_where(frame: pd.DataFrame, keep: np.ndarray) -> pd.DataFrame:
    """``frame[keep]``, renumbered from 0. Arrow columns are filtered in Arrow, chunk by chunk (pandas
    takes them by row number, which first copies each column's chunks into one); categorical ones by
    their codes."""
    mask = pa.array(keep, type=pa.bool_())
    columns = {}
    for name in frame.columns:
        column = frame[name]
        if isinstance(column.dtype, pd.StringDtype) and column.dtype.storage == "pyarrow":
            columns[name] = pd.arrays.ArrowStringArray(pc.filter(column.array.__arrow_array__(), mask))
        elif isinstance(column.dtype, pd.CategoricalDtype):
            columns[name] = pd.Categorical.from_codes(column.cat.codes.to_numpy()[keep], dtype=column.dtype)
        else:
            columns[name] = column[keep].array
    return pd.DataFrame(columns, index=pd.RangeIndex(int(np.count_nonzero(keep))))


def plain(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its categorical columns turned back into their values' own dtype."""
    categorical = [column for column in frame if isinstance(frame[column].dtype, pd.CategoricalDtype)]
    if not categorical:
        return frame
    frame = frame.copy(deep=False)
    for column in categorical:
        frame[column] = plain_values(frame[column])
    return frame


def plain_values(column: pd.Series) -> pd.Series:
    """A categorical column's values in its categories' dtype (text categories are taken in Arrow, not
    through a Python object per row); any other column as it is."""
    if not isinstance(column.dtype, pd.CategoricalDtype):
        return column
    dtype = column.cat.categories.dtype
    if not isinstance(dtype, pd.StringDtype) or dtype.storage != "pyarrow":
        return column.astype(dtype)
    codes = column.cat.codes.to_numpy()
    values = column.cat.categories.array.__arrow_array__().take(pa.array(codes, mask=codes < 0))
    return pd.Series(pd.array(values, dtype=dtype), index=column.index, name=column.name)


def events_frame(events: list[dict[str, Any]] | pd.DataFrame, leads: pd.DataFrame, dataset_id: str) -> pd.DataFrame:
    """One row per event, joined to its lead's facts. Events keep their raw order. The lead facts are
    categorical columns (``spread``): every event of a lead shares its lead's values.

    ``events``: raw event records, or the frame ``EventRows.frame()`` made of them while they were read."""
    if isinstance(events, pd.DataFrame):
        rows = events
    else:
        collected = EventRows()
        collected.add(events)
        rows = collected.frame()
    # Each event takes the facts of the first row of its lead (repeated lead rows are validation's business).
    lead_facts = leads.dropna(subset=["use_id"]).drop_duplicates("use_id", keep="first")
    position = positions_in(pd.Index(lead_facts["use_id"]), rows["use_id"])  # -1: no such lead
    columns = {column: rows[column] for column in EVENT_ROW_COLUMNS if column != "event_use_id"}
    columns["dataset_id"] = pd.Series(pd.Categorical.from_codes(np.zeros(len(rows), dtype=np.int8), [dataset_id]),
                                      index=rows.index)
    for column in EVENT_LEAD_FACTS:
        if column in ("use_id", "in_segment"):
            continue
        columns[column] = spread(lead_facts[column], position, rows.index)
    columns["in_segment"] = pd.Series(take(lead_facts["in_segment"].to_numpy(dtype=bool), position, allow_fill=True,
                                           fill_value=False), index=rows.index)
    return pd.DataFrame(columns, index=rows.index)[EVENT_COLUMNS]


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
