"""The Pipedrive sandbox app: auth, token budget, burst limits, latency, faults, control endpoints.

Request pipeline for API paths (``/api/v2/...``, ``/api/v1/...`` and the ``/v1/...`` alias):

1. ``latency`` sleep;
2. auth (``x-api-token``, or ``Authorization: Bearer`` with the API token or a live OAuth access token) -> 401;
3. fault rules (drop / slow / status / repeat_cursor) -> dropped and status-faulted calls are neither
   charged nor counted in the window; a repeat_cursor rule flags the request for the paging code;
4. burst limits over a rolling window (general, plus the search limit for ``/search`` paths) -> 429;
5. daily token budget -> 429 ``Daily token budget exceeded``;
6. the handler; the call's ``x-token-cost`` (see ``costs.py``) is charged.

``/_sandbox/...`` control endpoints skip all of that. ``POST /oauth/token`` is the OAuth 2 token endpoint
(``grant_type=refresh_token``, HTTP Basic ``client_id:client_secret``): it answers a new access token
(valid ``oauth_token_ttl`` seconds) and a rotated refresh token; it is not rate-limited nor charged.
"""

from __future__ import annotations

import base64
import binascii
import math
import secrets
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from sandbox.common import HttpError, Request, Router
from sandbox.faults import FaultInjector, FaultRule, apply_transport_fault
from sandbox.pipedrive.checks import ERROR_INFO, error_body
from sandbox.pipedrive.costs import COSTS, V1, V2
from sandbox.pipedrive.existing import DEFAULT_SEED
from sandbox.pipedrive.store import PipedriveStore

DEFAULT_TOKEN = "sandbox-token"
DEFAULT_OAUTH_CLIENT_ID = "sandbox-client-id"
DEFAULT_OAUTH_CLIENT_SECRET = "sandbox-client-secret"
DEFAULT_OAUTH_REFRESH_TOKEN = "sandbox-refresh-token"
DEFAULT_OAUTH_TOKEN_TTL = 3599.0  # Pipedrive's expires_in
OAUTH_SCOPE = "base,deals:full,contacts:full,leads:full,activities:full,search:read"
DEFAULT_DAILY_BUDGET = 30000 * 5 * 5  # base x Premium multiplier x 5 seats
CONFIG_KEYS = {"burst_limit": int, "search_burst_limit": int, "daily_budget": int, "search_lag": float,
               "latency": float, "window": float}
Answer = tuple[int, Any, dict[str, str]]


class _Route:
    """A route handler that remembers its path pattern (for costs and per-endpoint counters)."""

    def __init__(self, pattern: str, fn: Any) -> None:
        self.pattern = pattern
        self.fn = fn

    def __call__(self, request: Request) -> Any:
        return self.fn(request)


