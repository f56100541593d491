"""Contract validation against Pipedrive's official OpenAPI documents.

The two documents Pipedrive publishes (``openapi-v1.yaml``, ``openapi-v2.yaml``) live outside the
repository in ``tests/contract/openapi/`` (override with ``PIPEDRIVE_OPENAPI_DIR``). This module
loads them once, builds openapi-core validators once, and validates requests/responses the way our
client sends them: to ``{base}/api/v2/<path>`` or ``{base}/api/v1/<path>`` (``/v1/<path>`` too) where
``base`` is the local sandbox or ``https://<company>.pipedrive.com``. Such URLs are mapped onto the
document's own server (``https://api.pipedrive.com/api/v2`` resp. ``https://api.pipedrive.com/v1``).

Public API::

    load_specs()                   -> Specs (cached)
    validate_request(method, url, *, params=None, json_body=None, headers=None) -> list[str]
    validate_response(method, url, status, body, *, params=None, headers=None)  -> list[str]
    validate_exchange(response: requests.Response)                               -> list[str]
    ContractRecorder()             attach(session) / record(response) / assert_all_valid()
    token_costs()                  -> {("POST", "/api/v2/activities"): 5, ...}

Workarounds for the Pipedrive documents / openapi-core 0.23 are marked ``WORKAROUND`` below and
summarised in ``tests/contract/README.md``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import pickle
import re
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

import requests
import yaml
from jsonschema.exceptions import best_match
from jsonschema_path import SchemaPath
from openapi_core import Config, OpenAPI
from openapi_core import __version__ as OPENAPI_CORE_VERSION
from openapi_core.datatypes import RequestParameters
from openapi_core.security.exceptions import SecurityProviderError
from openapi_core.security.factories import SecurityProviderFactory
from openapi_core.security.providers import BaseProvider
from openapi_core.templating.responses.exceptions import ResponseNotFound
from werkzeug.datastructures import Headers, ImmutableMultiDict

REPO_ROOT = Path(__file__).resolve().parents[2]
SPEC_FILES = {"v1": "openapi-v1.yaml", "v2": "openapi-v2.yaml"}
# The host the documents declare in ``servers``; every URL we validate is rewritten onto it.
SPEC_HOST = "https://api.pipedrive.com"
# Our URL prefix -> (document, prefix of the document's server URL path)
_PREFIXES = (
    ("/api/v2/", "v2", "/api/v2/"),
    ("/api/v1/", "v1", "/v1/"),
    ("/v1/", "v1", "/v1/"),
)
_OUR_PREFIX = {"v1": "/api/v1", "v2": "/api/v2"}
_SLOW_LOAD_SECONDS = 3.0
_CACHE_FORMAT = 1  # bump when the post-parse patching (see WORKAROUNDs) changes


def spec_dir() -> Path:
    """Directory holding Pipedrive's OpenAPI documents (``PIPEDRIVE_OPENAPI_DIR`` wins)."""
    override = os.environ.get("PIPEDRIVE_OPENAPI_DIR")
    if override:
        return Path(override)
    return Path(__file__).resolve().parent / "openapi"


# --------------------------------------------------------------------------------------------
# WORKAROUND (security): both documents declare every operation as ``api_key`` OR ``oauth2``.
# openapi-core's provider for oauth2 is ``UnsupportedProvider``, which only emits a warning and
# *accepts* the request -- so a request without any credentials validates. We replace it with a
# provider that requires an ``Authorization: Bearer <token>`` header, which makes "no x-api-token
# and no bearer token" an error as it is for the real API.
# --------------------------------------------------------------------------------------------
class _BearerProvider(BaseProvider):
    def __call__(self, parameters: RequestParameters) -> Any:
        value = parameters.header.get("Authorization", "")
        scheme, _, token = str(value).partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise SecurityProviderError("Missing OAuth2 bearer token.")
        return token


class _StrictSecurityProviderFactory(SecurityProviderFactory):
    PROVIDERS: ClassVar[dict[str, type[BaseProvider]]] = {
        **SecurityProviderFactory.PROVIDERS,
        "oauth2": _BearerProvider,
    }


