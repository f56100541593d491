"""Provider metadata, read by Airflow's ProvidersManager through the ``apache_airflow_provider`` entry point.

Installed as a distribution (``pip install .``), the package registers the ``leadboxer`` and ``pipedrive``
connection types: the UI's connection form (labels, hidden fields, the typed extra fields below),
``airflow connections add --conn-type pipedrive`` and ``Connection.get_hook()``. The UI metadata is
declared here ("YAML first", read without importing the hooks); the hooks keep the legacy
``get_ui_field_behaviour``/``get_connection_form_widgets`` methods with the same content for older
Airflow versions. Keep this module free of imports beyond the package version: Airflow calls it on
every process start.
"""

from __future__ import annotations

import copy
from typing import Any

from leadboxer_pipedrive import __version__

PACKAGE_NAME = "leadboxer-pipedrive"
INTEGRATION = "LeadBoxer to Pipedrive"

# Extra fields shared by both HTTP hooks (JsonApiHook reads them from the connection's extra).
_COMMON_FIELDS: dict[str, dict[str, Any]] = {
    "timeout": {
        "label": "Timeout (seconds)",
        "description": "Seconds to wait for each answer before retrying.",
        "schema": {"type": "number", "default": 30, "exclusiveMinimum": 0},
    },
    "verify": {
        "label": "Verify TLS certificates",
        "description": "Leave on; turn off only for a test server with a self-signed certificate.",
        "schema": {"type": "boolean", "default": True},
    },
}

# The port is optional (the URL's own), but shown: Airflow 3.3.2's Test button refuses a connection without
# one (apache/airflow#73298, fixed after 3.3.2), so users set 443 to test theirs from the UI.
_PORT_PLACEHOLDER = "443 (optional; Airflow 3.3.2's Test button needs it)"

CONNECTION_TYPES: list[dict[str, Any]] = [
    {
        "connection-type": "pipedrive",
        "hook-class-name": "leadboxer_pipedrive.hooks.pipedrive.PipedriveHook",
        "hook-name": "Pipedrive",
        "ui-field-behaviour": {
            "hidden-fields": ["schema", "login"],
            "relabeling": {"host": "Company URL", "password": "API token (or OAuth client secret)"},
            "placeholders": {
                "host": "https://yourcompany.pipedrive.com",
                "password": "Your personal API token; with OAuth 2, the app's client secret",
                "port": _PORT_PLACEHOLDER,
            },
        },
        "conn-fields": {
            "burst_limit": {
                "label": "Burst limit (requests per 2 s)",
                "description": "Your plan's API-token burst limit: Lite 20, Growth 40, Premium 100, "
                "Ultimate 120.",
                "schema": {"type": "integer", "default": 20, "minimum": 1},
            },
            "search_burst_limit": {
                "label": "Search burst limit (requests per 2 s)",
                "description": "Search endpoints' own limit: 10 on every plan.",
                "schema": {"type": "integer", "default": 10, "minimum": 1},
            },
            # OAuth 2 (a Marketplace app). The hook also writes access_token, expires_at and api_domain
            # into the extra when it refreshes (not form fields: they change on their own).
            "auth_type": {
                "label": "Authentication",
                "description": "api_token: the password is your API token. oauth2: the password is the app's "
                "client secret and the hook refreshes access tokens with the refresh token below.",
                "schema": {"type": "string", "enum": ["api_token", "oauth2"], "default": "api_token"},
            },
            "client_id": {
                "label": "OAuth client id",
                "description": "The Marketplace app's client id (OAuth 2 only).",
                "schema": {"type": ["string", "null"]},
            },
            "refresh_token": {
                "label": "OAuth refresh token",
                "description": "From the app's authorization (OAuth 2 only); replaced by the hook when "
                "Pipedrive rotates it.",
                "schema": {"type": ["string", "null"], "format": "password"},
            },
            "token_url": {
                "label": "OAuth token URL",
                "description": "Where refresh tokens are traded for access tokens (OAuth 2 only).",
                "schema": {"type": "string", "default": "https://oauth.pipedrive.com/oauth/token"},
            },
            **_COMMON_FIELDS,
        },
    },
    {
        "connection-type": "leadboxer",
        "hook-class-name": "leadboxer_pipedrive.hooks.leadboxer.LeadBoxerHook",
        "hook-name": "LeadBoxer",
        "ui-field-behaviour": {
            "hidden-fields": ["schema", "login"],
            "relabeling": {"host": "API URL", "password": "API key"},
            "placeholders": {
                "host": "https://data.leadboxer.com",
                "password": "LeadBoxer API key (sent as x-api-key)",
                "port": _PORT_PLACEHOLDER,
            },
        },
        "conn-fields": {
            "page_size": {
                "label": "Page size",
                "description": "Rows per page of the list endpoints.",
                "schema": {"type": "integer", "default": 500, "minimum": 1},
            },
            "max_concurrency": {
                "label": "Concurrent reads",
                "description": "Leads whose sessions and events are read at once.",
                "schema": {"type": "integer", "default": 8, "minimum": 1},
            },
            "requests_per_second": {
                "label": "Requests per second",
                "description": "A cap on the requests sent to LeadBoxer; a 429 pauses every reader as long "
                "as LeadBoxer says.",
                "schema": {"type": "integer", "default": 100, "minimum": 1},
            },
            "dataset_id": {
                "label": "Dataset id",
                "description": "A dataset (the API's site) for Test Connection; the DAGs take theirs as a Param.",
                "schema": {"type": ["string", "null"]},
            },
            **_COMMON_FIELDS,
        },
    },
]


