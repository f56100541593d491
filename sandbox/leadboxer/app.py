"""The LeadBoxer v1 stand-in: routes, auth, pagination, counters and fault injection."""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import json
import threading
import time
from collections import Counter
from collections.abc import Iterable
from http import HTTPStatus
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sandbox.common import HttpError, Request, Router, SandboxServer
from sandbox.faults import FaultInjector, FaultRule, apply_transport_fault
from sandbox.leadboxer.generator import DEFAULT_SEGMENT_ID, DEFAULT_SITE, DEFAULT_START, generate_dataset
from sandbox.leadboxer.store import LeadStore, QueryError, day_window

DEFAULT_API_KEY = "sandbox-key"
DEFAULT_TIME_ZONE = "Europe/Amsterdam"
DEFAULT_LIMIT = 50
MAX_LIMIT = 1000

UNAUTHORIZED = {"error": "Unauthorized", "message": "Invalid or missing API key"}


def _error(status: int, message: str) -> HttpError:
    return HttpError(status, {"error": HTTPStatus(status).phrase, "message": message})


def _fault_answer(rule: FaultRule) -> tuple[int, Any, dict[str, str]]:
    """A ``status`` fault, in LeadBoxer's error shape (a 429 carries ``Retry-After: 1``)."""
    headers = {"Retry-After": "1"} if rule.status == 429 else {}
    try:
        phrase = HTTPStatus(rule.status).phrase
    except ValueError:
        phrase = "Error"
    return rule.status, {"error": phrase, "message": "Injected fault"}, headers


def _fingerprint(*parts: Any) -> str:
    return hashlib.sha1(json.dumps(parts, default=str).encode()).hexdigest()[:12]