class PipedriveApp:
    def __init__(self, token: str = DEFAULT_TOKEN, burst_limit: int = 100, search_burst_limit: int = 10,
                 daily_budget: int = DEFAULT_DAILY_BUDGET, search_lag: float = 0.0, latency: float = 0.0,
                 window: float = 2.0, faults: Any = (), oauth_client_id: str = DEFAULT_OAUTH_CLIENT_ID,
                 oauth_client_secret: str = DEFAULT_OAUTH_CLIENT_SECRET,
                 oauth_refresh_token: str | None = DEFAULT_OAUTH_REFRESH_TOKEN,
                 oauth_token_ttl: float = DEFAULT_OAUTH_TOKEN_TTL, contact_sync: bool = True,
                 existing_persons: int = 0, existing_emails: list[str] | None = None,
                 seed: int = DEFAULT_SEED) -> None:
        self.token = token
        self.oauth_client_id = oauth_client_id
        self.oauth_client_secret = oauth_client_secret
        self.oauth_token_ttl = float(oauth_token_ttl)
        # Issued OAuth grants: refresh tokens still valid, and access token -> expiry (time.time()).
        self.refresh_tokens: set[str] = {oauth_refresh_token} if oauth_refresh_token else set()
        self.access_tokens: dict[str, float] = {}
        self.oauth_refreshes = 0
        self.oauth_refresh_failures = 0
        self.config: dict[str, Any] = {"burst_limit": int(burst_limit), "search_burst_limit": int(search_burst_limit),
                                       "daily_budget": int(daily_budget), "search_lag": float(search_lag),
                                       "latency": float(latency), "window": float(window)}
        self.lock = threading.Lock()  # counters, windows, budget (entities have the store's lock)
        self.store = PipedriveStore(search_lag=float(search_lag), contact_sync=contact_sync,
                                    existing_persons=existing_persons, existing_emails=existing_emails, seed=seed)
        self.faults = FaultInjector()
        for spec in faults or ():
            self.faults.add(spec)
        self.router = Router()
        self._build_routes()
        self.control_routes = self._control_routes()
        self._reset_counters()

    # ------------------------------------------------------------------ setup

    def _add(self, method: str, pattern: str, fn: Any) -> None:
        self.router.add(method, pattern, _Route(pattern, fn))

    def _build_routes(self) -> None:
        s = self.store
        # /search routes come before /{id} routes, which would otherwise swallow them.
        self._add("GET", V2 + "/persons/search", s.search_persons)
        self._add("GET", V2 + "/persons", s.list_persons)
        self._add("POST", V2 + "/persons", s.add_person)
        self._add("GET", V2 + "/persons/{id}", s.get_person)
        self._add("PATCH", V2 + "/persons/{id}", s.update_person)
        self._add("GET", V2 + "/organizations/search", s.search_organizations)
        self._add("GET", V2 + "/organizations", s.list_organizations)
        self._add("POST", V2 + "/organizations", s.add_organization)
        self._add("GET", V2 + "/organizations/{id}", s.get_organization)
        self._add("PATCH", V2 + "/organizations/{id}", s.update_organization)
        self._add("GET", V2 + "/deals", s.list_deals)
        self._add("POST", V2 + "/deals", s.add_deal)
        self._add("GET", V2 + "/deals/{id}", s.get_deal)
        self._add("PATCH", V2 + "/deals/{id}", s.update_deal)
        self._add("GET", V2 + "/pipelines", s.list_pipelines)
        self._add("GET", V2 + "/stages", s.list_stages)
        self._add("GET", V2 + "/activities", s.list_activities)
        self._add("POST", V2 + "/activities", s.add_activity)
        self._add("GET", V2 + "/activities/{id}", s.get_activity)
        self._add("GET", V2 + "/dealFields", s.list_deal_fields)
        self._add("GET", V2 + "/organizationFields", s.list_organization_fields)
        self._add("GET", V2 + "/personFields", s.list_person_fields)
        self._add("GET", V2 + "/leads/search", s.search_leads)
        self._add("GET", V1 + "/leads", s.list_leads)
        self._add("POST", V1 + "/leads", s.add_lead)
        self._add("GET", V1 + "/leads/{id}", s.get_lead)
        self._add("PATCH", V1 + "/leads/{id}", s.update_lead)
        self._add("GET", V1 + "/leadFields", s.list_lead_fields)
        self._add("GET", V1 + "/leadLabels", s.list_lead_labels)
        self._add("POST", V1 + "/leadLabels", s.add_lead_label)
        self._add("GET", V1 + "/activityTypes", s.list_activity_types)
        self._add("POST", V1 + "/activityTypes", s.add_activity_type)
        self._add("GET", V1 + "/users/me", s.current_user)

    def _reset_counters(self) -> None:
        with self.lock:
            self.requests = 0
            self.by_endpoint: Counter[str] = Counter()
            self.by_status: Counter[str] = Counter()
            self.tokens_spent = 0
            self.searches = 0
            self.windows: dict[str, deque[float]] = {}

    # ------------------------------------------------------------------ public helpers

    def reset(self) -> None:
        """Empty entities, counters, windows and the spent budget; keep config and fault rules."""
        self.store.reset()
        self._reset_counters()

    def configure(self, **changes: Any) -> dict[str, Any]:
        for key, value in changes.items():
            if key not in CONFIG_KEYS:
                raise ValueError(f"unknown config key {key!r}: use {', '.join(CONFIG_KEYS)}")
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"config {key!r} must be a number")
            if value < 0:
                raise ValueError(f"config {key!r} must be >= 0")
        with self.lock:
            for key, value in changes.items():
                self.config[key] = CONFIG_KEYS[key](value)
            self.store.search_lag = self.config["search_lag"]
            return dict(self.config)

    def counters(self) -> dict[str, Any]:
        with self.lock:
            return {"requests": self.requests, "by_endpoint": dict(self.by_endpoint),
                    "tokens_spent": self.tokens_spent,
                    "tokens_remaining": max(self.config["daily_budget"] - self.tokens_spent, 0),
                    "responses_by_status": dict(self.by_status), "searches": self.searches,
                    "oauth_token_refreshes": self.oauth_refreshes,
                    "oauth_refresh_failures": self.oauth_refresh_failures}

    def state(self) -> dict[str, Any]:
        state = self.store.snapshot()
        state["counters"] = self.counters()
        with self.lock:
            state["config"] = dict(self.config)
        state["faults"] = self.faults.rules()
        state["oauth"] = self.oauth_state()
        return state

    # ------------------------------------------------------------------ OAuth 2

    def oauth_state(self) -> dict[str, Any]:
        """Counts only: never the tokens themselves."""
        with self.lock:
            now = time.time()
            return {"token_refreshes": self.oauth_refreshes, "refresh_failures": self.oauth_refresh_failures,
                    "valid_refresh_tokens": len(self.refresh_tokens),
                    "live_access_tokens": sum(1 for expiry in self.access_tokens.values() if expiry > now),
                    "token_ttl": self.oauth_token_ttl}

    def issue_refresh_token(self, refresh_token: str | None = None) -> str:
        """Register (or mint) a valid refresh token, as if a user had just authorized the app."""
        refresh_token = refresh_token or "rt-" + secrets.token_urlsafe(24)
        with self.lock:
            self.refresh_tokens.add(refresh_token)
        return refresh_token

    def revoke_oauth(self) -> None:
        """Revoke every refresh and access token (the user uninstalled the app)."""
        with self.lock:
            self.refresh_tokens.clear()
            self.access_tokens.clear()

    def expire_access_tokens(self) -> None:
        """Expire every access token now (refresh tokens stay valid)."""
        with self.lock:
            self.access_tokens.clear()

    def configure_oauth(self, token_ttl: float) -> None:
        if isinstance(token_ttl, bool) or not isinstance(token_ttl, (int, float)) or token_ttl < 0:
            raise ValueError("oauth token_ttl must be a number >= 0")
        with self.lock:
            self.oauth_token_ttl = float(token_ttl)

    def _oauth_token(self, request: Request) -> Answer:
        """``POST /oauth/token``: the refresh-token grant, answered like Pipedrive's token endpoint."""
        if request.method != "POST":
            return 405, {"success": False, "error": "method_not_allowed", "message": "Use POST"}, {}
        scheme, _, encoded = (request.headers.get("Authorization") or "").partition(" ")
        try:
            client_id, _, client_secret = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            client_id = client_secret = ""
        if scheme.lower() != "basic" or (client_id, client_secret) != (self.oauth_client_id,
                                                                        self.oauth_client_secret):
            with self.lock:
                self.oauth_refresh_failures += 1
            return 401, {"success": False, "error": "invalid_client",
                         "message": "Invalid client credentials (HTTP Basic client_id:client_secret)"}, {}
        form = {key: values[-1] for key, values in parse_qs(request.raw_body.decode("utf-8", "replace")).items()}
        if form.get("grant_type") != "refresh_token":
            with self.lock:
                self.oauth_refresh_failures += 1
            return 400, {"success": False, "error": "unsupported_grant_type",
                         "message": "Only grant_type=refresh_token is emulated"}, {}
        with self.lock:
            old = form.get("refresh_token") or ""
            if old not in self.refresh_tokens:
                self.oauth_refresh_failures += 1
                return 400, {"success": False, "error": "invalid_grant",
                             "message": "Invalid grant: refresh token is invalid or revoked"}, {}
            self.refresh_tokens.discard(old)  # rotated: the old refresh token is spent
            refresh_token = "rt-" + secrets.token_urlsafe(24)
            access_token = "at-" + secrets.token_urlsafe(24)
            self.refresh_tokens.add(refresh_token)
            now = time.time()
            self.access_tokens = {t: e for t, e in self.access_tokens.items() if e > now}
            self.access_tokens[access_token] = now + self.oauth_token_ttl
            self.oauth_refreshes += 1
            ttl = self.oauth_token_ttl
        host = request.headers.get("Host") or "127.0.0.1"
        return 200, {"access_token": access_token, "token_type": "Bearer",
                     "expires_in": int(ttl) if float(ttl).is_integer() else ttl,
                     "refresh_token": refresh_token, "scope": OAUTH_SCOPE,
                     "api_domain": f"http://{host}"}, {"Cache-Control": "no-store"}

    # ------------------------------------------------------------------ rate limits

    def _window(self, name: str, now: float) -> deque[float]:
        times = self.windows.setdefault(name, deque())
        horizon = now - self.config["window"]
        while times and times[0] <= horizon:
            times.popleft()
        return times

    def _rate_headers(self, is_search: bool, now: float) -> dict[str, str]:
        """Headers for the window that applies: the search window for searches, else the general one."""
        name, limit = (("search", self.config["search_burst_limit"]) if is_search
                       else ("general", self.config["burst_limit"]))
        times = self._window(f"{self.token}:{name}", now)
        reset = math.ceil(times[0] + self.config["window"] - now) if times else 0
        if times:
            reset = max(reset, 1)
        return {"x-ratelimit-limit": str(limit), "x-ratelimit-remaining": str(max(limit - len(times), 0)),
                "x-ratelimit-reset": str(reset)}

    def _limited_headers(self, is_search: bool, now: float) -> dict[str, str]:
        headers = self._rate_headers(is_search, now)
        headers["x-ratelimit-remaining"] = "0"
        headers["x-ratelimit-reset"] = str(max(int(headers["x-ratelimit-reset"]), 1))
        return headers

    # ------------------------------------------------------------------ dispatch

    def handle(self, request: Request, handler: Any) -> Answer | None:
        path = request.path.rstrip("/") or "/"
        if path == "/_sandbox" or path.startswith("/_sandbox/"):
            return self._control(request, path)
        if path == "/oauth/token":
            return self._oauth_token(request)
        if path.startswith("/v1/") or path == "/v1":
            path = "/api" + path
        request.path = path
        route = None
        route_error: HttpError | None = None
        try:
            route = self.router.resolve(request.method, path)
        except HttpError as exc:  # 405
            route_error = exc
        pattern = route[0].pattern if route else path
        with self.lock:
            self.requests += 1
            self.by_endpoint[f"{request.method} {pattern}"] += 1
        result = self._process(request, handler, route, route_error, pattern)
        with self.lock:
            self.by_status["dropped" if result is None else str(result[0])] += 1
        return result

    def _process(self, request: Request, handler: Any, route: Any, route_error: HttpError | None,
                 pattern: str) -> Answer | None:
        latency = self.config["latency"]
        if latency > 0:
            time.sleep(latency)
        is_search = "/search" in request.path
        if not self._authorized(request):
            return self._unauthorized(is_search)
        rule = self.faults.pick(request.method, request.path)
        if rule is not None:
            if apply_transport_fault(rule, handler):
                return None
            if rule.kind == "status":
                return self._fault_answer(rule, is_search)
            request.repeat_cursor = rule.kind == "repeat_cursor"
        cost = COSTS.get((request.method, pattern), 0) if route else 0
        refused, headers = self._charge(is_search, cost, answered=route is not None)
        if refused is not None:
            return refused
        headers["x-token-cost"] = str(cost)
        return self._dispatch(request, route, route_error, headers)

    def _unauthorized(self, is_search: bool) -> Answer:
        with self.lock:
            headers = self._rate_headers(is_search, time.monotonic())
        body = {"success": False, "error": "unauthorized access", "errorCode": 401, "error_info": ERROR_INFO}
        return 401, body, headers

    def _fault_answer(self, rule: FaultRule, is_search: bool) -> Answer:
        """A ``status`` fault: the error envelope (429: "Request over limit" with limited headers), not charged."""
        with self.lock:
            now = time.monotonic()
            if rule.status == 429:
                headers = self._limited_headers(is_search, now)
                body = error_body("Request over limit")
            else:
                headers = self._rate_headers(is_search, now)
                body = error_body(f"Sandbox fault: HTTP {rule.status}")
        headers["x-token-cost"] = "0"
        return rule.status, body, headers

    def _charge(self, is_search: bool, cost: int, answered: bool) -> tuple[Answer | None, dict[str, str]]:
        """Burst windows, then the daily budget: a 429 (not charged, not entered in the windows), or the
        call entered in its windows and charged, with the rate-limit headers to send."""
        with self.lock:
            now = time.monotonic()
            general = self._window(f"{self.token}:general", now)
            search = self._window(f"{self.token}:search", now)
            search_full = is_search and len(search) >= self.config["search_burst_limit"]
            if len(general) >= self.config["burst_limit"] or search_full:
                return (429, error_body("Request over limit"), self._limited_headers(search_full, now)), {}
            if self.tokens_spent + cost > self.config["daily_budget"]:
                headers = self._rate_headers(is_search, now)
                headers["x-token-cost"] = "0"
                return (429, error_body("Daily token budget exceeded"), headers), {}
            general.append(now)
            if is_search:
                search.append(now)
                self.searches += int(answered)  # searches the search handler answered
            self.tokens_spent += cost
            return None, self._rate_headers(is_search, now)

    @staticmethod
    def _dispatch(request: Request, route: Any, route_error: HttpError | None, headers: dict[str, str]) -> Answer:
        if route_error is not None:
            return route_error.status, error_body(route_error.body.get("error", "Method not allowed")), headers
        if route is None:
            return 404, error_body(f"Unknown endpoint {request.method} {request.path}"), headers
        fn, params = route
        request.path_params = params
        try:
            result = fn(request)
        except HttpError as exc:
            headers.update(exc.headers)
            return exc.status, _error_envelope(exc), headers
        if len(result) > 2:
            headers.update(result[2])
        return result[0], result[1], headers

    def _authorized(self, request: Request) -> bool:
        if request.headers.get("x-api-token") == self.token:
            return True
        auth = request.headers.get("Authorization") or ""
        scheme, _, value = auth.partition(" ")
        if scheme.lower() != "bearer":
            return False
        value = value.strip()
        if value == self.token:
            return True
        with self.lock:
            expiry = self.access_tokens.get(value)
        return expiry is not None and expiry > time.time()

    # ------------------------------------------------------------------ control endpoints

    def _control_routes(self) -> dict[tuple[str, str], Callable[[Request], Any]]:
        """``(method, path)`` -> action; an action answers the 200 body."""
        return {
            ("GET", "/_sandbox/state"): lambda request: self.state(),
            ("POST", "/_sandbox/reset"): self._control_reset,
            ("GET", "/_sandbox/config"): lambda request: {"success": True, "config": dict(self.config)},
            ("POST", "/_sandbox/config"): self._control_configure,
            ("GET", "/_sandbox/faults"): lambda request: {"success": True, "faults": self.faults.rules()},
            ("POST", "/_sandbox/faults"): self._control_add_faults,
            ("DELETE", "/_sandbox/faults"): self._control_clear_faults,
            ("GET", "/_sandbox/oauth"): lambda request: {"success": True, "oauth": self.oauth_state()},
            ("POST", "/_sandbox/oauth"): self._control_oauth,
            ("GET", "/_sandbox/health"): lambda request: {"success": True},
        }

    def _control(self, request: Request, path: str) -> Answer:
        action = self.control_routes.get((request.method, path))
        if action is None:
            return 404, error_body(f"Unknown control endpoint {request.method} {path}"), {}
        try:
            return 200, action(request), {}
        except HttpError as exc:
            return exc.status, exc.body, {}
        except (ValueError, TypeError, KeyError) as exc:
            return 400, {"success": False, "error": str(exc)}, {}

    def _control_reset(self, request: Request) -> dict[str, Any]:
        self.reset()
        return {"success": True}

    def _control_configure(self, request: Request) -> dict[str, Any]:
        changes = request.json()
        if not isinstance(changes, dict):
            raise ValueError("config body must be a JSON object")
        return {"success": True, "config": self.configure(**changes)}

    def _control_add_faults(self, request: Request) -> dict[str, Any]:
        specs = request.json()
        for spec in specs if isinstance(specs, list) else [specs]:
            if not isinstance(spec, dict):
                raise ValueError("a fault rule must be a JSON object")
            self.faults.add(spec)
        return {"success": True, "faults": self.faults.rules()}

    def _control_clear_faults(self, request: Request) -> dict[str, Any]:
        self.faults.clear()
        return {"success": True, "faults": []}

    def _control_oauth(self, request: Request) -> dict[str, Any]:
        """``{"token_ttl": S, "revoke": true, "expire_access_tokens": true, "issue_refresh_token": true|"rt"}``."""
        body = request.json()
        if not isinstance(body, dict):
            raise ValueError("oauth body must be a JSON object")
        if "token_ttl" in body:
            self.configure_oauth(body["token_ttl"])
        if body.get("revoke"):
            self.revoke_oauth()
        if body.get("expire_access_tokens"):
            self.expire_access_tokens()
        answer: dict[str, Any] = {"success": True}
        if body.get("issue_refresh_token"):
            issued = body["issue_refresh_token"]
            answer["refresh_token"] = self.issue_refresh_token(issued if isinstance(issued, str) else None)
        answer["oauth"] = self.oauth_state()
        return answer


def _error_envelope(exc: HttpError) -> Any:
    """A handler's error body, in Pipedrive's envelope when it came in the bare ``{success, error}`` shape."""
    body = exc.body
    if isinstance(body, dict) and "success" in body and "error_info" not in body and "code" not in body:
        extra = {"code": "ERR_BAD_REQUEST"} if exc.status == 400 else {}
        body = error_body(body.get("error", "Bad request"), **extra)
    return body