# --------------------------------------------------------------------------------------------
# WORKAROUND (formats): the documents use ``format: url`` (v1, unknown to OAS 3.0 / jsonschema and
# therefore ignored anyway -- registered as a no-op to make that explicit) and ``format: string``
# (meaningless). ``date-time`` is checked by openapi-core with rfc3339-validator; Pipedrive's v1
# responses (and several of the documents' own examples) use ``YYYY-MM-DD HH:MM:SS`` without
# 'T'/offset, so we accept that form as well as RFC 3339.
# --------------------------------------------------------------------------------------------
_PD_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")


def _check_date_time(value: Any) -> bool:
    if not isinstance(value, str):
        return True
    return bool(_PD_DATETIME.match(value))


def _check_anything(value: Any) -> bool:
    return True


_EXTRA_FORMATS = {
    "date-time": _check_date_time,
    "url": _check_anything,
    "string": _check_anything,
}


# --------------------------------------------------------------------------------------------
# WORKAROUND (nullable): OAS 3.0 needs ``nullable: true`` for a ``null`` value, but several
# properties are documented in prose as being ``null`` without it -- most importantly the
# pagination cursor (``next_cursor``: "will be `null` if you have reached the end of the dataset"),
# which every last page of a v2 list/search carries. We add ``nullable: true`` to schemas whose own
# description says they can be null (41x next_cursor, plus a few v1 fields such as
# ``archive_time``/``draft``/``options``). Prose like "set it to `null`" (custom_fields) or
# "assignee_id ... or `null`" (refers to another field) is deliberately not matched.
# --------------------------------------------------------------------------------------------
_SELF_NULL = re.compile(r"(field will be|otherwise|then) [`']null[`']|[`']null[`'] is returned|\bIf null\b")


def _patch_documented_nullables(node: Any) -> int:
    patched = 0
    stack = [node]
    while stack:
        cur = stack.pop()
        if isinstance(cur, dict):
            desc = cur.get("description")
            if "type" in cur and not cur.get("nullable") and isinstance(desc, str) and _SELF_NULL.search(desc):
                cur["nullable"] = True
                patched += 1
            stack.extend(v for v in cur.values() if isinstance(v, (dict, list)))
        elif isinstance(cur, list):
            stack.extend(v for v in cur if isinstance(v, (dict, list)))
    return patched


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------
@dataclass
class SpecDoc:
    name: str  # "v1" / "v2"
    path: Path
    raw: dict
    openapi: OpenAPI
    server_url: str
    load_seconds: float  # YAML parse (or pickle load) + building the OpenAPI object
    from_cache: bool


@dataclass
class Specs:
    docs: dict[str, SpecDoc]
    load_seconds: float
    timings: dict[str, float] = field(default_factory=dict)

    def __getitem__(self, name: str) -> SpecDoc:
        return self.docs[name]


def _yaml_loader() -> type:
    # CSafeLoader (libyaml) is ~10x faster than the pure-Python SafeLoader on these 1-2 MB files.
    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _cache_dir() -> Path | None:
    # A temp dir rather than <repo>/.pytest_cache: creating .pytest_cache ourselves (before pytest
    # does) would leave it without pytest's own ``.gitignore``. Entries are keyed by content sha256.
    uid = getattr(os, "getuid", lambda: "")()
    candidates = [Path(tempfile.gettempdir()) / f"pipedrive-openapi-cache-{uid}"]
    if os.environ.get("PIPEDRIVE_CONTRACT_CACHE_DIR"):
        candidates.insert(0, Path(os.environ["PIPEDRIVE_CONTRACT_CACHE_DIR"]))
    for candidate in candidates:
        try:
            candidate.mkdir(parents=True, exist_ok=True, mode=0o700)
            # we unpickle from here: only trust a directory that is ours and private
            st = candidate.stat()
            if hasattr(os, "getuid") and (st.st_uid != os.getuid() or st.st_mode & 0o022):
                continue
            probe = candidate / ".probe"
            probe.write_bytes(b"")
            probe.unlink()
            return candidate
        except OSError:
            continue
    return None