def encode_token(offset: int, fingerprint: str) -> str:
    raw = f"lb1:{offset}:{fingerprint}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, fingerprint: str) -> int:
    """Offset of an opaque page token; 400 when garbled or issued for another query."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        tag, offset_text, token_fp = raw.split(":")
        offset = int(offset_text)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise _error(400, "Invalid nextToken") from None
    if tag != "lb1" or offset < 0 or token_fp != fingerprint:
        raise _error(400, "Invalid nextToken")
    return offset


# -- lead-list arguments (each one 400s on its own terms) ----------------------------------------------

def _time_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise _error(400, f"Unknown timeZone {name!r}") from None


def _segment_id(text: str | None) -> int | None:
    if text in (None, ""):
        return None
    try:
        return int(text)
    except ValueError:
        raise _error(400, f"segmentId must be an integer, got {text!r}") from None


def _time_window(request: Request, tz: ZoneInfo) -> tuple[str, int, int] | None:
    """``criteriaTimeFilter`` (``field|op|value``, or ``op|value`` with the field in ``timeField``)."""
    time_filter = request.arg("criteriaTimeFilter")
    if not time_filter:
        return None
    if time_filter.count("|") == 1:
        time_filter = f"{request.arg('timeField') or 'eventEsTimestamp'}|{time_filter}"
    try:
        return day_window(time_filter, tz)
    except QueryError as exc:
        raise _error(400, str(exc)) from None


def _required_fields(field_filter: str | None) -> tuple[str, ...]:
    """``criteriaFieldFilter=hasanyvalue|field[;field...]``: the fields a lead must have."""
    if not field_filter:
        return ()
    op, _, fields = field_filter.partition("|")
    if op.strip().lower() != "hasanyvalue" or not fields.strip():
        raise _error(400, "criteriaFieldFilter must be hasanyvalue|field[;field...]")
    return tuple(f.strip() for f in fields.split(";") if f.strip())


def _sort(sort_text: str) -> tuple[str, str]:
    sort_field, _, direction = sort_text.partition("|")
    direction = (direction or "desc").lower()
    if sort_field not in ("lastEvent", "_score") or direction not in ("asc", "desc"):
        raise _error(400, f"sortBy must be lastEvent|desc, lastEvent|asc, _score|desc or _score|asc, "
                          f"got {sort_text!r}")
    return sort_field, direction


class LeadBoxerApp:
    """The app handed to ``SandboxServer``: ``handle(request, handler) -> (status, body, headers) | None``."""

    def __init__(self, data: dict[str, Any], *, api_key: str = DEFAULT_API_KEY, latency: float = 0.0,
                 faults: Iterable[dict[str, Any]] = (), config: dict[str, Any] | None = None) -> None:
        self.api_key = api_key
        self.latency = float(latency)
        self.faults = FaultInjector()
        for spec in faults:
            self.faults.add(spec)
        self.config = dict(config or {})
        self._lock = threading.Lock()
        self._reset_counters()
        self.load(data)
        self.router = Router()
        r = self.router
        r.add("GET", "/v1/leads", self.list_leads)
        r.add("GET", "/v1/leads/sessions", self.list_sessions)
        r.add("GET", "/v1/leads/events", self.list_events)
        r.add("GET", "/v1/leads/{leadId}", self.get_lead)
        r.add("GET", "/v1/segments", self.list_segments)
        r.add("GET", "/_sandbox/state", lambda req: (200, self.state()))
        r.add("GET", "/_sandbox/faults", lambda req: (200, {"faults": self.faults.rules()}))
        r.add("POST", "/_sandbox/faults", self._post_faults)
        r.add("DELETE", "/_sandbox/faults", self._delete_faults)
        r.add("POST", "/_sandbox/reset", self._post_reset)
        r.add("POST", "/_sandbox/data", self._post_data)
        self._route_names = {h: p for p, h in [
            ("/v1/leads", self.list_leads), ("/v1/leads/sessions", self.list_sessions),
            ("/v1/leads/events", self.list_events), ("/v1/leads/{leadId}", self.get_lead),
            ("/v1/segments", self.list_segments)]}

    # -- state ---------------------------------------------------------------------------------------

    def load(self, data: dict[str, Any]) -> None:
        """Serve ``data`` (the dataset dict) from now on."""
        store = LeadStore(data)
        with self._lock:
            self.data = data
            self.store = store

    def _reset_counters(self) -> None:
        with self._lock:
            self.requests = 0
            self.by_endpoint: Counter[str] = Counter()
            self.by_status: Counter[str] = Counter()

    def reset(self) -> None:
        self._reset_counters()
        self.faults.clear()

    def state(self) -> dict[str, Any]:
        with self._lock:
            counters = {"requests": self.requests, "by_endpoint": dict(self.by_endpoint),
                        "responses_by_status": dict(self.by_status)}
            store = self.store
        config = {**self.config, "api_key": self.api_key, "latency": self.latency, "site": store.site,
                  "segments": [s.get("segmentId") if isinstance(s, dict) else s for s in store.segments],
                  "faults": self.faults.rules()}
        return {"counters": counters, "config": config, "leads": len(store.leads)}

    # -- dispatch ------------------------------------------------------------------------------------

    def handle(self, request: Request, handler: Any) -> tuple[int, Any, dict[str, str]] | None:
        control = request.path.startswith("/_sandbox")
        endpoint = f"{request.method} (unknown)"
        try:
            resolved = self.router.resolve(request.method, request.path)
        except HttpError:  # wrong method: answered by _answer
            resolved = None
        if resolved is not None:
            endpoint = f"{request.method} {self._route_names.get(resolved[0], request.path)}"
        if not control:
            with self._lock:
                self.requests += 1
                self.by_endpoint[endpoint] += 1
        result = self._answer(request, handler, control)
        if result is not None and not control:
            with self._lock:
                self.by_status[str(result[0])] += 1
        return result

    def _answer(self, request: Request, handler: Any, control: bool) -> tuple[int, Any, dict[str, str]] | None:
        try:
            if not control:
                rule = self.faults.pick(request.method, request.path)
                if rule is not None:
                    if apply_transport_fault(rule, handler):
                        return None
                    if rule.kind == "status":
                        return _fault_answer(rule)
                    request.repeat_cursor = rule.kind == "repeat_cursor"
                if self.latency > 0:
                    time.sleep(self.latency)
                if request.headers.get("x-api-key") != self.api_key:
                    return 401, UNAUTHORIZED, {}
            resolved = self.router.resolve(request.method, request.path)
            if resolved is None:
                raise _error(404, f"No route for {request.method} {request.path}")
            route, params = resolved
            request.path_params = params
            result = route(request)
            status, body = result[0], result[1]
            headers = result[2] if len(result) > 2 else {}
            return status, body, headers
        except HttpError as exc:
            body = exc.body
            if isinstance(body, dict) and "success" in body:  # common.py's Pipedrive-style errors
                body = {"error": HTTPStatus(exc.status).phrase, "message": body.get("error")}
            return exc.status, body, exc.headers
        except Exception as exc:  # noqa: BLE001 - a sandbox bug must answer, not hang the client
            return 500, {"error": "Internal Server Error", "message": f"{type(exc).__name__}: {exc}"}, {}

    # -- helpers -------------------------------------------------------------------------------------

    @staticmethod
    def _limit(request: Request) -> int:
        text = request.arg("limit")
        if text in (None, ""):
            return DEFAULT_LIMIT
        try:
            limit = int(text)
        except ValueError:
            raise _error(400, f"limit must be an integer, got {text!r}") from None
        if limit < 1:
            raise _error(400, "limit must be at least 1")
        return min(limit, MAX_LIMIT)

    @staticmethod
    def _required(request: Request, name: str) -> str:
        value = request.arg(name)
        if value is None or not value.strip():
            raise _error(400, f"{name} is required")
        return value

    def _page(self, request: Request, items: list[Any], fingerprint: str) -> tuple[list[Any], str | None]:
        """A page and its ``nextToken``; under a ``repeat_cursor`` fault the token points back at this page
        (the one sent, or on a first page a token for offset 0)."""
        limit = self._limit(request)
        token = request.arg("nextToken")
        offset = decode_token(token, fingerprint) if token else 0
        page = items[offset:offset + limit]
        end = offset + len(page)
        if request.repeat_cursor:
            return page, token or encode_token(0, fingerprint)
        return page, (encode_token(end, fingerprint) if end < len(items) else None)

    # -- v1 routes -----------------------------------------------------------------------------------

    def list_leads(self, request: Request):
        site = self._required(request, "site")
        store = self.store
        tz_name = request.arg("timeZone") or DEFAULT_TIME_ZONE
        tz = _time_zone(tz_name)
        segment_id = _segment_id(request.arg("segmentId"))
        window = _time_window(request, tz)
        required = _required_fields(request.arg("criteriaFieldFilter"))
        sort_field, direction = _sort(request.arg("sortBy") or "lastEvent|desc")
        fingerprint = _fingerprint("leads", site, segment_id, request.arg("criteriaTimeFilter"),
                                   request.arg("timeField"), tz_name, required, sort_field, direction)
        if site != store.site:
            indexes: list[int] = []
        else:
            indexes = store.query(segment_id=segment_id, window=window, required_fields=required,
                                  sort=(sort_field, direction))
        page, next_token = self._page(request, indexes, fingerprint)
        data = [store.leads[i] for i in page]
        return 200, {"data": data, "nextToken": next_token, "total": len(indexes), "rows": len(data),
                     "site": site, "timeZone": tz_name}

    def get_lead(self, request: Request):
        lead_id = request.path_params["leadId"]
        site = self._required(request, "site")
        store = self.store
        lead = store.by_id.get(lead_id) if site == store.site else None
        if lead is None:
            raise _error(404, f"Lead {lead_id} not found in dataset {site}")
        return 200, {"data": lead}

    def list_sessions(self, request: Request):
        lead_id = self._required(request, "leadId")
        site = self._required(request, "site")
        store = self.store
        sessions = store.sessions.get(lead_id, []) if site == store.site else []
        page, next_token = self._page(request, sessions, _fingerprint("sessions", site, lead_id))
        return 200, {"data": page, "nextToken": next_token}

    def list_events(self, request: Request):
        session_id = self._required(request, "sessionId")
        site = self._required(request, "site")
        store = self.store
        events = store.events.get(session_id, []) if site == store.site else []
        page, next_token = self._page(request, events, _fingerprint("events", site, session_id))
        return 200, {"data": page, "nextToken": next_token}

    def list_segments(self, request: Request):
        dataset_id = self._required(request, "datasetId")
        store = self.store
        return 200, {"data": store.segments if dataset_id == store.site else []}

    # -- control routes ------------------------------------------------------------------------------

    def _post_faults(self, request: Request):
        spec = request.json()
        specs = spec if isinstance(spec, list) else [spec]
        try:
            for item in specs:
                if not isinstance(item, dict):
                    raise ValueError("a fault rule must be a JSON object")
                self.faults.add(item)
        except (ValueError, TypeError) as exc:
            raise _error(400, f"Invalid fault rule: {exc}") from None
        return 201, {"faults": self.faults.rules()}

    def _delete_faults(self, request: Request):
        self.faults.clear()
        return 200, {"faults": []}

    def _post_reset(self, request: Request):
        self.reset()
        return 200, {"ok": True}

    def _post_data(self, request: Request):
        data = request.json()
        if not isinstance(data, dict):
            raise _error(400, "the dataset must be a JSON object")
        self.load(data)
        return 200, {"ok": True, "leads": len(self.store.leads)}


class LeadBoxerSandbox:
    """A LeadBoxer stand-in on loopback, in a background thread.

    ``data`` is served as given; without it a dataset is generated from ``seed``/``leads``/``start``/
    ``hours``/``site``.
    """

    def __init__(self, data: dict[str, Any] | None = None, *, api_key: str = DEFAULT_API_KEY, seed: int = 7,
                 leads: int = 200, start: str = DEFAULT_START, hours: int = 24, site: str = DEFAULT_SITE,
                 latency: float = 0.0, faults: Iterable[dict[str, Any]] = (), port: int = 0,
                 host: str = "127.0.0.1", verbose: bool = False) -> None:
        if data is None:
            data = generate_dataset(seed=seed, leads=leads, start=start, hours=hours, site=site)
            config = {"source": "generated", "seed": seed, "leads": leads, "start": start, "hours": hours}
        else:
            config = {"source": "data"}
        config["default_segment_id"] = DEFAULT_SEGMENT_ID
        self.app = LeadBoxerApp(data, api_key=api_key, latency=latency, faults=faults, config=config)
        self.host = host
        self.port = port
        self.verbose = verbose
        self._server: SandboxServer | None = None

    @property
    def data(self) -> dict[str, Any]:
        return self.app.data

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the sandbox is not started")
        return f"http://{self.host}:{self._server.port}"

    def start(self) -> LeadBoxerSandbox:
        if self._server is None:
            self._server = SandboxServer(self.app, host=self.host, port=self.port, verbose=self.verbose).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> LeadBoxerSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def state(self) -> dict[str, Any]:
        return copy.deepcopy(self.app.state())

    def add_fault(self, spec: dict[str, Any]):
        return self.app.faults.add(spec)

    def clear_faults(self) -> None:
        self.app.faults.clear()

    def reset(self) -> None:
        self.app.reset()

    def load(self, data: dict[str, Any]) -> None:
        self.app.load(data)
