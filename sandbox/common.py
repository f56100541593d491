"""Plumbing shared by both sandbox servers: routing, JSON bodies, background-thread serving."""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


class HttpError(Exception):
    """Raised by a route handler to answer with ``status`` and a JSON ``body``."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None):
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


class Request:
    """What a route handler sees of one HTTP request."""

    def __init__(self, method: str, path: str, query: dict[str, list[str]], headers, body: bytes):
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.raw_body = body
        self.path_params: dict[str, str] = {}
        # Set by a ``repeat_cursor`` fault rule: the answer's next-page pointer points back at this page.
        self.repeat_cursor = False

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def json(self) -> Any:
        if not self.raw_body:
            return {}
        try:
            return json.loads(self.raw_body)
        except ValueError as exc:
            raise HttpError(400, {"success": False, "error": f"Invalid JSON body: {exc}"}) from exc


Handler = Callable[[Request], "tuple[int, Any] | tuple[int, Any, dict[str, str]]"]


class Router:
    """Maps ``(METHOD, "/path/{param}")`` patterns to handlers."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        regex = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern.rstrip("/")) + "/?$"
        self._routes.append((method, re.compile(regex), handler))

    def resolve(self, method: str, path: str) -> tuple[Handler, dict[str, str]] | None:
        path_matched = False
        for route_method, regex, handler in self._routes:
            match = regex.match(path)
            if match:
                path_matched = True
                if route_method == method:
                    return handler, match.groupdict()
        if path_matched:
            raise HttpError(405, {"success": False, "error": f"Method {method} not allowed"})
        return None


class SandboxRequestHandler(BaseHTTPRequestHandler):
    """Dispatches to ``self.server.app.handle(request)``; the app returns status, body and headers."""

    protocol_version = "HTTP/1.1"
    server_version = "sandbox/1.0"

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without this, Nagle + delayed ACK add ~40 ms per
        # answer on a kept-alive connection.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        if getattr(self.server, "verbose", False):
            super().log_message(format, *args)

    def _dispatch(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(self.command, parts.path, parse_qs(parts.query, keep_blank_values=True),
                          self.headers, body)
        result = self.server.app.handle(request, self)  # type: ignore[attr-defined]
        if result is None:  # the app dropped the connection on purpose
            return
        status, payload, headers = result
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _dispatch


class QuietThreadingHTTPServer(ThreadingHTTPServer):
    """Clients that time out or hang up are part of the game here: no traceback for those."""

    def handle_error(self, request, client_address) -> None:
        import sys

        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class SandboxServer:
    """Runs an app on loopback, in a background thread (tests) or in the foreground (``__main__``)."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, verbose: bool = False):
        self.app = app
        self.httpd = QuietThreadingHTTPServer((host, port), SandboxRequestHandler)
        self.httpd.daemon_threads = True
        self.httpd.app = app  # type: ignore[attr-defined]
        self.httpd.verbose = verbose  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> SandboxServer:
        # A short poll interval makes stop() quick (serve_forever checks for shutdown at that pace).
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"sandbox-{self.port}", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        try:
            self.httpd.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            self.httpd.server_close()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