def _cache_path(path: Path, digest: str) -> Path | None:
    directory = _cache_dir()
    if directory is None:
        return None
    tag = f"{_CACHE_FORMAT}-{OPENAPI_CORE_VERSION}-{yaml.__version__}-py{sys.version_info[0]}{sys.version_info[1]}"
    return directory / f"{path.stem}-{digest[:24]}-{tag}.pickle"


def _build_openapi(raw: dict, *, validate_spec: bool) -> OpenAPI:
    config = Config(
        security_provider_factory=_StrictSecurityProviderFactory(),
        extra_format_validators=_EXTRA_FORMATS,
    )
    if not validate_spec:
        # The document was already checked by openapi-spec-validator when the cache entry for this
        # exact sha256 was written; re-checking costs ~1.6 s and cannot give a different answer.
        config.spec_validator_cls = None
    return OpenAPI(SchemaPath.from_dict(raw), config=config)


def _load_one(name: str, path: Path) -> SpecDoc:
    started = time.perf_counter()
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    use_cache = os.environ.get("PIPEDRIVE_CONTRACT_NO_CACHE", "") in ("", "0")
    cache_file = _cache_path(path, digest) if use_cache else None
    raw = None
    if cache_file is not None and cache_file.exists():
        try:
            with cache_file.open("rb") as fh:
                raw = pickle.load(fh)
        except Exception:  # noqa: BLE001 -- corrupt/incompatible entry: re-read YAML
            raw = None
    from_cache = raw is not None
    if raw is None:
        raw = yaml.load(data, Loader=_yaml_loader())
        raw["x-contract-patched-nullables"] = _patch_documented_nullables(raw)
    openapi = _build_openapi(raw, validate_spec=not from_cache)
    elapsed = time.perf_counter() - started
    if cache_file is not None and not from_cache:
        # Parsing + spec validation measured ~2.5 s for both documents on a dev box (YAML 0.8 s,
        # openapi-spec-validator 1.6 s); CI runners are slower and easily cross the 3 s budget.
        # The pickle of the parsed dict loads in ~20 ms and lets us skip the spec re-validation.
        try:
            tmp = cache_file.with_suffix(f".{os.getpid()}.tmp")
            with tmp.open("wb") as fh:
                pickle.dump(raw, fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, cache_file)
        except OSError:
            pass
    server_url = raw["servers"][0]["url"].rstrip("/")
    return SpecDoc(name, path, raw, openapi, server_url, elapsed, from_cache)


@functools.lru_cache(maxsize=1)
def load_specs() -> Specs:
    """Load (once per process) both documents and build their openapi-core objects."""
    started = time.perf_counter()
    directory = spec_dir()
    docs = {}
    for name, filename in SPEC_FILES.items():
        path = directory / filename
        if not path.is_file():
            raise FileNotFoundError(f"Pipedrive OpenAPI document not found: {path} (the repository holds them in "
                                    "tests/contract/openapi/; PIPEDRIVE_OPENAPI_DIR points elsewhere)")
        docs[name] = _load_one(name, path)
    total = time.perf_counter() - started
    if total > _SLOW_LOAD_SECONDS and not all(d.from_cache for d in docs.values()):
        print(
            f"pipedrive_contract: loading OpenAPI documents took {total:.1f}s (cached for the next run)",
            file=sys.stderr,
        )
    return Specs(docs, total, {n: d.load_seconds for n, d in docs.items()})


# --------------------------------------------------------------------------------------------
# openapi-core request/response protocol objects
# --------------------------------------------------------------------------------------------
class _Request:
    def __init__(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        headers: Headers,
        body: bytes | None,
        content_type: str,
    ):
        self.host_url = SPEC_HOST
        self.path = path
        self.method = method.lower()
        self.body = body
        self.content_type = content_type
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(query), header=headers, cookie=ImmutableMultiDict()
        )


class _Response:
    def __init__(self, status: int, data: bytes | None, headers: Headers, content_type: str):
        self.status_code = int(status)
        self.data = data
        self.headers = headers
        self.content_type = content_type


@dataclass
class _Target:
    doc: SpecDoc
    spec_path: str  # path on the document's server, e.g. "/v1/leads"


