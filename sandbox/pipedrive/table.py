"""The generic table behind every Pipedrive sandbox entity: rows by id, and what lists and searches do.

A list endpoint is declared as a ``Query``: its ``filters`` (query arguments that narrow the rows), an
optional ``Sort`` (``sort_by``/``sort_direction``), its ``paging`` (v2 ``CURSOR``: ``cursor``/``limit`` ->
``additional_data.next_cursor``; v1 ``START``: ``start``/``limit`` -> ``additional_data.pagination``) and a
``scope`` (rows the list never shows, e.g. archived ones). A search endpoint is declared as a ``Search``:
the fields ``fields=`` may name, each with how to read its texts from a row, plus filters. Every search
scores with the one ``match_score`` and hides rows younger than the search lag.

Arguments are read in one fixed order (v1 paging, filters in declared order, sort, v2 paging), so when
several are bad the first one decides the error. A request flagged ``repeat_cursor`` (a fault rule, see
``sandbox/faults.py``) gets a next-page pointer back at the page it was served.
"""

from __future__ import annotations

import base64
import copy
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sandbox.common import Request
from sandbox.pipedrive.checks import (
    bad_request,
    bad_request_v1,
    int_key,
    not_found,
    ok,
    parse_bool_arg,
    parse_ids_arg,
    parse_int_arg,
    parse_list_arg,
    parse_time_arg,
    rfc3339,
    v1_arg,
)

Row = dict[str, Any]
MAX_LIMIT = 500
_v1_int = v1_arg(parse_int_arg)