def get_provider_info() -> dict[str, Any]:
    """The provider's description, in the shape of Airflow's ``provider_info.schema.json``."""
    return {
        "package-name": PACKAGE_NAME,
        "name": "LeadBoxer Pipedrive",
        "description": "Hooks and operators that sync LeadBoxer visitor activity into Pipedrive.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": INTEGRATION,
                "external-doc-url": "https://developers.pipedrive.com/docs/api/v1",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {
                "integration-name": INTEGRATION,
                "python-modules": [
                    "leadboxer_pipedrive.hooks.leadboxer",
                    "leadboxer_pipedrive.hooks.pipedrive",
                    "leadboxer_pipedrive.hooks.ledger",
                ],
            }
        ],
        "operators": [
            {
                "integration-name": INTEGRATION,
                "python-modules": [
                    "leadboxer_pipedrive.operators.activities",
                    "leadboxer_pipedrive.operators.leads",
                ],
            }
        ],
        # A fresh copy on each call: callers may change what they are given.
        "connection-types": copy.deepcopy(CONNECTION_TYPES),
    }



def _connection_type(conn_type: str) -> dict[str, Any]:
    for entry in CONNECTION_TYPES:
        if entry["connection-type"] == conn_type:
            return entry
    raise KeyError(f"no connection type {conn_type!r} in {PACKAGE_NAME}")


def ui_field_behaviour(conn_type: str) -> dict[str, Any]:
    """A connection type's ``ui-field-behaviour`` in the legacy shape of ``get_ui_field_behaviour()``."""
    behaviour = _connection_type(conn_type)["ui-field-behaviour"]
    return {
        "hidden_fields": list(behaviour["hidden-fields"]),
        "relabeling": dict(behaviour["relabeling"]),
        "placeholders": dict(behaviour["placeholders"]),
    }


def connection_form_widgets(conn_type: str) -> dict[str, Any]:
    """A connection type's ``conn-fields`` as the WTForms fields of legacy ``get_connection_form_widgets()``.

    Imports Flask-AppBuilder and WTForms, which only the legacy (FAB) UI has: call it from that UI only.
    """
    from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
    from flask_babel import lazy_gettext
    from wtforms import BooleanField, IntegerField, StringField

    widgets: dict[str, Any] = {}
    for name, field in _connection_type(conn_type)["conn-fields"].items():
        schema = field["schema"]
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        label = lazy_gettext(field["label"])
        description = field.get("description", "")
        if "boolean" in kinds:
            widgets[name] = BooleanField(label, description=description, default=schema.get("default", False))
        elif "integer" in kinds:
            widgets[name] = IntegerField(label, description=description, default=schema.get("default"),
                                         widget=BS3TextFieldWidget())
        else:  # strings, and numbers (WTForms fields the connection form accepts have no float field)
            default = schema.get("default")
            widgets[name] = StringField(label, description=description,
                                        default=None if default is None else str(default),
                                        widget=BS3TextFieldWidget())
    return widgets