def _map_url(url: str) -> tuple[_Target | None, str | None, list[tuple[str, str]]]:
    """Map one of our URLs onto (document, spec-server path); returns (target, error, query)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    path = parts.path or "/"
    for prefix, name, server_prefix in _PREFIXES:
        if path.startswith(prefix):
            doc = load_specs()[name]
            return _Target(doc, server_prefix + path[len(prefix) :]), None, query
    return None, f"URL {url!r} is not a Pipedrive API URL (/api/v2/..., /api/v1/..., /v1/...)", query


def _prepare(method: str, url: str, params: Any, json_body: Any, headers: Mapping | None):
    """Encode exactly as ``requests`` would put it on the wire."""
    return requests.Request(method.upper(), url, params=params, json=json_body, headers=dict(headers or {})).prepare()


def _body_bytes(body: Any) -> bytes | None:
    if body is None:
        return None
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    return json.dumps(body).encode("utf-8")


# --------------------------------------------------------------------------------------------
# Error formatting
# --------------------------------------------------------------------------------------------
_MAX_LINE = 300


def _short(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= _MAX_LINE else text[: _MAX_LINE - 3] + "..."


def _fmt_schema_error(err: Any) -> str:
    location = "/".join(str(p) for p in getattr(err, "absolute_path", []) or []) or "<root>"
    line = f"{location}: {getattr(err, 'message', err)}"
    context = getattr(err, "context", None)
    if context:  # oneOf/anyOf: say which branch came closest
        best = best_match(context)
        if best is not None:
            inner = "/".join(str(p) for p in best.absolute_path) or "<root>"
            line += f" (closest: {inner}: {best.message})"
    return _short(line)


def _format_errors(exc: BaseException) -> list[str]:
    """Flatten openapi-core's chained exceptions into one readable line per problem."""
    chain: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in chain:
        chain.append(cur)
        cur = cur.__cause__ or cur.__context__
    # openapi-core's messages of the form "Value {...huge...} not valid for schema" repeat the value;
    # the jsonschema errors below them say the same thing precisely.
    labels: list[str] = []
    texts: list[str] = []
    for item in chain:
        text = str(item)
        if getattr(item, "schema_errors", None) or "not valid for schema" in text:
            break
        if "BadRequestKeyError" == type(item).__name__:
            break  # werkzeug's "400 Bad Request: The browser (or proxy) sent..." noise
        if any(text in seen or seen in text for seen in texts if seen):
            continue
        texts.append(text)
        name = type(item).__name__
        labels.append(text if text.startswith(name) else f"{name}: {text}" if text else name)
    head = " -- ".join(labels) or type(exc).__name__
    for item in chain:
        schema_errors = getattr(item, "schema_errors", None)
        if schema_errors:
            return [_short(f"{head}: {_fmt_schema_error(e)}") for e in schema_errors]
    return [_short(head)]


# --------------------------------------------------------------------------------------------
# Query parameter pre-checks
# --------------------------------------------------------------------------------------------
def _operation(target: _Target, method: str) -> tuple[str, dict, dict] | None:
    """Find (template, path item, operation) in the raw document (for our own extra checks)."""
    server_path = urlsplit(target.doc.server_url).path.rstrip("/")
    rel = target.spec_path[len(server_path) :] or "/"
    for template, item in _templates(target.doc.name):
        if template.fullmatch(rel):
            op = item[1].get(method.lower())
            if op is not None:
                return item[0], item[1], op
    return None


@functools.lru_cache(maxsize=8)
def _templates(name: str) -> list[tuple[re.Pattern, tuple[str, dict]]]:
    paths = load_specs()[name].raw["paths"]
    out = []
    # literal paths before templated ones, like openapi-core's path finder
    for template in sorted(paths, key=lambda t: (t.count("{"), -len(t))):
        regex = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
        out.append((re.compile(regex), (template, paths[template])))
    return out


