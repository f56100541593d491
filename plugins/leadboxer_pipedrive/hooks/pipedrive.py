"""Pipedrive API hook: v2 for persons, organizations, deals, activities, pipelines and search; v1 for leads."""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import requests

from leadboxer_pipedrive.exceptions import (
    ApiAuthError,
    ApiError,
    ApiRequestError,
    BudgetExhaustedError,
    SyncConfigurationError,
    TransientApiError,
)
from leadboxer_pipedrive.hooks.base import JsonApiHook, base_url
from leadboxer_pipedrive.hooks.pagination import CURSOR, OFFSET, SEARCH
from leadboxer_pipedrive.ratelimit import SlidingWindowLimiter

PIPEDRIVE_TOKEN_URL = "https://oauth.pipedrive.com/oauth/token"
# The token state the hook refreshes and stores back (connection extra, or the Variable fallback).
OAUTH_STATE_KEYS = ("access_token", "refresh_token", "expires_at", "api_domain")
# Newest OAuth token state per (conn_id, fingerprint of the connection's own refresh token), shared by
# every hook of the process: a connection from an env var or a secrets backend cannot be written back.
_OAUTH_MEMORY: dict[tuple[str, str], dict[str, Any]] = {}
_OAUTH_MEMORY_LOCK = threading.Lock()