def render(entity: Row, nullable: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The answer shape of a stored row: internal ``_keys`` dropped, ``None`` left out unless nullable."""
    return {key: copy.deepcopy(value) for key, value in entity.items()
            if not key.startswith("_") and (value is not None or key in nullable)}


def by_id(row: Row) -> Any:
    return row["id"]


# ----------------------------------------------------------------------------- filters

@dataclass(frozen=True)
class Filter:
    """A query argument: ``parse(request, arg)`` reads it (``None``: not given) and ``test(row, value)``
    keeps a row. Without ``test`` the argument only shapes the answer (e.g. ``include_fields``)."""

    arg: str
    parse: Callable[[Request, str], Any]
    test: Callable[[Row, Any], bool] | None = None


def equals(arg: str, field_name: str | None = None,
           parse: Callable[[Request, str], Any] = parse_int_arg) -> Filter:
    """Rows whose ``field_name`` (default: the argument's name) equals the argument."""
    key = field_name or arg
    return Filter(arg, parse, lambda row, value: row.get(key) == value)


IDS = Filter("ids", parse_ids_arg, lambda row, ids: row["id"] in ids)
UPDATED_SINCE = Filter("updated_since", parse_time_arg, lambda row, since: row["_updated"] >= since)
UPDATED_UNTIL = Filter("updated_until", parse_time_arg, lambda row, until: row["_updated"] < until)
UPDATED = (UPDATED_SINCE, UPDATED_UNTIL)


# ----------------------------------------------------------------------------- sort

_STORED = {"add_time": "_added", "update_time": "_updated"}  # sort_by -> the row's sortable value


def stored_value(sort_by: str) -> Callable[[Row], Any]:
    """Order by the row's value of ``sort_by`` (rows without one last), then by id."""
    key = _STORED.get(sort_by, sort_by)
    return lambda row: (row.get(key) is None, row.get(key) or 0, row["id"])


@dataclass(frozen=True)
class Sort:
    """``sort_by`` (one of ``fields``, default ``id``) and ``sort_direction`` (``asc``/``desc``).

    ``keys`` overrides how a ``sort_by`` value orders rows (default: ``stored_value``); for ``loose``
    values ``sort_direction`` is not checked (anything but ``desc`` is ascending); ``listed`` says whether
    a bad ``sort_by`` error lists the accepted values.
    """

    fields: tuple[str, ...] = ("id", "update_time", "add_time")
    keys: Mapping[str, Callable[[Row], Any]] = field(default_factory=dict)
    loose: frozenset[str] = frozenset()
    listed: bool = True

    def parse(self, request: Request) -> tuple[Callable[[Row], Any], bool]:
        sort_by = request.arg("sort_by") or "id"
        if sort_by not in self.fields:
            hint = f": one of {', '.join(self.fields)}" if self.listed else ""
            raise bad_request(f"Invalid query parameter 'sort_by'{hint}")
        direction = request.arg("sort_direction") or "asc"
        if sort_by not in self.loose and direction not in ("asc", "desc"):
            raise bad_request("Invalid query parameter 'sort_direction': asc or desc")
        return self.keys.get(sort_by) or stored_value(sort_by), direction == "desc"


# ----------------------------------------------------------------------------- paging

class Window(NamedTuple):
    offset: int
    limit: int
    sent: str | None = None  # the cursor the request sent (v2)


def encode_cursor(offset: int) -> str:
    raw = json.dumps({"offset": offset}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        offset = int(data["offset"])
    except (ValueError, KeyError, TypeError) as exc:
        raise bad_request("Invalid cursor") from exc
    if offset < 0:
        raise bad_request("Invalid cursor")
    return offset


class CursorPaging:
    """v2: ``limit`` (1..500, default 100) and an opaque ``cursor``; ``next_cursor`` is left out at the
    end (the spec types it as a non-null string). Read after every other argument."""

    reads_first = False

    def parse(self, request: Request) -> Window:
        limit = parse_int_arg(request, "limit")
        if limit is None:
            limit = 100
        elif limit < 1 or limit > MAX_LIMIT:
            raise bad_request(f"Invalid query parameter 'limit': must be between 1 and {MAX_LIMIT}")
        cursor = request.arg("cursor")
        return Window(decode_cursor(cursor) if cursor else 0, limit, cursor)

    @staticmethod
    def cut(rows: list[Any], window: Window, repeat: bool = False) -> tuple[list[Any], dict[str, Any]]:
        end = window.offset + window.limit
        additional: dict[str, Any] = {}
        if repeat:  # back at this very page: the cursor sent, or the one of the first page
            additional["next_cursor"] = window.sent or encode_cursor(0)
        elif end < len(rows):
            additional["next_cursor"] = encode_cursor(end)
        return rows[window.offset:end], additional

    def page(self, request: Request, rows: list[Any]) -> tuple[list[Any], dict[str, Any]]:
        return self.cut(rows, self.parse(request), request.repeat_cursor)


class StartPaging:
    """v1: ``start`` (default 0) and ``limit`` (default 100); read before any other argument.

    The spec puts ``start``/``limit``/``more_items_in_collection`` directly in ``additional_data``;
    Pipedrive's docs describe ``additional_data.pagination`` (with ``next_start``). Both are sent.
    """

    reads_first = True

    def parse(self, request: Request) -> Window:
        start = _v1_int(request, "start") or 0
        limit = _v1_int(request, "limit") or 100
        if start < 0 or limit < 1 or limit > MAX_LIMIT:
            raise bad_request_v1(f"Invalid 'start'/'limit': limit must be between 1 and {MAX_LIMIT}")
        return Window(start, limit)

    @staticmethod
    def cut(rows: list[Any], window: Window, repeat: bool = False) -> tuple[list[Any], dict[str, Any]]:
        start, limit = window.offset, window.limit
        more = repeat or start + limit < len(rows)
        pagination: dict[str, Any] = {"start": start, "limit": limit, "more_items_in_collection": more}
        if more:  # on repeat: back at this very page
            pagination["next_start"] = start if repeat else start + limit
        additional = {"start": start, "limit": limit, "more_items_in_collection": more, "pagination": pagination}
        return rows[start:start + limit], additional

    def page(self, request: Request, rows: list[Any]) -> tuple[list[Any], dict[str, Any]]:
        return self.cut(rows, self.parse(request), request.repeat_cursor)


CURSOR = CursorPaging()
START = StartPaging()
Paging = CursorPaging | StartPaging


# ----------------------------------------------------------------------------- queries and searches

@dataclass(frozen=True)
class Query:
    """What a list endpoint reads from the query string, and the rows it may ever show (``scope``)."""

    filters: tuple[Filter, ...] = ()
    sort: Sort | None = None  # None: the table's own order, whatever ``sort_by`` says
    paging: Paging = CURSOR
    scope: Callable[[Row], bool] | None = None


@dataclass(frozen=True)
class Search:
    """A search endpoint: the fields ``fields=`` may name (in the order its error lists them), each with
    how to read that field's texts from a row, and the filters it takes."""

    fields: Mapping[str, Callable[[Row], Iterable[str]]]
    filters: tuple[Filter, ...] = ()


class Hit(NamedTuple):
    score: float
    row: Row
    matched: dict[str, list[str]]  # field -> the texts of that field that matched


class Page(NamedTuple):
    rows: list[Any]
    additional: dict[str, Any]
    args: dict[str, Any]  # filter argument -> parsed value


@dataclass
class Args:
    """The query arguments of one request, parsed in the endpoint's order."""

    values: dict[str, Any]
    tests: list[tuple[Callable[[Row, Any], bool], Any]]
    window: Window
    order: tuple[Callable[[Row], Any], bool] | None

    @classmethod
    def read(cls, request: Request, filters: tuple[Filter, ...], sort: Sort | None, paging: Paging) -> Args:
        window = paging.parse(request) if paging.reads_first else None
        values = {f.arg: f.parse(request, f.arg) for f in filters}
        order = sort.parse(request) if sort else None
        if window is None:
            window = paging.parse(request)
        tests = [(f.test, values[f.arg]) for f in filters if f.test and values[f.arg] is not None]
        return cls(values, tests, window, order)

    def keeps(self, row: Row) -> bool:
        return all(test(row, value) for test, value in self.tests)


def match_score(haystack: str, term: str, exact: bool) -> float | None:
    """Exact: the whole text, case-insensitive (score 1). Partial: a substring, scored by how much of
    the text it covers (0.1..1)."""
    hay = haystack.casefold()
    needle = term.casefold()
    if exact:
        return 1.0 if hay == needle else None
    if needle in hay:
        return round(0.1 + 0.9 * len(needle) / max(len(hay), 1), 4)
    return None


def search_terms(request: Request, allowed: tuple[str, ...]) -> tuple[str, bool, tuple[str, ...]]:
    """``term``, ``exact_match`` and ``fields`` (default: all of ``allowed``) of a search request."""
    term = request.arg("term")
    exact = bool(parse_bool_arg(request, "exact_match"))
    if term is None or term == "":
        raise bad_request("Query parameter 'term' is required")
    if len(term) < (1 if exact else 2):
        raise bad_request("Search term must be at least 2 characters long (1 with exact_match)")
    fields = parse_list_arg(request, "fields")
    for name in fields:
        if name not in allowed:
            raise bad_request(f"Invalid 'fields' value '{name}': one of {', '.join(allowed)}")
    return term, exact, tuple(fields) or allowed


def score_row(row: Row, search: Search, chosen: tuple[str, ...], term: str, exact: bool) -> Hit | None:
    """The row's best score over the chosen fields' texts, and which texts matched; None: no match."""
    scores: list[float] = []
    matched: dict[str, list[str]] = {}
    for name, read in search.fields.items():
        if name not in chosen:
            continue
        for text in read(row):
            score = match_score(text, term, exact)
            if score is not None:
                scores.append(score)
                matched.setdefault(name, []).append(text)
    return Hit(max(scores), row, matched) if scores else None


# ----------------------------------------------------------------------------- the table

class Table:
    """One entity kind: rows by id, ids that keep increasing, and the list and search machinery.

    ``label`` names the entity in errors ("Person not found", "Person with id 5 not found"); ``render``
    is its answer shape; ``key`` reads a path ``{id}``; ``order`` is the table's own order.
    """

    def __init__(self, label: str, render: Callable[[Row], dict[str, Any]], *,
                 key: Callable[[str], Any] = int_key, order: Callable[[Row], Any] = by_id) -> None:
        self.label = label
        self.render = render
        self.key = key
        self.order = order
        self.rows: dict[Any, Row] = {}
        self._next_id = 1

    # -- rows

    def clear(self, restart_ids: bool = False) -> None:
        self.rows = {}
        if restart_ids:
            self._next_id = 1

    def new_id(self) -> int:
        value = self._next_id
        self._next_id += 1
        return value

    def add(self, row: Row) -> Row:
        self.rows[row["id"]] = row
        return row

    def get(self, key: Any) -> Row | None:
        return self.rows.get(key)

    def __contains__(self, key: Any) -> bool:
        return key in self.rows

    def values(self) -> list[Row]:
        return list(self.rows.values())

    def ordered(self, rows: Iterable[Row] | None = None) -> list[Row]:
        return sorted(self.rows.values() if rows is None else rows, key=self.order)

    def rendered(self) -> list[dict[str, Any]]:
        return [self.render(row) for row in self.rows.values()]

    def find(self, request: Request) -> Row:
        """The row named by the path's ``{id}``; 404 when there is none."""
        row = self.rows.get(self.key(request.path_params["id"]))
        if row is None:
            raise not_found(f"{self.label} not found")
        return row

    def require(self, key: Any, err: Callable[[str], Exception] = bad_request) -> None:
        """A reference from a body: ``None`` or the id of an existing row."""
        if key is not None and key not in self.rows:
            raise err(f"{self.label} with id {key} not found")

    # -- lists and searches

    def list(self, request: Request, query: Query) -> Page:
        args = Args.read(request, query.filters, query.sort, query.paging)
        rows = [row for row in self.rows.values()
                if (query.scope is None or query.scope(row)) and args.keeps(row)]
        if args.order is None:
            rows = self.ordered(rows)
        else:
            key, reverse = args.order
            rows.sort(key=key, reverse=reverse)
        page, additional = query.paging.cut(rows, args.window, request.repeat_cursor)
        return Page(page, additional, args.values)

    def answer_list(self, request: Request, query: Query) -> tuple[int, Any]:
        page = self.list(request, query)
        return ok([self.render(row) for row in page.rows], page.additional)

    def search(self, request: Request, search: Search, lag: float) -> Page:
        """Rows indexed at least ``lag`` seconds ago that pass the filters, best score first."""
        term, exact, chosen = search_terms(request, tuple(search.fields))
        args = Args.read(request, search.filters, None, CURSOR)
        now = time.monotonic()
        hits = []
        for row in self.ordered():
            if now - row["_touched"] >= lag and args.keeps(row):
                hit = score_row(row, search, chosen, term, exact)
                if hit is not None:
                    hits.append(hit)
        hits.sort(key=lambda hit: (-hit.score, self.order(hit.row)))
        page, additional = CURSOR.cut(hits, args.window, request.repeat_cursor)
        return Page(page, additional, args.values)


def touch(row: Row, now: float, created: bool = False) -> None:
    """Stamp a v2 row as created and/or updated ``now`` (RFC 3339), and as just indexed for search."""
    if created:
        row["_added"] = now
        row["add_time"] = rfc3339(now)
    row["_updated"] = now
    row["update_time"] = rfc3339(now)
    row["_touched"] = time.monotonic()


def merge_custom_fields(row: Row, values: dict[str, Any] | None) -> None:
    """Merge a checked ``custom_fields`` body object into the row's, key by key (a null value clears that key)."""
    for key, value in (values or {}).items():
        if value is None:
            row["custom_fields"].pop(key, None)
        else:
            row["custom_fields"][key] = copy.deepcopy(value)
