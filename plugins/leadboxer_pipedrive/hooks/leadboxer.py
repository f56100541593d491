"""LeadBoxer v1 REST hook: leads of a segment, their sessions and events."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

from leadboxer_pipedrive.exceptions import TransientApiError
from leadboxer_pipedrive.hooks.base import JsonApiHook

# After a ``"nextToken"`` that may hold a next page's token: a colon and anything but null.
_NON_NULL_VALUE = re.compile(rb'\s*+:\s*+(?!null)')  # possessive: no backtracking to before "null"
# A page that ends with ``, "nextToken": null}`` (as LeadBoxer's do) says so at its top level: the
# brace closes the page, and the comma (or opening brace) before the key is no escaped quote's.
_ENDS_WITH_NULL_TOKEN = re.compile(rb'[{,]\s*"nextToken"\s*:\s*null\s*}\s*\Z')


class LeadBoxerHook(JsonApiHook):
    """Reads one LeadBoxer account through an Airflow connection.

    Connection: ``host`` = the API base URL (``https://data.leadboxer.com``), ``password`` = the API key
    (sent only in the ``x-api-key`` header). ``extra``: ``page_size`` (default 500), ``timeout``,
    ``verify``, ``dataset_id`` (used by the connection test only).
    """

    conn_name_attr = "leadboxer_conn_id"
    default_conn_name = "leadboxer_default"
    conn_type = "leadboxer"
    hook_name = "LeadBoxer"

    service_name = "LeadBoxer"
    default_host = "https://data.leadboxer.com"
    auth_header = "x-api-key"
    default_page_size = 500

    # Connection-form metadata for Airflow versions that read it from the hook (3.2+ reads the same
    # metadata from get_provider_info() without importing the hook).
    @staticmethod
    def get_ui_field_behaviour() -> dict[str, Any]:
        from leadboxer_pipedrive.get_provider_info import ui_field_behaviour

        return ui_field_behaviour("leadboxer")

    @staticmethod
    def get_connection_form_widgets() -> dict[str, Any]:
        from leadboxer_pipedrive.get_provider_info import connection_form_widgets

        return connection_form_widgets("leadboxer")

    def __init__(self, leadboxer_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(conn_id=leadboxer_conn_id, **kwargs)
        self.leadboxer_conn_id = leadboxer_conn_id

    @property
    def page_size(self) -> int:
        self.get_conn()
        return int(self.extras.get("page_size", self.default_page_size))

    def paginate(self, path: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Yield every row of a list endpoint, following ``nextToken``."""
        for body in self._pages(path, params, raw=False, next_token=lambda body: (body or {}).get("nextToken")):
            yield from (body or {}).get("data") or []

    def raw_pages(self, path: str, params: dict[str, Any]) -> Iterator[bytes]:
        """Every page of a list endpoint as its body's bytes, undecoded, following ``nextToken``: a busy
        hour's events are read from them straight into Arrow columns (``frames.EventRows.add_page``)
        instead of becoming a Python dict each."""
        return self._pages(path, params, raw=True, next_token=lambda body: self._next_token_of_raw(path, body))

    def read_pages(self, path: str, params: dict[str, Any], read: Callable[[bytes], Any]) -> Iterator[Any]:
        """Every page of a list endpoint, its undecoded body read by ``read`` (``frames.lead_page``):
        what ``read`` returns is yielded, and its ``next_token`` is the token of the page after it."""
        return self._pages(path, params, raw=True, read=read, next_token=lambda page: page.next_token)

    def _pages(self, path: str, params: dict[str, Any], *, raw: bool, next_token: Callable[[Any], Any],
               read: Callable[[Any], Any] | None = None) -> Iterator[Any]:
        params = {"limit": self.page_size, **params}
        seen_tokens: set[str] = set()
        while True:
            body = self.request("GET", path, params=params, raw=raw)
            page = body if read is None else read(body)
            yield page
            token = next_token(page)
            if not token or token in seen_tokens:  # a repeated token would loop forever
                return
            seen_tokens.add(token)
            params = {**params, "nextToken": token}

    def _next_token_of_raw(self, path: str, body: bytes) -> Any:
        """The ``nextToken`` of an undecoded page. A page that mentions no non-null ``nextToken`` at all
        (the last page: most sessions have one) is not decoded; any other is, to read its own."""
        if not body or _ENDS_WITH_NULL_TOKEN.search(body, max(0, len(body) - 64)):
            return None  # the last member of the outermost object: its own token, and null
        at = body.find(b'"nextToken"')  # a plain search first: a regular expression is much slower
        while at != -1 and not _NON_NULL_VALUE.match(body, at + len(b'"nextToken"')):
            at = body.find(b'"nextToken"', at + 1)
        if at == -1:
            return None
        try:
            decoded = json.loads(body)
        except ValueError:
            raise TransientApiError(self.service_name, "GET", path, None, "answer is not JSON") from None
        return decoded.get("nextToken") if isinstance(decoded, dict) else None

    def iter_leads_seen_since(self, dataset_id: str, segment_id: int | str | None,
                              since: datetime, until: datetime | None = None) -> Iterator[dict[str, Any]]:
        """Leads of the segment last seen on or after ``since``'s day (UTC).

        LeadBoxer's time filter is day-granular and applies to the lead's *last* event, so a lead active
        in a past hour is found by asking for "last seen between that day and today"; callers then keep
        only the events inside their window.
        """
        yield from self.paginate("/v1/leads", self._seen_since_params(dataset_id, segment_id, since, until))

    def read_lead_pages_seen_since(self, dataset_id: str, segment_id: int | str | None, since: datetime,
                                   read: Callable[[bytes], Any], until: datetime | None = None) -> Iterator[Any]:
        """``iter_leads_seen_since``' pages, each undecoded body read by ``read`` (see ``read_pages``)."""
        return self.read_pages("/v1/leads", self._seen_since_params(dataset_id, segment_id, since, until), read)

    @staticmethod
    def _seen_since_params(dataset_id: str, segment_id: int | str | None, since: datetime,
                           until: datetime | None) -> dict[str, Any]:
        until = until or datetime.now(timezone.utc)
        last_day = max(until, since) + timedelta(days=1)
        return {
            "site": dataset_id,
            "segmentId": segment_id,
            "criteriaTimeFilter": f"eventEsTimestamp|between|{since:%d/%m/%Y}-{last_day:%d/%m/%Y}",
            "timeZone": "UTC",
            "sortBy": "lastEvent|desc",
        }

    def iter_sessions(self, dataset_id: str, lead_id: str) -> Iterator[dict[str, Any]]:
        yield from self.paginate("/v1/leads/sessions", {"site": dataset_id, "leadId": lead_id})

    def iter_events(self, dataset_id: str, session_id: str) -> Iterator[dict[str, Any]]:
        yield from self.paginate("/v1/leads/events", {"site": dataset_id, "sessionId": session_id})

    def iter_event_pages(self, dataset_id: str, session_id: str) -> Iterator[bytes]:
        """``iter_events``' pages, undecoded (see ``raw_pages``)."""
        return self.raw_pages("/v1/leads/events", {"site": dataset_id, "sessionId": session_id})

    def list_segments(self, dataset_id: str) -> list[dict[str, Any]]:
        return (self.request("GET", "/v1/segments", params={"datasetId": dataset_id}) or {}).get("data") or []

    def test_connection(self) -> tuple[bool, str]:
        try:
            self.get_conn()
            dataset = self.extras.get("dataset_id", "connection-test")
            self.request("GET", "/v1/leads", params={"site": dataset, "limit": 1})
        except Exception as exc:  # noqa: BLE001 - the UI shows the message
            return False, str(exc)
        return True, "Connected to LeadBoxer"
