"""The dataset as the server sees it: indexes, tolerant field readers and lead-list queries.

Records are served exactly as given. Only the server's own filters read fields, and they never raise:
what cannot be read simply does not match.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

# Below this an epoch number is taken to be in seconds (1e11 ms is 1973; 1e11 s is year 5138).
_SECONDS_LIMIT = 1e11


def parse_epoch_ms(value: Any) -> int | None:
    """Epoch ms from a number or string (ms or seconds, or ISO-8601); None when unreadable."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            number = float(text)
        except ValueError:
            try:
                moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                return None
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return int(moment.timestamp() * 1000)
    else:
        return None
    if not math.isfinite(number) or number <= 0:
        return None
    if number < _SECONDS_LIMIT:
        number *= 1000
    if number > 1e15:  # beyond year 33658: garbage
        return None
    return int(number)


def has_value(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, (list, dict, tuple, set)):
        return bool(value)
    return True


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value) if isinstance(value, str) else value
        if isinstance(number, float) and not number.is_integer():
            return None
        return int(number)
    except (TypeError, ValueError, OverflowError):
        return None


def _score(lead: Any) -> float:
    if not isinstance(lead, dict):
        return -1.0
    try:
        score = float(lead.get("esScore"))
    except (TypeError, ValueError):
        return -1.0
    return score if math.isfinite(score) else -1.0


def _split(record: Any, nested: str) -> tuple[Any, list[Any]]:
    """A record as served (without its ``nested`` list) and that list ([] when absent or not a list)."""
    if not isinstance(record, dict):
        return record, []
    children = record.get(nested)
    return {k: v for k, v in record.items() if k != nested}, children if isinstance(children, list) else []


def _times(records: list[Any], field: str) -> list[int]:
    """The readable epoch-ms values of ``field`` in the records that are objects."""
    times = (parse_epoch_ms(record.get(field)) for record in records if isinstance(record, dict))
    return [ts for ts in times if ts is not None]


def _segment_ids(lead: Any) -> frozenset[int]:
    """The lead's ``segments`` (a list, or one id) as integers; unreadable ids are dropped."""
    segment_ids = lead.get("segments") if isinstance(lead, dict) else None
    if isinstance(segment_ids, (list, tuple)):
        ids = {_as_int(s) for s in segment_ids}
    else:
        ids = {_as_int(segment_ids)} if segment_ids is not None else set()
    return frozenset(i for i in ids if i is not None)


class QueryError(ValueError):
    """A lead-list parameter the server cannot understand (answered with 400)."""


def day_window(spec: str, tz: ZoneInfo, today: date | None = None) -> tuple[str, int, int]:
    """``field|op|value`` -> (field, start ms inclusive, end ms exclusive), days counted in ``tz``."""
    parts = spec.split("|")
    if len(parts) != 3:
        raise QueryError(f"criteriaTimeFilter must be field|operator|value, got {spec!r}")
    field, op, value = (p.strip() for p in parts)
    if field not in ("eventEsTimestamp", "first_session_unix_timestamp"):
        raise QueryError(f"unsupported criteriaTimeFilter field {field!r}")
    today = today or datetime.now(tz).date()
    op = op.lower()
    try:
        if op == "between":
            first_text, last_text = value.split("-")
            first = datetime.strptime(first_text.strip(), "%d/%m/%Y").date()
            last = datetime.strptime(last_text.strip(), "%d/%m/%Y").date()
        elif op in ("exactly", "lessthan"):
            days = int(value)
            if days < 0:
                raise ValueError(value)
            first = today - timedelta(days=days)
            last = first if op == "exactly" else today
        else:
            raise QueryError(f"unsupported criteriaTimeFilter operator {op!r}: use between, exactly or lessthan")
    except ValueError as exc:
        raise QueryError(f"invalid criteriaTimeFilter value {value!r}") from exc
    if last < first:
        first, last = last, first
    start = datetime.combine(first, time(0), tzinfo=tz)
    end = datetime.combine(last + timedelta(days=1), time(0), tzinfo=tz)
    return field, int(start.timestamp() * 1000), int(end.timestamp() * 1000)


