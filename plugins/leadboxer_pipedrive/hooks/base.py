"""A JSON-over-HTTP hook on the HTTP provider's ``HttpHook``: its connection handling (base URL from
host, scheme and port; ``verify``, ``proxies``, ``cert``, ``trust_env``, ``max_redirects``, ``timeout``
extras; TCP keep-alive), with our own retry policy on top.

Subclasses set the class attributes (service name, default host, the header that carries the secret)
and add typed methods on top of :meth:`JsonApiHook.request` and :meth:`JsonApiHook.pages`.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from typing import Any

import requests
import tenacity
import urllib3
from airflow.providers.http.hooks.http import HttpHook
from requests_toolbelt.adapters.socket_options import TCPKeepAliveAdapter

from leadboxer_pipedrive.exceptions import (
    AmbiguousWriteError,
    ApiAuthError,
    ApiError,
    ApiRequestError,
    ApiUnreachableError,
    TransientApiError,
)
from leadboxer_pipedrive.hooks.pagination import Paginator, read_pages


class JsonApiHook(HttpHook):
    """Base for the LeadBoxer and Pipedrive hooks.

    The connection is read once, lazily, by :meth:`get_conn`, which builds the one session every call
    goes through (``HttpHook.get_conn`` builds a new one each time). ``host`` is the base URL (https
    unless it names another scheme), the ``password`` the secret sent in :attr:`auth_header`. Besides
    ``HttpHook``'s extras, ``extra`` may set ``max_attempts`` (tries per call, default 6) and
    ``backoff_base`` (seconds before the first retry when the server gives no hint, doubling). Unlike
    ``HttpHook``, extras are never sent as headers: ours are settings, some of them secret.
    """

    service_name: str = "API"
    default_host: str = ""
    auth_header: str = ""
    retryable_statuses: frozenset[int] = frozenset({429, 500, 502, 503, 504})
    auth_statuses: frozenset[int] = frozenset({401, 402, 403})
    default_timeout: float = 30.0
    # A host that never accepts the connection (a firewall dropping it) is given less time than a slow
    # answer: six attempts then take about a minute, not three.
    connect_timeout: float = 10.0
    default_max_attempts: int = 6
    # Exponential backoff between attempts when the server gives no hint (seconds).
    backoff_base: float = 0.5
    backoff_max: float = 30.0

    def __init__(self, conn_id: str | None = None, *, max_attempts: int | None = None,
                 timeout: float | None = None) -> None:
        super().__init__(method="GET", http_conn_id=conn_id or self.default_conn_name)
        self._max_attempts_override = max_attempts
        self.max_attempts = max_attempts or self.default_max_attempts
        self._timeout_override = timeout
        self._session: requests.Session | None = None
        self.timeout = timeout or self.default_timeout
        self.extras: dict[str, Any] = {}
        self.responses_by_status: dict[int, int] = {}
        self._status_lock = threading.Lock()
        self._conn_lock = threading.RLock()  # the session is built once, whichever thread asks first

    @property
    def conn_id(self) -> str:
        return self.http_conn_id

    # -- connection -------------------------------------------------------------------------------
    def get_conn(self, headers: dict[str, Any] | None = None,
                 extra_options: dict[str, Any] | None = None) -> requests.Session:
        """The hook's one session, built from the Airflow connection on first use."""
        with self._conn_lock:
            if self._session is None:
                self._session = super().get_conn(headers, extra_options)
                self.configure_limits()
            return self._session

    def configure_limits(self) -> None:
        """Called once the session is built and :attr:`extras` read (an extension point: the hooks build
        their client-side rate limiters here)."""

    def _set_base_url(self, connection: Any) -> None:
        host = connection.host or self.default_host
        if not host.strip():
            raise ValueError(f"connection {self.conn_id!r} has no host: set it to the service's base URL")
        self.base_url = base_url(host, connection.schema, connection.port)
        self._base_url_initialized = True

    def _configure_session_from_auth(self, session: requests.Session, connection: Any) -> requests.Session:
        """Our settings from the extras, then the secret in its header (never HTTP basic auth)."""
        self.extras = dict(connection.extra_dejson or {})
        if self._max_attempts_override is None and self.extras.get("max_attempts"):
            self.max_attempts = int(self.extras["max_attempts"])
        if self.extras.get("backoff_base") is not None:
            self.backoff_base = float(self.extras["backoff_base"])
        if self._timeout_override is None and self.extras.get("timeout"):
            self.timeout = float(self.extras["timeout"])
        session.auth = None
        session.headers.update({"Accept": "application/json", **self._connection_auth_headers(connection)})
        return session

    def _configure_session_from_extra(self, session: requests.Session, connection: Any,
                                      extra_options: dict[str, Any]) -> requests.Session:
        headers = dict(session.headers)
        session = super()._configure_session_from_extra(session, connection, extra_options)
        session.headers.clear()  # HttpHook sends every extra it does not know as a header
        session.headers.update(headers)
        if isinstance(session.verify, str) and session.verify.strip().lower() in _BOOLEAN_WORDS:
            session.verify = _BOOLEAN_WORDS[session.verify.strip().lower()]  # else a CA bundle's path
        return session

    def _configure_session_from_mount_adapters(self, session: requests.Session) -> requests.Session:
        # HttpHook's keep-alive adapter, with a connection for every request we let be in flight at once.
        adapter = TCPKeepAliveAdapter(idle=120, count=20, interval=30, pool_connections=4,
                                      pool_maxsize=self.pool_size())
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    def pool_size(self) -> int:
        """Pooled connections (an extension point: subclasses size it to their concurrency)."""
        return 10

    def _connection_auth_headers(self, conn: Any) -> dict[str, str]:
        """The session's auth headers for ``conn`` (an extension point: the Pipedrive hook adds OAuth 2).

        Called by :meth:`get_conn` after :attr:`extras` and :attr:`base_url` are set; by default the
        connection's password is the secret, sent in :attr:`auth_header`.
        """
        secret = conn.password
        if not secret:
            raise ApiAuthError(self.service_name, "-", "-", None,
                               f"connection {self.conn_id!r} has no password: put the API key/token there")
        return {self.auth_header: secret}

    def close(self) -> None:
        with self._conn_lock:
            if self._session is not None:
                self._session.close()
                self._session = None

    def pages(self, path: str, params: dict[str, Any], paginator: Paginator) -> Iterator[list[Any]]:
        """The rows of every page of a paged read, in order (see :mod:`.pagination`)."""
        return read_pages(lambda page_params: self.request("GET", path, params=page_params),
                          self.service_name, path, params, paginator)

    def items(self, path: str, params: dict[str, Any], paginator: Paginator) -> Iterator[Any]:
        """Every row of every page of a paged read (see :meth:`pages`), read as they are consumed."""
        for page in self.pages(path, params, paginator):
            yield from page

    # -- requests ---------------------------------------------------------------------------------
    # Answers that say the server did not act on the request: safe to resend even a create.
    not_processed_statuses: frozenset[int] = frozenset({429, 503})

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                json_body: Any = None, idempotent: bool = True) -> Any:
        """Send one call, retrying transient failures; return the decoded JSON body.

        ``idempotent=False`` (creates): a timeout, dropped connection or 500/502/504 leaves it unknown
        whether the record was created, so it raises :class:`AmbiguousWriteError` instead of resending.
        """
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.max_attempts),
            wait=self._wait_before_retry,
            retry=tenacity.retry_if_exception_type(TransientApiError),
            before_sleep=self._log_retry,
            reraise=True,
        )
        return retrying(self._send_once, method, path, params, json_body, idempotent)

    def _send_once(self, method: str, path: str, params: dict[str, Any] | None, json_body: Any,
                   idempotent: bool = True) -> Any:
        session = self.get_conn()
        self.before_request(method, path)
        try:
            response = session.request(method, self.base_url + path, params=_clean(params),
                                        json=json_body, timeout=(min(self.connect_timeout, self.timeout), self.timeout))
        except (requests.ConnectionError, requests.Timeout) as exc:
            # Messages name the host and the cause only: the secret travels in a header.
            unreachable = _unreachable_because(exc)
            if unreachable:
                raise ApiUnreachableError(self.service_name, method, path, None,
                                          f"{unreachable} (check the host of connection {self.conn_id!r}: "
                                          f"{self.base_url})") from None
            never_sent = isinstance(exc, requests.ConnectTimeout) or "NewConnectionError" in repr(exc)
            cause = f"{type(exc).__name__} from {self.base_url}"
            if not idempotent and not never_sent:
                raise AmbiguousWriteError(self.service_name, method, path, None,
                                          f"{cause}: no answer, the write may have happened") from None
            raise TransientApiError(self.service_name, method, path, None, f"{cause}: no answer") from None
        with self._status_lock:  # several threads may share the hook
            self.responses_by_status[response.status_code] = self.responses_by_status.get(response.status_code, 0) + 1
        self.after_response(method, path, response)
        if response.status_code < 400:
            return self._decode(method, path, response)
        error = self.error_for(method, path, response, self._error_detail(response))
        if not idempotent and isinstance(error, TransientApiError) and \
                response.status_code not in self.not_processed_statuses:
            raise AmbiguousWriteError(self.service_name, method, path, response.status_code,
                                      f"{error.detail} (the write may have happened)")
        raise error

    def error_for(self, method: str, path: str, response: requests.Response, detail: str) -> ApiError:
        """The exception for an error answer (an extension point: subclasses refine it)."""
        status = response.status_code
        if status in self.retryable_statuses:
            return TransientApiError(self.service_name, method, path, status, detail,
                                     retry_after=self.retry_after_seconds(response))
        if status in self.auth_statuses:
            return ApiAuthError(self.service_name, method, path, status,
                                f"{detail} (check the API key/token of connection {self.conn_id!r})")
        return ApiRequestError(self.service_name, method, path, status, detail)

    def _decode(self, method: str, path: str, response: requests.Response) -> Any:
        if not response.content:
            return None
        try:
            try:
                return json.loads(response.content)
            except UnicodeDecodeError:  # not UTF-8: what cannot be read reads U+FFFD
                return json.loads(response.content.decode("utf-8", errors="replace"))
        except ValueError:
            # Not JSON although the server said all was well (an HTML page from a proxy or a wrong host,
            # an answer cut short): the same call gives the same answer, so it is not retried.
            kind = response.headers.get("Content-Type") or "no content type"
            start = response.content[:120].decode("utf-8", errors="replace")
            raise ApiRequestError(self.service_name, method, path, response.status_code,
                                  f"the answer is not JSON ({kind}, {len(response.content)} bytes): {start!r}") \
                from None

    @staticmethod
    def _error_detail(response: requests.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            return (response.text or response.reason or "")[:300]
        if isinstance(body, dict):
            parts = [str(body[key]) for key in ("error", "message", "error_info", "code") if body.get(key)]
            if parts:
                return "; ".join(parts)[:500]
        return json.dumps(body)[:300]

    # -- extension points -------------------------------------------------------------------------
    def before_request(self, method: str, path: str) -> None:
        """Called before each attempt (the Pipedrive hook waits for its rate limiter here)."""

    def after_response(self, method: str, path: str, response: requests.Response) -> None:
        """Called after each answer (the Pipedrive hook counts tokens and reacts to 429 here)."""

    @staticmethod
    def retry_after_seconds(response: requests.Response) -> float | None:
        for header in ("Retry-After", "x-ratelimit-reset"):
            value = response.headers.get(header)
            if value:
                try:
                    return max(float(value), 0.0)
                except ValueError:
                    continue
        return None

    def _wait_before_retry(self, retry_state: tenacity.RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        hinted = getattr(exc, "retry_after", None)
        if hinted is not None:
            return min(hinted + random.uniform(0, 0.25), self.backoff_max)
        exponent = retry_state.attempt_number - 1
        return min(self.backoff_base * (2 ** exponent) * random.uniform(0.5, 1.5), self.backoff_max)

    def _log_retry(self, retry_state: tenacity.RetryCallState) -> None:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        self.log.warning("%s; retrying (attempt %d of %d) in %.1f s", exc, retry_state.attempt_number + 1,
                         self.max_attempts, retry_state.upcoming_sleep)

def _unreachable_because(exc: requests.RequestException) -> str | None:
    """Why a request could not reach the server at all, when that is no passing trouble: the name does
    not resolve, the connection is refused, TLS fails. None for timeouts and dropped connections."""
    if isinstance(exc, requests.exceptions.SSLError):
        return f"TLS failed: {str(exc.args[0] if exc.args else exc)[-200:]}"
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    if isinstance(reason, urllib3.exceptions.NameResolutionError):
        return f"the host name does not resolve ({reason.conn.host})"
    if isinstance(reason, urllib3.exceptions.NewConnectionError) and isinstance(reason.__cause__,
                                                                                  ConnectionRefusedError):
        return f"the connection is refused ({reason.conn.host}:{reason.conn.port})"
    return None


def _clean(params: dict[str, Any] | None) -> dict[str, Any] | None:
    """Drop ``None`` values and spell booleans the way both APIs expect (``true``/``false``)."""
    if not params:
        return params
    cleaned: dict[str, Any] = {}
    for key, value in params.items():
        if value is None:
            continue
        cleaned[key] = ("true" if value else "false") if isinstance(value, bool) else value
    return cleaned


def base_url(host: str, scheme: str | None = None, port: int | None = None) -> str:
    """``host`` as a base URL. Secrets travel in headers: a host without a scheme means https (HttpHook
    would take http)."""
    host = host.strip().rstrip("/")
    if "://" not in host:
        host = f"{scheme or 'https'}://{host}"
    if port and host.count(":") < 2:
        host = f"{host}:{port}"
    return host


_BOOLEAN_WORDS = {"true": True, "yes": True, "on": True, "1": True,
                  "false": False, "no": False, "off": False, "0": False}


__all__ = ["JsonApiHook", "ApiError"]
