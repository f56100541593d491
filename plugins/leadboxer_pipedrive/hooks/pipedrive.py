"""Pipedrive API hook: v2 for persons, organizations, deals, activities, pipelines and search; v1 for leads."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import requests

from leadboxer_pipedrive.exceptions import ApiError, BudgetExhaustedError, SyncConfigurationError
from leadboxer_pipedrive.hooks.base import JsonApiHook
from leadboxer_pipedrive.ratelimit import SlidingWindowLimiter


class PipedriveHook(JsonApiHook):
    """Talks to one Pipedrive company through an Airflow connection.

    Connection: ``host`` = the company's base URL (``https://yourcompany.pipedrive.com``), ``password`` =
    the API token (sent only in the ``x-api-token`` header). ``extra``: ``burst_limit`` (requests per
    2 s for your plan and auth type; default 20, the Lite API-token limit), ``search_burst_limit``
    (default 10, every plan), ``timeout``, ``verify``.

    The hook keeps itself under both burst limits with client-side limiters, retries 429/5xx/dropped
    connections honouring ``x-ratelimit-reset``, and counts the tokens it spent (``x-token-cost``).
    """

    conn_name_attr = "pipedrive_conn_id"
    default_conn_name = "pipedrive_default"
    conn_type = "pipedrive"
    hook_name = "Pipedrive"

    service_name = "Pipedrive"
    default_host = "https://api.pipedrive.com"
    auth_header = "x-api-token"
    default_burst_limit = 20
    default_search_burst_limit = 10
    burst_window_seconds = 2.0
    # The server counts arrivals, the limiter counts departures; a little slack absorbs the jitter.
    limiter_slack_seconds = 0.15
    page_limit = 500

    # Each call's price in tokens, from the official specs' x-token-cost (a contract test checks them);
    # the loaders price their plan with these before writing anything.
    token_costs: dict[tuple[str, str], int] = {
        ("GET", "/api/v2/persons/search"): 20,
        ("GET", "/api/v2/persons"): 10,
        ("POST", "/api/v2/persons"): 5,
        ("GET", "/api/v2/persons/{id}"): 1,
        ("PATCH", "/api/v2/persons/{id}"): 5,
        ("GET", "/api/v2/organizations/search"): 20,
        ("GET", "/api/v2/organizations"): 10,
        ("POST", "/api/v2/organizations"): 5,
        ("GET", "/api/v2/deals"): 10,
        ("POST", "/api/v2/deals"): 5,
        ("GET", "/api/v2/stages"): 5,
        ("GET", "/api/v2/activities"): 10,
        ("POST", "/api/v2/activities"): 5,
        ("GET", "/api/v2/dealFields"): 10,
        ("GET", "/api/v1/activityTypes"): 20,
        ("GET", "/api/v1/leads"): 20,
        ("POST", "/api/v1/leads"): 10,
        ("PATCH", "/api/v1/leads/{id}"): 10,
        ("GET", "/api/v1/leadLabels"): 10,
        ("GET", "/api/v1/users/me"): 2,
    }

    # Connection-form metadata for Airflow versions that read it from the hook (3.2+ reads the same
    # metadata from get_provider_info() without importing the hook).
    @staticmethod
    def get_ui_field_behaviour() -> dict[str, Any]:
        from leadboxer_pipedrive.get_provider_info import ui_field_behaviour

        return ui_field_behaviour("pipedrive")

    @staticmethod
    def get_connection_form_widgets() -> dict[str, Any]:
        from leadboxer_pipedrive.get_provider_info import connection_form_widgets

        return connection_form_widgets("pipedrive")

    def __init__(self, pipedrive_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(conn_id=pipedrive_conn_id, **kwargs)
        self.pipedrive_conn_id = pipedrive_conn_id
        self.tokens_spent = 0
        self.requests_sent = 0
        self.rate_limited = 0
        self._counter_lock = threading.Lock()
        self._limiter: SlidingWindowLimiter | None = None
        self._search_limiter: SlidingWindowLimiter | None = None

    def get_conn(self) -> requests.Session:
        session = super().get_conn()
        if self._limiter is None:
            burst = int(self.extras.get("burst_limit", self.default_burst_limit))
            search_burst = int(self.extras.get("search_burst_limit", self.default_search_burst_limit))
            window = self.burst_window_seconds + self.limiter_slack_seconds
            self._limiter = SlidingWindowLimiter(burst, window)
            self._search_limiter = SlidingWindowLimiter(search_burst, window)
        return session

    # -- rate limiting and accounting ---------------------------------------------------------------
    def before_request(self, method: str, path: str) -> None:
        if path.endswith("/search"):
            self._search_limiter.acquire()
        self._limiter.acquire()

    def after_response(self, method: str, path: str, response: requests.Response) -> None:
        cost = response.headers.get("x-token-cost")
        with self._counter_lock:
            self.requests_sent += 1
            if cost and response.status_code < 400:
                try:
                    self.tokens_spent += int(cost)
                except ValueError:
                    pass
            if response.status_code == 429:
                self.rate_limited += 1
        if response.status_code == 429:
            # Every thread of this hook waits out the window the server named, not just this one.
            wait = self.retry_after_seconds(response) or self.burst_window_seconds
            limiter = self._search_limiter if path.endswith("/search") else self._limiter
            limiter.pause(wait)

    def error_for(self, method: str, path: str, response: requests.Response, detail: str) -> ApiError:
        if response.status_code == 429 and "budget" in detail.lower():
            # The daily token budget resets at midnight (Pipedrive's server time), not in seconds:
            # retrying now only burns attempts.
            return BudgetExhaustedError(
                self.service_name, method, path, 429,
                f"{detail}: the company's daily API token budget is spent. Nothing was marked pushed; "
                "clear the failed runs after the budget resets (midnight, Pipedrive server time).")
        return super().error_for(method, path, response, detail)

    def budget_settings(self) -> tuple[int | None, float]:
        """(daily token budget, share of it one run may spend) from the connection's extra, if set."""
        self.get_conn()
        budget = self.extras.get("daily_token_budget")
        return (int(budget) if budget not in (None, "") else None,
                float(self.extras.get("max_run_budget_share", 1.0)))

    def usage(self) -> dict[str, int]:
        """Tokens spent, requests sent and 429s seen by this hook instance."""
        return {"tokens_spent": self.tokens_spent, "requests": self.requests_sent,
                "rate_limited": self.rate_limited}

    # -- generic helpers ----------------------------------------------------------------------------
    def _data(self, method: str, path: str, **kwargs: Any) -> Any:
        # Creates are not idempotent: their ambiguous failures go back to the caller to reconcile.
        kwargs.setdefault("idempotent", method != "POST")
        body = self.request(method, path, **kwargs)
        if not isinstance(body, dict) or body.get("success") is False:
            raise ApiError(self.service_name, method, path, 200, f"unexpected answer: {str(body)[:200]}")
        return body.get("data")

    def paginate_v2(self, path: str, params: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Yield every item of a v2 list, following ``additional_data.next_cursor``."""
        params = {"limit": self.page_limit, **(params or {})}
        while True:
            body = self.request("GET", path, params=params)
            yield from (body.get("data") or [])
            cursor = (body.get("additional_data") or {}).get("next_cursor")
            if not cursor:
                return
            params = {**params, "cursor": cursor}

    def paginate_v1(self, path: str, params: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Yield every item of a v1 list, following offset pagination.

        The official spec puts ``start``/``limit``/``more_items_in_collection`` directly in
        ``additional_data``; some answers nest them in ``additional_data.pagination``: read either.
        """
        params = {"limit": self.page_limit, "start": 0, **(params or {})}
        while True:
            body = self.request("GET", path, params=params)
            items = body.get("data") or []
            yield from items
            additional = body.get("additional_data") or {}
            pagination = additional.get("pagination") or additional
            if not pagination.get("more_items_in_collection") or not items:
                return
            next_start = pagination.get("next_start")
            if next_start is None:
                next_start = int(params["start"]) + len(items)
            params = {**params, "start": int(next_start)}

    # -- persons ------------------------------------------------------------------------------------
    def _search_items(self, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Every item of a v2 search. An answer without an ``items`` list is an error, never "not found"."""
        items: list[dict[str, Any]] = []
        params = {**params, "limit": self.page_limit}
        while True:
            body = self.request("GET", path, params=params)
            data = body.get("data") if isinstance(body, dict) else None
            if not isinstance(data, dict) or not isinstance(data.get("items"), list) or \
                    not all(isinstance(e, dict) and isinstance(e.get("item"), dict) for e in data["items"]):
                raise ApiError(self.service_name, "GET", path, 200, f"unreadable search answer: {str(body)[:200]}")
            items.extend(entry["item"] for entry in data["items"])
            cursor = (body.get("additional_data") or {}).get("next_cursor")
            if not cursor:
                return items
            params = {**params, "cursor": cursor}

    def search_persons_by_email(self, email: str) -> list[dict[str, Any]]:
        """Persons having exactly this email (case-insensitive) among any of their emails."""
        return self._search_items("/api/v2/persons/search",
                                  {"term": email.strip(), "fields": "email", "exact_match": True})

    def find_person_by_email(self, email: str) -> dict[str, Any] | None:
        """The lowest-id person having ``email`` (the oldest, should duplicates already exist), or None."""
        wanted = email.strip().lower()
        matches = [item for item in self.search_persons_by_email(email)
                   if wanted in {str(e).strip().lower() for e in item.get("emails") or []}]
        return min(matches, key=lambda item: item["id"]) if matches else None

    def create_person(self, payload: dict[str, Any]) -> dict[str, Any]:
        return self._data("POST", "/api/v2/persons", json_body=payload)

    def get_person(self, person_id: int) -> dict[str, Any]:
        return self._data("GET", f"/api/v2/persons/{int(person_id)}")

    def update_person(self, person_id: int, payload: dict[str, Any]) -> dict[str, Any]:
        return self._data("PATCH", f"/api/v2/persons/{int(person_id)}", json_body=payload)

    def list_persons(self, **filters: Any) -> list[dict[str, Any]]:
        """Persons by list filters (``updated_since``, ``org_id``, ``ids``...): not subject to search lag."""
        return list(self.paginate_v2("/api/v2/persons", filters))

    # -- organizations ------------------------------------------------------------------------------
    def search_organizations_by_name(self, name: str) -> list[dict[str, Any]]:
        return self._search_items("/api/v2/organizations/search",
                                  {"term": name.strip(), "fields": "name", "exact_match": True})

    def find_organization_by_name(self, name: str) -> dict[str, Any] | None:
        """The lowest-id organization whose name equals ``name`` (trimmed, case-folded), or None."""
        wanted = name.strip().casefold()
        matches = [item for item in self.search_organizations_by_name(name)
                   if str(item.get("name", "")).strip().casefold() == wanted]
        return min(matches, key=lambda item: item["id"]) if matches else None

    def create_organization(self, payload: dict[str, Any]) -> dict[str, Any]:
        return self._data("POST", "/api/v2/organizations", json_body=payload)

    def list_organizations(self, **filters: Any) -> list[dict[str, Any]]:
        return list(self.paginate_v2("/api/v2/organizations", filters))

    # -- deals, pipelines, stages --------------------------------------------------------------------
    def list_deals(self, *, person_id: int | None = None, status: str | None = None,
                   **filters: Any) -> list[dict[str, Any]]:
        return list(self.paginate_v2("/api/v2/deals", {"person_id": person_id, "status": status, **filters}))

    def find_open_deal_for_person(self, person_id: int) -> dict[str, Any] | None:
        """The person's oldest open deal, or None."""
        deals = self.list_deals(person_id=person_id, status="open")
        return min(deals, key=lambda deal: deal["id"]) if deals else None

    def create_deal(self, payload: dict[str, Any]) -> dict[str, Any]:
        return self._data("POST", "/api/v2/deals", json_body=payload)

    def list_pipelines(self) -> list[dict[str, Any]]:
        return list(self.paginate_v2("/api/v2/pipelines"))

    def list_stages(self, pipeline_id: int) -> list[dict[str, Any]]:
        return list(self.paginate_v2("/api/v2/stages", {"pipeline_id": int(pipeline_id)}))

    def first_stage_id(self, pipeline_id: int) -> int:
        """The first stage (lowest ``order_nr``) of a pipeline; a clear error if it has none."""
        stages = [s for s in self.list_stages(pipeline_id) if not s.get("is_deleted")]
        if not stages:
            raise SyncConfigurationError(f"Pipedrive pipeline {pipeline_id} does not exist or has no stages: "
                                         "set the pipeline_id Param to one of your pipelines")
        return min(stages, key=lambda s: (s.get("order_nr", 0), s["id"]))["id"]

    # -- activities ---------------------------------------------------------------------------------
    def create_activity(self, payload: dict[str, Any]) -> dict[str, Any]:
        if "person_id" in payload:
            # v2 rejects it: a person is linked as the primary participant.
            raise ValueError("v2 activities take participants=[{person_id, primary}], not person_id")
        return self._data("POST", "/api/v2/activities", json_body=payload)

    def list_activities(self, **filters: Any) -> list[dict[str, Any]]:
        return list(self.paginate_v2("/api/v2/activities", filters))

    def list_activity_types(self) -> list[dict[str, Any]]:
        return self._data("GET", "/api/v1/activityTypes") or []

    # -- leads (v1 only) ----------------------------------------------------------------------------
    def create_lead(self, payload: dict[str, Any]) -> dict[str, Any]:
        return self._data("POST", "/api/v1/leads", json_body=payload)

    def update_lead(self, lead_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        return self._data("PATCH", f"/api/v1/leads/{lead_id}", json_body=payload)

    def get_lead(self, lead_id: str) -> dict[str, Any]:
        return self._data("GET", f"/api/v1/leads/{lead_id}")

    def list_leads(self, **filters: Any) -> list[dict[str, Any]]:
        """Non-archived leads (``person_id``, ``organization_id``, ``updated_since`` filters)."""
        return list(self.paginate_v1("/api/v1/leads", filters))

    def list_deal_fields(self) -> list[dict[str, Any]]:
        """Deal fields, custom ones included (leads use the deal fields)."""
        return list(self.paginate_v2("/api/v2/dealFields"))

    def list_lead_labels(self) -> list[dict[str, Any]]:
        return self._data("GET", "/api/v1/leadLabels") or []

    # -- connection test ----------------------------------------------------------------------------
    def get_current_user(self) -> dict[str, Any]:
        return self._data("GET", "/api/v1/users/me")

    def test_connection(self) -> tuple[bool, str]:
        try:
            user = self.get_current_user()
        except Exception as exc:  # noqa: BLE001 - the UI shows the message
            return False, str(exc)
        return True, f"Connected to Pipedrive as user {user.get('id')} ({user.get('company_name', '')})"
