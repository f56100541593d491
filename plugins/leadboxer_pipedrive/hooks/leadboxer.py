"""LeadBoxer v1 REST hook: leads of a segment, their sessions and events."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import requests

from leadboxer_pipedrive.hooks.base import JsonApiHook
from leadboxer_pipedrive.hooks.pagination import NEXT_TOKEN, Paginator
from leadboxer_pipedrive.ratelimit import SlidingWindowLimiter


class LeadBoxerHook(JsonApiHook):
    """Reads one LeadBoxer account through an Airflow connection.

    Connection: ``host`` = the API base URL (``https://data.leadboxer.com``), ``password`` = the API key
    (sent only in the ``x-api-key`` header). ``extra``: ``page_size`` (default 500),
    ``max_concurrency`` (leads whose sessions and events the extract reads at once, default 8),
    ``requests_per_second`` (a client-side cap, default 100), ``timeout``, ``verify``, ``dataset_id``
    (used by the connection test only).

    The hook is safe to share between threads: the extract reads several leads' sessions and events at
    once. A 429 pauses every thread for the ``Retry-After`` the server names.
    """

    conn_name_attr = "leadboxer_conn_id"
    default_conn_name = "leadboxer_default"
    conn_type = "leadboxer"
    hook_name = "LeadBoxer"

    service_name = "LeadBoxer"
    default_host = "https://data.leadboxer.com"
    auth_header = "x-api-key"
    default_page_size = 500
    default_max_concurrency = 8
    default_requests_per_second = 100

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
        self._limiter: SlidingWindowLimiter | None = None

    def configure_limits(self) -> None:
        self._limiter = SlidingWindowLimiter(self._positive_extra("requests_per_second",
                                                                  self.default_requests_per_second), 1.0)

    def pool_size(self) -> int:
        # A pooled connection for every request in flight: the readers' and the lead list's.
        return max(10, self._positive_extra("max_concurrency", self.default_max_concurrency) + 1)

    def _positive_extra(self, name: str, default: int) -> int:
        value = self.extras.get(name)
        value = default if value in (None, "") else int(value)
        if value < 1:
            raise ValueError(f"connection {self.conn_id!r}: extra {name} must be at least 1, not {value}")
        return value

    @property
    def page_size(self) -> int:
        self.get_conn()
        return self._positive_extra("page_size", self.default_page_size)

    @property
    def max_concurrency(self) -> int:
        """How many leads the extract reads at once (connection extra ``max_concurrency``)."""
        self.get_conn()
        return self._positive_extra("max_concurrency", self.default_max_concurrency)

    def before_request(self, method: str, path: str) -> None:
        self._limiter.acquire()

    def after_response(self, method: str, path: str, response: requests.Response) -> None:
        if response.status_code == 429:  # every thread backs off, not only the one refused
            self._limiter.pause(min(self.retry_after_seconds(response) or 1.0, self.backoff_max))

    # -- paged reads ------------------------------------------------------------------------------
    def pages(self, path: str, params: dict[str, Any], paginator: Paginator = NEXT_TOKEN) -> Iterator[list[Any]]:
        """The ``data`` list of every page of a list endpoint, following ``nextToken``."""
        return super().pages(path, {"limit": self.page_size, **params}, paginator)

    def paginate(self, path: str, params: dict[str, Any]) -> Iterator[Any]:
        """Every row of every page of a list endpoint (see ``pages``)."""
        yield from self.items(path, params, NEXT_TOKEN)

    def lead_pages_seen_since(self, dataset_id: str, segment_id: int | str | None, since: datetime,
                              until: datetime | None = None) -> Iterator[list[Any]]:
        """Pages of the segment's leads last seen on or after ``since``'s day (UTC), most recently seen
        first.

        LeadBoxer's time filter is day-granular and applies to the lead's *last* event, so a lead active
        in a past hour is found by asking for "last seen between that day and today"; callers then keep
        only the events inside their window.
        """
        until = until or datetime.now(timezone.utc)
        last_day = max(until, since) + timedelta(days=1)
        return self.pages("/v1/leads", {
            "site": dataset_id,
            "segmentId": segment_id,
            "criteriaTimeFilter": f"eventEsTimestamp|between|{since:%d/%m/%Y}-{last_day:%d/%m/%Y}",
            "timeZone": "UTC",
            "sortBy": "lastEvent|desc",
        })

    def segment_lead_pages(self, dataset_id: str, segment_id: int | str | None) -> Iterator[list[Any]]:
        """Pages of every lead of the segment as LeadBoxer lists it now (no time filter), most recently
        seen first."""
        return self.pages("/v1/leads", {"site": dataset_id, "segmentId": segment_id, "timeZone": "UTC",
                                        "sortBy": "lastEvent|desc"})

    def iter_leads_seen_since(self, dataset_id: str, segment_id: int | str | None,
                              since: datetime, until: datetime | None = None) -> Iterator[Any]:
        """The leads of ``lead_pages_seen_since``, one after the other."""
        for page in self.lead_pages_seen_since(dataset_id, segment_id, since, until):
            yield from page

    def iter_sessions(self, dataset_id: str, lead_id: str) -> Iterator[Any]:
        return self.paginate("/v1/leads/sessions", {"site": dataset_id, "leadId": lead_id})

    def iter_events(self, dataset_id: str, session_id: str) -> Iterator[Any]:
        return self.paginate("/v1/leads/events", {"site": dataset_id, "sessionId": session_id})

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
