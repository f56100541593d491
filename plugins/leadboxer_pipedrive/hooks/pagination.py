"""How each API pages its lists, in the shape of dlt's ``BasePaginator``: one loop (``read_pages``) asks
a paginator for the page's rows and the next request's cursor.

A read either reaches its last page or fails naming the endpoint: a cursor the read has already
followed (the server repeats itself), or a page that adds nothing while saying there is more, would
otherwise loop for ever or end early with half the list passing for all of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from leadboxer_pipedrive.exceptions import ApiError


class PaginationError(ApiError, AirflowFailException):
    """A list cannot be read to its end (repeated cursor, empty page claiming more, not a page). The
    same read gets the same pages, so the task fails at once; never taken for a refusal of the rows
    being loaded."""


def _data_list(body: Any) -> list[Any]:
    """``body["data"]`` as a list (an empty answer or ``"data": null`` is no rows)."""
    if body is None:
        return []
    data = body.get("data") if isinstance(body, dict) else ()
    if data is None:
        return []
    if not isinstance(data, list):
        raise ValueError('the answer is not a page ({"data": [...]})')
    return data


class Paginator:
    """One API's paging: which query parameter carries the cursor, where a page keeps its rows, and
    the cursor of the next page (``None`` on the last one)."""

    cursor_param: str = "cursor"

    def first_params(self, params: dict[str, Any]) -> dict[str, Any]:
        return params

    def rows(self, body: Any) -> list[Any]:
        """The page's rows: its ``data`` list, unless the API keeps them elsewhere."""
        return _data_list(body)

    def next_cursor(self, body: Any, params: dict[str, Any], rows: list[Any]) -> Any:
        raise NotImplementedError


class NextTokenPaginator(Paginator):
    """LeadBoxer: ``nextToken`` in the answer, sent back as ``nextToken``."""

    cursor_param = "nextToken"

    def next_cursor(self, body: Any, params: dict[str, Any], rows: list[Any]) -> Any:
        return (body or {}).get("nextToken")


class CursorPaginator(Paginator):
    """Pipedrive v2 lists: ``additional_data.next_cursor``, sent back as ``cursor``."""

    def next_cursor(self, body: Any, params: dict[str, Any], rows: list[Any]) -> Any:
        return ((body or {}).get("additional_data") or {}).get("next_cursor")


class SearchPaginator(CursorPaginator):
    """Pipedrive v2 searches: cursor paging; the rows are ``data.items[].item``."""

    def rows(self, body: Any) -> list[Any]:
        data = body.get("data") if isinstance(body, dict) else None
        items = data.get("items") if isinstance(data, dict) else None
        if not isinstance(items, list) or not all(isinstance(e, dict) and isinstance(e.get("item"), dict)
                                                  for e in items):
            # Never read as "not found": that would create a duplicate.
            raise ValueError("unreadable search answer")
        return [entry["item"] for entry in items]


class OffsetPaginator(Paginator):
    """Pipedrive v1 lists: ``start``/``limit``; ``more_items_in_collection`` and ``next_start`` in
    ``additional_data`` (the official spec) or in ``additional_data.pagination`` (some answers)."""

    cursor_param = "start"

    def first_params(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"start": 0, **params}

    def next_cursor(self, body: Any, params: dict[str, Any], rows: list[Any]) -> Any:
        additional = (body or {}).get("additional_data") or {}
        pagination = additional.get("pagination") or additional
        if not pagination.get("more_items_in_collection"):
            return None
        next_start = pagination.get("next_start")
        return int(next_start) if next_start is not None else int(params["start"]) + len(rows)


def read_pages(get: Callable[[dict[str, Any]], Any], service: str, path: str, params: dict[str, Any],
               paginator: Paginator) -> Iterator[list[Any]]:
    """The rows of every page, in order: ``get(params)`` fetches one page's decoded body."""
    params = paginator.first_params(dict(params))
    followed: set[str] = set()
    page = 1
    while True:
        body = get(params)
        try:
            rows = paginator.rows(body)
        except ValueError as exc:
            raise PaginationError(service, "GET", path, 200, f"{exc}: {str(body)[:200]}") from None
        yield rows
        cursor = paginator.next_cursor(body, params, rows)
        if cursor in (None, ""):
            return
        problem = _why_unfollowable(cursor, followed, rows)
        if problem:
            raise PaginationError(service, "GET", path, 200,
                                  f"page {page}: {problem}; the list cannot be read to its end")
        followed.add(str(cursor))
        params = {**params, paginator.cursor_param: cursor}
        page += 1


def _why_unfollowable(cursor: Any, followed: set[str], rows: list[Any]) -> str | None:
    if not isinstance(cursor, (str, int)) or isinstance(cursor, bool):
        return f"next-page cursor {str(cursor)[:40]!r} is not a cursor"
    if str(cursor) in followed:
        return f"next-page cursor {str(cursor)[:40]!r} is repeated (the read already followed it)"
    if not rows:
        return "the page is empty but says there are more"
    return None


NEXT_TOKEN = NextTokenPaginator()
CURSOR = CursorPaginator()
SEARCH = SearchPaginator()
OFFSET = OffsetPaginator()