def _resolve(doc: SpecDoc, node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        cur: Any = doc.raw
        for part in ref.lstrip("#/").split("/"):
            cur = cur[part.replace("~1", "/").replace("~0", "~")]
        node = cur
    return node


def _query_prechecks(
    target: _Target, method: str, query: list[tuple[str, str]]
) -> tuple[list[str], list[tuple[str, str]]]:
    """Checks openapi-core does not do, and rewrites for documented-but-unschematised forms."""
    found = _operation(target, method)
    if found is None:
        return [], query  # openapi-core will report the unknown path/method
    _, item, op = found
    declared: dict[str, dict] = {}
    for param in list(item.get("parameters", [])) + list(op.get("parameters", [])):
        param = _resolve(target.doc, param)
        if param.get("in") == "query":
            declared[param["name"]] = param
    errors = []
    rewritten = []
    for name, value in query:
        param = declared.get(name)
        if param is None:
            # openapi-core silently ignores undeclared query parameters; Pipedrive does too, which
            # hides typos (e.g. v1-only parameters sent to v2). We treat them as contract errors.
            errors.append(
                f"UnknownQueryParameter: {name!r} is not a declared query parameter of {method.upper()} {found[0]}"
            )
            continue
        schema = _resolve(target.doc, param.get("schema", {}))
        # WORKAROUND (comma-separated enums): parameters such as searchPersons' ``fields`` are
        # documented as "A comma-separated string array" but typed ``string`` + ``enum`` (so
        # ``fields=email,phone`` is valid for Pipedrive but not for the schema). We check every item
        # against the enum here and hand openapi-core the first item only.
        description = str(param.get("description", "")).lower()
        if schema.get("type") == "string" and "enum" in schema and "," in value and "comma-separated" in description:
            items = [v.strip() for v in value.split(",")]
            bad = [v for v in items if v not in schema["enum"]]
            if bad:
                errors.append(f"InvalidParameter: query {name!r}: {bad} not in {schema['enum']}")
                continue
            value = items[0]
        # STRICTER than openapi-core: its boolean caster accepts y/yes/t/on/1/True... for query
        # booleans. Pipedrive documents (and its examples use) ``true``/``false``; in particular
        # ``requests`` turns a Python ``True`` into ``True``, which we want to catch.
        if schema.get("type") == "boolean" and value not in ("true", "false"):
            errors.append(f"InvalidParameter: query {name!r}: {value!r} is not 'true' or 'false'")
            continue
        rewritten.append((name, value))
    return errors, rewritten


# --------------------------------------------------------------------------------------------
# Validation entry points
# --------------------------------------------------------------------------------------------
def _validate_prepared_request(prepared: requests.PreparedRequest) -> list[str]:
    method = prepared.method or "GET"
    target, error, query = _map_url(prepared.url or "")
    if error:
        return [error]
    assert target is not None
    errors, query = _query_prechecks(target, method, query)
    headers = Headers(dict(prepared.headers))
    body = _body_bytes(prepared.body)
    content_type = headers.get("Content-Type") or "application/json"
    req = _Request(method, target.spec_path, query, headers, body, content_type)
    for exc in target.doc.openapi.request_validator.iter_errors(req):
        errors.extend(_format_errors(exc))
    return errors


def validate_request(
    method: str, url: str, *, params: Any = None, json_body: Any = None, headers: Mapping[str, str] | None = None
) -> list[str]:
    """Validate one request (path, method, auth, query parameters, JSON body); [] when valid."""
    return _validate_prepared_request(_prepare(method, url, params, json_body, headers))


def _validate_response(
    method: str, url: str, status: int, body: bytes | None, headers: Mapping[str, str] | None
) -> list[str]:
    target, error, query = _map_url(url)
    if error:
        return [error]
    assert target is not None
    req = _Request(method, target.spec_path, query, Headers(), None, "application/json")
    resp_headers = Headers(dict(headers or {}))
    content_type = resp_headers.get("Content-Type") or "application/json"
    resp = _Response(status, body, resp_headers, content_type)
    errors: list[str] = []
    for exc in target.doc.openapi.response_validator.iter_errors(req, resp):
        if isinstance(exc, ResponseNotFound) or isinstance(exc.__cause__, ResponseNotFound):
            # The document declares nothing for this status (e.g. 404, 429): nothing to check.
            continue
        errors.extend(_format_errors(exc))
    return errors


def validate_response(
    method: str, url: str, status: int, body: Any, *, params: Any = None, headers: Mapping[str, str] | None = None
) -> list[str]:
    """Validate a response body against the operation's schema for ``status``; [] when valid.

    ``body`` may be bytes/str (raw JSON) or an already-decoded JSON value.
    """
    if params:
        url = _prepare(method, url, params, None, None).url or url
    return _validate_response(method, url, status, _body_bytes(body), headers)


def validate_exchange(response: requests.Response) -> list[str]:
    """Validate ``response.request`` and ``response`` against the documents."""
    prepared = response.request
    errors = [f"request: {e}" for e in _validate_prepared_request(prepared)]
    errors += [
        f"response {response.status_code}: {e}"
        for e in _validate_response(
            prepared.method or "GET", prepared.url or "", response.status_code, response.content, response.headers
        )
    ]
    return errors


# --------------------------------------------------------------------------------------------
# Recorder
# --------------------------------------------------------------------------------------------
@dataclass
class Exchange:
    method: str
    url: str
    path: str
    status: int
    errors: list[str]


class ContractRecorder:
    """Records (and validates) every exchange of the sessions it is attached to.

    >>> recorder = ContractRecorder()
    >>> recorder.attach(hook.get_conn())       # a requests.Session
    >>> ...exercise the hook...
    >>> recorder.assert_all_valid()
    """

    def __init__(self) -> None:
        self.exchanges: list[Exchange] = []
        self._lock = threading.Lock()

    def attach(self, session: requests.Session) -> requests.Session:
        hooks = session.hooks.setdefault("response", [])
        if not isinstance(hooks, list):
            hooks = session.hooks["response"] = [hooks]
        if self._hook not in hooks:
            hooks.append(self._hook)
        return session

    def detach(self, session: requests.Session) -> None:
        hooks = session.hooks.get("response", [])
        if self._hook in hooks:
            hooks.remove(self._hook)

    def _hook(self, response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
        self.record(response)
        return response

    def __call__(self, response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
        return self._hook(response)

    def record(self, response: requests.Response) -> Exchange:
        req = response.request
        url = req.url or ""
        exchange = Exchange(
            req.method or "", url, urlsplit(url).path, response.status_code, validate_exchange(response)
        )
        with self._lock:
            self.exchanges.append(exchange)
        return exchange

    @property
    def invalid(self) -> list[Exchange]:
        return [e for e in self.exchanges if e.errors]

    def operations(self) -> set[tuple[str, str]]:
        return {(e.method, e.path) for e in self.exchanges}

    def assert_all_valid(self, *, allow_empty: bool = True) -> None:
        if not allow_empty and not self.exchanges:
            raise AssertionError("no Pipedrive exchanges were recorded")
        bad = self.invalid
        if bad:
            lines = [f"{len(bad)} of {len(self.exchanges)} Pipedrive exchanges violate the OpenAPI contract:"]
            for ex in bad:
                lines.append(f"- {ex.method} {ex.path} -> {ex.status}")
                lines.extend(f"    {err}" for err in ex.errors)
            raise AssertionError("\n".join(lines))


# --------------------------------------------------------------------------------------------
# Token costs
# --------------------------------------------------------------------------------------------
_HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@functools.lru_cache(maxsize=1)
def _token_costs() -> dict[tuple[str, str], int]:
    costs: dict[tuple[str, str], int] = {}
    for name, doc in load_specs().docs.items():
        for template, item in doc.raw["paths"].items():
            for method in _HTTP_METHODS:
                op = item.get(method)
                if isinstance(op, dict) and "x-token-cost" in op:
                    costs[(method.upper(), _OUR_PREFIX[name] + template)] = int(op["x-token-cost"])
    return costs


def token_costs() -> dict[tuple[str, str], int]:
    """``{(METHOD, "/api/v2/persons/search"): 20, (METHOD, "/api/v1/leads"): 10, ...}``."""
    return dict(_token_costs())


def operations() -> Iterable[tuple[str, str, dict]]:
    """Every (METHOD, our path template, operation) in both documents."""
    for name, doc in load_specs().docs.items():
        for template, item in doc.raw["paths"].items():
            for method in _HTTP_METHODS:
                if isinstance(item.get(method), dict):
                    yield method.upper(), _OUR_PREFIX[name] + template, item[method]