class LeadStore:
    """Indexes over one dataset dict (``{"site", "segments", "leads": [...]}``)."""

    def __init__(self, data: Any) -> None:
        data = data if isinstance(data, dict) else {}
        site = data.get("site")
        self.site = "" if site is None else str(site)
        segments = data.get("segments")
        self.segments: list[Any] = list(segments) if isinstance(segments, list) else []
        raw_leads = data.get("leads")
        raw_leads = raw_leads if isinstance(raw_leads, list) else []
        self.leads: list[Any] = []  # as served: without the nested "sessions"
        self.by_id: dict[str, Any] = {}
        self.sessions: dict[str, list[Any]] = {}
        self.events: dict[str, list[Any]] = {}
        self.last_seen: list[int | None] = []
        self.first_seen: list[int | None] = []
        self.members: list[frozenset[int]] = []
        for raw in raw_leads:
            self._add(raw)
        self.order_desc = self._order(self.last_seen, reverse=True)
        self.order_asc = self._order(self.last_seen, reverse=False)
        scores = [_score(lead) for lead in self.leads]
        self.order_score_desc = self._order(scores, reverse=True)
        self.order_score_asc = self._order(scores, reverse=False)
        self._cache: OrderedDict[tuple, list[int]] = OrderedDict()
        self._lock = threading.Lock()

    def _add(self, raw: Any) -> None:
        lead, sessions_raw = _split(raw, "sessions")
        sessions: list[Any] = []
        event_times: list[int] = []
        for session_raw in sessions_raw:
            session, events = _split(session_raw, "events")
            sessions.append(session)
            session_id = session_raw.get("session_id") if isinstance(session_raw, dict) else None
            if session_id is not None and events:
                self.events.setdefault(str(session_id), []).extend(events)
            event_times += _times(events, "eventUnixTimestamp")
        lead_id = raw.get("use_id") if isinstance(raw, dict) else None
        if lead_id is not None:
            self.by_id.setdefault(str(lead_id), lead)
            if sessions:
                self.sessions.setdefault(str(lead_id), []).extend(sessions)
        self.leads.append(lead)
        self.last_seen.append(self._derive(lead, ("eventEsTimestamp", "lastEvent"), event_times, max))
        session_times = _times(sessions_raw, "session_unix_timestamp")
        self.first_seen.append(self._derive(lead, ("first_session_unix_timestamp",),
                                            session_times or event_times, min))
        self.members.append(_segment_ids(lead))

    @staticmethod
    def _derive(lead: Any, keys: tuple[str, ...], fallback: list[int], pick) -> int | None:
        """The first present field decides (garbage -> None); with none present, use the events."""
        if isinstance(lead, dict):
            for key in keys:
                if has_value(lead.get(key)):
                    return parse_epoch_ms(lead[key])
        return pick(fallback) if fallback else None

    @staticmethod
    def _order(values: list, reverse: bool) -> list[int]:
        """Indexes sorted by value; unreadable values last; ties keep the dataset order (stable pages)."""
        known = [i for i, v in enumerate(values) if v is not None and v != -1.0]
        unknown = [i for i, v in enumerate(values) if v is None or v == -1.0]
        known.sort(key=lambda i: (-values[i] if reverse else values[i], i))
        return known + unknown

    def query(self, *, segment_id: int | None, window: tuple[str, int, int] | None,
              required_fields: tuple[str, ...], sort: tuple[str, str]) -> list[int]:
        """Indexes of the matching leads, in order. Cached: the data does not change while served."""
        key = (segment_id, window, required_fields, sort)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        field, direction = sort
        if field == "_score":
            order = self.order_score_asc if direction == "asc" else self.order_score_desc
        else:
            order = self.order_asc if direction == "asc" else self.order_desc
        result = []
        times = None
        if window:
            times = self.last_seen if window[0] == "eventEsTimestamp" else self.first_seen
        for index in order:
            if segment_id is not None and segment_id not in self.members[index]:
                continue
            if times is not None:
                ts = times[index]
                if ts is None or not window[1] <= ts < window[2]:
                    continue
            if required_fields:
                lead = self.leads[index]
                if not isinstance(lead, dict) or not all(has_value(lead.get(f)) for f in required_fields):
                    continue
            result.append(index)
        with self._lock:
            self._cache[key] = result
            while len(self._cache) > 64:
                self._cache.popitem(last=False)
        return result