class PipedriveHook(JsonApiHook):
    """Talks to one Pipedrive company through an Airflow connection.

    Connection: ``host`` = the company's base URL (``https://yourcompany.pipedrive.com``), ``password`` =
    the API token (sent only in the ``x-api-token`` header). ``extra``: ``burst_limit`` (requests per
    2 s for your plan and auth type; default 20, the Lite API-token limit), ``search_burst_limit``
    (default 10, every plan), ``timeout``, ``verify``.

    OAuth 2 (a Marketplace app) instead: ``extra`` has ``"auth_type": "oauth2"``, ``client_id``,
    ``refresh_token`` and optionally ``access_token``, ``expires_at`` (epoch seconds), ``api_domain``,
    ``token_url`` (default Pipedrive's) and ``token_expiry_margin`` (seconds, default 60); the client
    secret is the ``password`` (or ``extra.client_secret``). Calls carry ``Authorization: Bearer`` and go
    to the token's ``api_domain``; the hook refreshes the access token when it is missing or expires
    within the margin, and once on a 401 (then retries that call once). See :meth:`_oauth_persist` for
    where refreshed tokens are stored.

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
    # The server counts arrivals, the limiter counts departures (the moment a request really leaves,
    # see SlidingWindowLimiter); a little slack absorbs the jitter between the two. 0.1 s: 0-2 429s in
    # 3,000 requests at 0.25 s latency and 32 workers (make bench); 0.15 s gave ~90% of the limit.
    limiter_slack_seconds = 0.1
    # How long every thread pauses after an isolated 429 (see after_response).
    lone_429_pause_seconds = 0.5
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
        ("GET", "/api/v2/organizations/{id}"): 1,
        ("PATCH", "/api/v2/organizations/{id}"): 5,
        ("GET", "/api/v2/organizationFields"): 10,
        ("GET", "/api/v2/deals"): 10,
        ("POST", "/api/v2/deals"): 5,
        ("PATCH", "/api/v2/deals/{id}"): 5,
        ("GET", "/api/v2/stages"): 5,
        ("GET", "/api/v2/activities"): 10,
        ("POST", "/api/v2/activities"): 5,
        ("GET", "/api/v2/dealFields"): 10,
        ("GET", "/api/v2/personFields"): 10,
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
        self._tokens_by_call: Counter[str] = Counter()
        self._requests_by_call: Counter[str] = Counter()
        self._counter_lock = threading.Lock()
        self._limiter: SlidingWindowLimiter | None = None
        self._search_limiter: SlidingWindowLimiter | None = None
        self._last_rate_limited = float("-inf")
        self._oauth: dict[str, Any] | None = None  # OAuth 2 settings and token state, None for API tokens
        self._oauth_lock = threading.RLock()
        self.oauth_refreshes = 0

    def configure_limits(self) -> None:
        window = self.burst_window_seconds + self.limiter_slack_seconds
        self._limiter = SlidingWindowLimiter(self._burst_limit(), window)
        self._search_limiter = SlidingWindowLimiter(
            int(self.extras.get("search_burst_limit", self.default_search_burst_limit)), window)

    def _burst_limit(self) -> int:
        return int(self.extras.get("burst_limit", self.default_burst_limit))

    def pool_size(self) -> int:
        # Enough pooled connections for every request the limiter lets be in flight at once (requests'
        # default of 10 makes a busy load reconnect, and reconnects delay departures unevenly, which the
        # server sees as bursts).
        return max(16, min(self._burst_limit(), 128))

    # -- authentication: API token or OAuth 2 ----------------------------------------------------------
    oauth_token_url = PIPEDRIVE_TOKEN_URL
    oauth_expiry_margin = 60.0  # refresh this many seconds before the access token expires
    oauth_variable_prefix = "pipedrive_oauth_token__"  # + conn_id: the store when tasks cannot write connections

    def _connection_auth_headers(self, conn: Any) -> dict[str, str]:
        auth_type = str(self.extras.get("auth_type") or "api_token").strip().lower()
        if auth_type in ("api_token", "token"):
            self._oauth = None
            return super()._connection_auth_headers(conn)
        if auth_type != "oauth2":
            raise ApiAuthError(self.service_name, "-", "-", None,
                               f"connection {self.conn_id!r}: extra auth_type must be \"api_token\" or \"oauth2\"")
        client_id = str(self.extras.get("client_id") or "").strip()
        client_secret = str(self.extras.get("client_secret") or conn.password or "")
        refresh_token = str(self.extras.get("refresh_token") or "").strip()
        missing = [name for name, value in (("extra client_id", client_id),
                                            ("client secret (password or extra client_secret)", client_secret),
                                            ("extra refresh_token", refresh_token)) if not value]
        if missing:
            raise ApiAuthError(self.service_name, "-", "-", None,
                               f"connection {self.conn_id!r} uses OAuth 2 but lacks: {', '.join(missing)}")
        _mask(client_secret, refresh_token, self.extras.get("access_token"))
        origin = _fingerprint(client_id, refresh_token)
        env_backed = f"AIRFLOW_CONN_{self.conn_id.upper()}" in os.environ
        candidates = [_token_state(self.extras)]
        with _OAUTH_MEMORY_LOCK:
            candidates.append(_OAUTH_MEMORY.get((self.conn_id, origin)))
        if not env_backed:
            candidates.append(self._oauth_variable_state(origin))
        # The newest state wins (each refresh moves expires_at forward).
        state = max((c for c in candidates if c and c.get("refresh_token")),
                    key=lambda c: float(c.get("expires_at") or 0))
        self._oauth = {"client_id": client_id, "client_secret": client_secret, "origin": origin,
                       "token_url": str(self.extras.get("token_url") or self.oauth_token_url),
                       "margin": float(self.extras.get("token_expiry_margin", self.oauth_expiry_margin)),
                       "env_backed": env_backed, **state}
        _mask(self._oauth.get("access_token"), self._oauth.get("refresh_token"))
        if self._oauth.get("api_domain"):
            self.base_url = base_url(str(self._oauth["api_domain"]))
        if self._oauth_token_is_fresh():
            return {"Authorization": f"Bearer {self._oauth['access_token']}"}
        return {}  # refreshed before the first call

    def _oauth_token_is_fresh(self) -> bool:
        oauth = self._oauth or {}
        if not oauth.get("access_token"):
            return False
        expires_at = oauth.get("expires_at")
        if expires_at in (None, ""):
            return True  # unknown expiry: use it, a 401 will refresh it
        return float(expires_at) - oauth["margin"] > time.time()

    def _send_once(self, method: str, path: str, params: dict[str, Any] | None, json_body: Any,
                   idempotent: bool = True) -> Any:
        self.get_conn()
        if self._oauth is None:
            return super()._send_once(method, path, params, json_body, idempotent)
        with self._oauth_lock:
            if not self._oauth_token_is_fresh():
                self._oauth_refresh()
            used = self._oauth.get("access_token")
        try:
            return super()._send_once(method, path, params, json_body, idempotent)
        except ApiAuthError as exc:
            if exc.status != 401:
                raise
        # A 401 means the call was not processed: refresh once (unless another thread just did), retry once;
        # a second 401 is the usual auth error.
        self.log.info("Pipedrive answered 401 to %s %s: refreshing the OAuth access token of connection %r",
                      method, path, self.conn_id)
        with self._oauth_lock:
            if self._oauth.get("access_token") == used:
                self._oauth_refresh()
        return super()._send_once(method, path, params, json_body, idempotent)

    def _oauth_refresh(self) -> None:
        """Trade the refresh token for a new access token (POST token_url, HTTP Basic client credentials)."""
        oauth = self._oauth
        assert oauth is not None
        token_url = oauth["token_url"]
        path = urlsplit(token_url).path or "/"
        secrets_ = (oauth["client_secret"], oauth["refresh_token"], oauth.get("access_token"))
        try:
            response = requests.post(
                token_url, data={"grant_type": "refresh_token", "refresh_token": oauth["refresh_token"]},
                auth=(oauth["client_id"], oauth["client_secret"]), headers={"Accept": "application/json"},
                timeout=self.timeout, verify=self._session.verify if self._session is not None else True)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise TransientApiError(self.service_name, "POST", path, None,
                                    f"{type(exc).__name__}: no answer from the OAuth token endpoint") from None
        status = response.status_code
        if status >= 400:
            detail = _redact(self._error_detail(response), secrets_)
            if status in self.retryable_statuses:
                raise TransientApiError(self.service_name, "POST", path, status,
                                        f"OAuth token refresh: {detail}",
                                        retry_after=self.retry_after_seconds(response))
            if status in (400, 401, 403):
                if "invalid_client" in detail:
                    hint = "check the client_id and the client secret of the Marketplace app"
                else:
                    hint = ("the refresh token is revoked, expired or was already used (rotated) by another "
                            "process that could not store the new one: re-authorize the app and put the new "
                            "refresh_token in the connection's extra")
                raise ApiAuthError(self.service_name, "POST", path, status,
                                   f"OAuth token refresh for connection {self.conn_id!r} refused ({detail}): {hint}")
            raise ApiRequestError(self.service_name, "POST", path, status, f"OAuth token refresh: {detail}")
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not body.get("access_token"):
            raise TransientApiError(self.service_name, "POST", path, status,
                                    "OAuth token endpoint answered without an access_token")
        rotated = bool(body.get("refresh_token")) and body["refresh_token"] != oauth["refresh_token"]
        state = {"access_token": str(body["access_token"]),
                 "refresh_token": str(body.get("refresh_token") or oauth["refresh_token"]),
                 "expires_at": int(time.time() + float(body.get("expires_in") or 3599)),
                 "api_domain": str(body.get("api_domain") or oauth.get("api_domain") or "") or None}
        _mask(state["access_token"], state["refresh_token"])
        oauth.update(state)
        self.oauth_refreshes += 1
        if state["api_domain"]:
            self.base_url = base_url(state["api_domain"])
        if self._session is not None:
            self._session.headers["Authorization"] = f"Bearer {state['access_token']}"
        with _OAUTH_MEMORY_LOCK:
            _OAUTH_MEMORY[(self.conn_id, oauth["origin"])] = dict(state)
        self._oauth_persist(state, rotated)

    def _oauth_persist(self, state: dict[str, Any], rotated: bool) -> str:
        """Store a refreshed token state; return where: ``"db"``, ``"variable"`` or ``"memory"``.

        * connection from an ``AIRFLOW_CONN_*`` env var: memory of this process only;
        * the ORM is usable (CLI, API server, tests) and the connection is in the metadata DB: its extra;
          absent from the DB (a secrets backend): memory only;
        * the ORM is blocked (Airflow 3 tasks may not touch the DB, nor write connections through the
          Task SDK): the Airflow Variable ``pipedrive_oauth_token__<conn_id>`` (its name holds "token", so
          Airflow masks its value), which later runs read when it is newer than the connection;
        * nothing writable: memory, and a warning saying how to persist the token.

        A lost access token only costs one refresh; a lost *rotated refresh token* breaks the next run.
        """
        where = "memory"
        if self._oauth and not self._oauth.get("env_backed"):
            try:
                where = "db" if self._oauth_store_in_db(state) else "memory"
            except Exception:  # noqa: BLE001 - RuntimeError when the Task SDK blocks the ORM, or no DB
                where = "variable" if self._oauth_store_in_variable(state) else "memory"
        if where == "db":
            self.log.info("Stored the refreshed OAuth token of connection %r in the metadata database", self.conn_id)
        elif where == "variable":
            self.log.info("Stored the refreshed OAuth token of connection %r in Airflow Variable %r (tasks "
                          "cannot update connections)", self.conn_id, self.oauth_variable_prefix + self.conn_id)
        elif rotated:
            self.log.warning(
                "Pipedrive rotated the OAuth refresh token of connection %r, which comes from an environment "
                "variable or a secrets backend the hook cannot write: the new token is kept in this process's "
                "memory only, and the connection's refresh token may no longer work. Keep OAuth connections in "
                "the Airflow metadata database (or a writable store) so rotated tokens persist.", self.conn_id)
        else:
            self.log.debug("Refreshed OAuth token of connection %r kept in memory", self.conn_id)
        return where

    def _oauth_store_in_db(self, state: dict[str, Any]) -> bool:
        from airflow.models.connection import Connection
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session() as session:
            row = session.scalars(select(Connection).where(Connection.conn_id == self.conn_id)).one_or_none()
            if row is None:
                return False
            extra = dict(row.extra_dejson or {})
            extra.update({key: state[key] for key in OAUTH_STATE_KEYS if state.get(key) is not None})
            row.set_extra(json.dumps(extra))
            if state.get("api_domain") and (row.host or "").rstrip("/") != state["api_domain"].rstrip("/"):
                row.host = state["api_domain"]
        return True

    def _oauth_store_in_variable(self, state: dict[str, Any]) -> bool:
        try:
            from airflow.sdk import Variable

            Variable.set(self.oauth_variable_prefix + self.conn_id,
                         {"origin": (self._oauth or {}).get("origin"), **state}, serialize_json=True,
                         description=f"OAuth token state of Pipedrive connection {self.conn_id}, written by "
                                     "PipedriveHook; delete it after re-authorizing the app")
            return True
        except Exception as exc:  # noqa: BLE001
            self.log.warning(
                "Could not store the refreshed OAuth token of connection %r (%s): kept in memory for this "
                "process. To persist it, keep the connection in the metadata database and let the hook run "
                "where it may write (e.g. `airflow connections test %s`), or re-authorize and update the "
                "connection's extra.", self.conn_id, type(exc).__name__, self.conn_id)
            return False

    def _oauth_variable_state(self, origin: str) -> dict[str, Any] | None:
        try:
            from airflow.sdk import Variable

            value = Variable.get(self.oauth_variable_prefix + self.conn_id, default=None, deserialize_json=True)
        except Exception:  # noqa: BLE001 - no Variable, or no way to read them here
            return None
        if not isinstance(value, dict) or value.get("origin") != origin:
            return None  # written for another refresh token: the connection was re-authorized since
        return _token_state(value)

    # -- rate limiting and accounting ---------------------------------------------------------------
    def before_request(self, method: str, path: str) -> None:
        if path.endswith("/search"):
            self._search_limiter.acquire()
        self._limiter.acquire()

    def after_response(self, method: str, path: str, response: requests.Response) -> None:
        cost = response.headers.get("x-token-cost")
        call = f"{method} {_ID_IN_PATH.sub('/{id}', path)}"
        with self._counter_lock:
            self.requests_sent += 1
            self._requests_by_call[call] += 1
            if cost and response.status_code < 400:
                try:
                    self.tokens_spent += int(cost)
                    self._tokens_by_call[call] += int(cost)
                except ValueError:
                    pass
            if response.status_code == 429:
                self.rate_limited += 1
        if response.status_code == 429:
            # Every thread of this hook backs off together, not just this one. The limiter already
            # keeps our own count under the limit, so a lone 429 means the server saw a few of our
            # requests closer together than we sent them: a short pause realigns (the refused request
            # itself waits the full time the server named before it is resent). 429s in a row mean
            # something else spends the same limit: then everyone waits out the server's window.
            wait = self.retry_after_seconds(response) or self.burst_window_seconds
            now = time.monotonic()
            with self._counter_lock:
                in_a_row = now - self._last_rate_limited < self.burst_window_seconds
                self._last_rate_limited = now
            limiter = self._search_limiter if path.endswith("/search") else self._limiter
            limiter.pause(wait if in_a_row else min(wait, self.lone_429_pause_seconds))

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

    def requests_by_call(self) -> dict[str, int]:
        """Requests sent by this hook instance, by call (``"PATCH /api/v2/persons/{id}"``)."""
        with self._counter_lock:
            return dict(self._requests_by_call)

    def spent_on(self) -> str:
        """What the tokens went on, dearest first: ``"20 on GET /api/v1/activityTypes (1 request), ..."``."""
        with self._counter_lock:
            calls = sorted(self._requests_by_call, key=lambda call: (-self._tokens_by_call[call], call))
            return ", ".join(f"{self._tokens_by_call[call]} on {call} ({self._requests_by_call[call]} request"
                             f"{'s' if self._requests_by_call[call] != 1 else ''})" for call in calls)

    # -- generic helpers ----------------------------------------------------------------------------
    def _data(self, method: str, path: str, **kwargs: Any) -> Any:
        # Creates are not idempotent: their ambiguous failures go back to the caller to reconcile.
        kwargs.setdefault("idempotent", method != "POST")
        body = self.request(method, path, **kwargs)
        if not isinstance(body, dict) or body.get("success") is False:
            raise ApiError(self.service_name, method, path, 200, f"unexpected answer: {str(body)[:200]}")
        return body.get("data")

    def paginate_v2(self, path: str, params: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Every item of a v2 list, following ``additional_data.next_cursor``."""
        yield from self.items(path, {"limit": self.page_limit, **(params or {})}, CURSOR)

    def list_pages(self, path: str, params: dict[str, Any] | None = None) -> Iterator[list[dict[str, Any]]]:
        """The pages of a v2 list (up to ``page_limit`` records each), fetched as they are consumed: a
        reader that stops early pays only for the pages it read."""
        return self.pages(path, {"limit": self.page_limit, **(params or {})}, CURSOR)

    def paginate_v1(self, path: str, params: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Every item of a v1 list, following ``start``/``limit`` offsets."""
        yield from self.items(path, {"limit": self.page_limit, **(params or {})}, OFFSET)

    # -- persons ------------------------------------------------------------------------------------
    def _search_items(self, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Every item of a v2 search. An answer without an ``items`` list is an error, never "not found"."""
        return list(self.items(path, {**params, "limit": self.page_limit}, SEARCH))

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

    def find_organization_by_field(self, field_code: str, value: str) -> dict[str, Any] | None:
        """The lowest-id organization whose custom field ``field_code`` holds ``value`` (trimmed,
        case-folded), or None.

        Search hits list the custom values that matched, not which field they are in, so each candidate
        is read (1 token) and its own ``field_code`` value compared: another field holding the same text
        is not a match.
        """
        wanted = value.strip().casefold()
        hits = self._search_items("/api/v2/organizations/search",
                                  {"term": value.strip(), "fields": "custom_fields", "exact_match": True})
        for hit in sorted(hits, key=lambda item: item["id"]):
            if wanted not in {str(v).strip().casefold() for v in hit.get("custom_fields") or []}:
                continue
            organization = self.get_organization(hit["id"])
            held = (organization.get("custom_fields") or {}).get(field_code)
            if held is not None and str(held).strip().casefold() == wanted:
                return organization
        return None

    def get_organization(self, org_id: int) -> dict[str, Any]:
        return self._data("GET", f"/api/v2/organizations/{int(org_id)}")

    def update_organization(self, org_id: int, payload: dict[str, Any]) -> dict[str, Any]:
        return self._data("PATCH", f"/api/v2/organizations/{int(org_id)}", json_body=payload)

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

    def update_deal(self, deal_id: int, payload: dict[str, Any]) -> dict[str, Any]:
        return self._data("PATCH", f"/api/v2/deals/{int(deal_id)}", json_body=payload)

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

    def list_fields(self, entity: str) -> list[dict[str, Any]]:
        """The fields of ``entity`` (person, organization or deal), custom ones included (leads use the
        deal fields)."""
        return list(self.paginate_v2(f"/api/v2/{entity}Fields"))

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


# A record's id in a path (``/api/v2/persons/42``, ``/api/v1/leads/<uuid>``): calls are counted by endpoint.
_ID_IN_PATH = re.compile(r"/(?:\d+|[0-9a-f]{8}-[0-9a-f-]{27})(?=/|$)")


def _token_state(source: dict[str, Any]) -> dict[str, Any]:
    return {key: source.get(key) or None for key in OAUTH_STATE_KEYS}


def _fingerprint(client_id: str, refresh_token: str) -> str:
    """A short one-way digest naming a grant without revealing it."""
    return hashlib.sha256(f"{client_id}\0{refresh_token}".encode()).hexdigest()[:16]


def _redact(text: str, secrets_: tuple[Any, ...]) -> str:
    for secret in secrets_:
        if secret:
            text = text.replace(str(secret), "***")
    return text


def _mask(*values: Any) -> None:
    """Register secrets with Airflow's log masker (in a task, the supervisor masks them too)."""
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # pragma: no cover
        return
    for value in values:
        if value:
            try:
                mask_secret(str(value))
            except Exception:  # noqa: BLE001 - masking is best effort, never a reason to fail
                pass
