"""The provider metadata and the packaging settings, checked without building anything.

Airflow reads ``get_provider_info()`` through the ``apache_airflow_provider`` entry point of the installed
distribution; these tests hold it to Airflow's own runtime schema and to the hooks it names.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import shutil
import sys
import tomllib
import types
from importlib.resources import files
from pathlib import Path

import jsonschema
import pytest
from airflow.sdk import BaseHook
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import leadboxer_pipedrive
from leadboxer_pipedrive import sql as sql_module
from leadboxer_pipedrive.get_provider_info import get_provider_info
from leadboxer_pipedrive.hooks.leadboxer import LeadBoxerHook
from leadboxer_pipedrive.hooks.pipedrive import PipedriveHook

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
STANDARD_FIELDS = {"description", "host", "schema", "login", "password", "port", "extra"}
# What each hook reads from its connection's extra (hooks/base.py, hooks/pipedrive.py, hooks/leadboxer.py).
EXTRAS_READ = {
    "pipedrive": {"burst_limit", "search_burst_limit", "timeout", "verify", "auth_type", "client_id",
                  "refresh_token", "token_url"},
    "leadboxer": {"page_size", "max_concurrency", "requests_per_second", "dataset_id", "timeout", "verify"},
}
HOOKS = {"pipedrive": PipedriveHook, "leadboxer": LeadBoxerHook}


def airflow_schema(name: str) -> dict:
    return json.loads(files("airflow").joinpath(name).read_text())


@pytest.fixture
def info() -> dict:
    return get_provider_info()


def connection_types(info: dict) -> dict[str, dict]:
    return {entry["connection-type"]: entry for entry in info["connection-types"]}


def lock_pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        if match:
            pins[canonicalize_name(match[1])] = match[2]
    return pins


# -- get_provider_info() ------------------------------------------------------------------------------

def test_provider_info_passes_airflows_runtime_schema(info):
    jsonschema.validate(info, airflow_schema("provider_info.schema.json"))


def test_provider_info_names_this_distribution(info):
    # ProvidersManager refuses a provider whose package-name differs from the distribution's name.
    assert info["package-name"] == canonicalize_name(PYPROJECT["project"]["name"]) == "leadboxer-pipedrive"
    assert info["versions"] == [leadboxer_pipedrive.__version__]
    assert info["name"] and info["description"]


def test_each_call_returns_a_fresh_copy(info):
    info["connection-types"][0]["ui-field-behaviour"]["hidden-fields"].append("host")
    assert "host" not in get_provider_info()["connection-types"][0]["ui-field-behaviour"]["hidden-fields"]


def test_connection_types_are_the_two_api_hooks(info):
    assert set(connection_types(info)) == {"pipedrive", "leadboxer"}


@pytest.mark.parametrize("conn_type", ["pipedrive", "leadboxer"])
def test_connection_type_matches_its_hook(info, conn_type):
    entry = connection_types(info)[conn_type]
    module_name, _, class_name = entry["hook-class-name"].rpartition(".")
    hook = getattr(importlib.import_module(module_name), class_name)
    assert hook is HOOKS[conn_type]
    assert issubclass(hook, BaseHook)
    # ProvidersManager warns and trusts the class when these disagree; keep them equal.
    assert hook.conn_type == conn_type
    assert entry["hook-name"] == hook.hook_name
    assert hook.default_conn_name == f"{conn_type}_default"
    assert hook.conn_name_attr == f"{conn_type}_conn_id"
    assert callable(getattr(hook, "test_connection", None))


def test_listed_modules_import(info):
    for section in ("hooks", "operators"):
        for group in info[section]:
            for module in group["python-modules"]:
                importlib.import_module(module)


@pytest.mark.parametrize("conn_type", ["pipedrive", "leadboxer"])
def test_ui_field_behaviour_is_well_formed(info, conn_type):
    behaviour = connection_types(info)[conn_type]["ui-field-behaviour"]
    assert set(behaviour) == {"hidden-fields", "relabeling", "placeholders"}
    # ProvidersManager turns the kebab-case keys into these and validates them with Airflow's schema.
    legacy = {"hidden_fields": behaviour["hidden-fields"], "relabeling": behaviour["relabeling"],
              "placeholders": behaviour["placeholders"]}
    jsonschema.validate(legacy, airflow_schema("customized_form_field_behaviours.schema.json"))
    assert set(behaviour["hidden-fields"]) <= STANDARD_FIELDS
    assert set(behaviour["relabeling"]) <= STANDARD_FIELDS
    # The hooks need the base URL and the secret; they never read login or schema. The port stays visible:
    # Airflow 3.3.2's Test button refuses connections without one (apache/airflow#73298).
    assert {"host", "password", "port"}.isdisjoint(behaviour["hidden-fields"])
    assert {"login", "schema"} <= set(behaviour["hidden-fields"])
    assert re.search(r"API (token|key)", behaviour["relabeling"]["password"])
    assert behaviour["placeholders"]["host"].startswith("https://")
    extra_fields = set(connection_types(info)[conn_type]["conn-fields"])
    assert set(behaviour["placeholders"]) <= STANDARD_FIELDS | extra_fields


@pytest.mark.parametrize("conn_type", ["pipedrive", "leadboxer"])
def test_conn_fields_are_the_extras_the_hook_reads(info, conn_type):
    conn_fields = connection_types(info)[conn_type]["conn-fields"]
    assert set(conn_fields) == EXTRAS_READ[conn_type]
    meta_schema = jsonschema.validators.validator_for({}).META_SCHEMA
    for name, field in conn_fields.items():
        assert field["label"], name
        schema = field["schema"]
        jsonschema.validate(schema, meta_schema)
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        assert set(kinds) <= {"string", "integer", "number", "boolean", "null"}, name
        if "default" in schema:
            jsonschema.validate(schema["default"], schema)
        if "null" not in kinds:
            # The UI fills the field with its default; a missing default would store null, which the
            # hooks do not accept for numbers (int(None)) and would read as "off" for verify.
            assert "default" in schema, name


def test_defaults_in_the_form_are_the_hooks_defaults(info):
    pipedrive = connection_types(info)["pipedrive"]["conn-fields"]
    leadboxer = connection_types(info)["leadboxer"]["conn-fields"]
    assert pipedrive["burst_limit"]["schema"]["default"] == PipedriveHook.default_burst_limit
    assert pipedrive["search_burst_limit"]["schema"]["default"] == PipedriveHook.default_search_burst_limit
    assert leadboxer["page_size"]["schema"]["default"] == LeadBoxerHook.default_page_size
    assert leadboxer["max_concurrency"]["schema"]["default"] == LeadBoxerHook.default_max_concurrency
    assert leadboxer["requests_per_second"]["schema"]["default"] == LeadBoxerHook.default_requests_per_second
    for fields, hook in ((pipedrive, PipedriveHook), (leadboxer, LeadBoxerHook)):
        assert fields["timeout"]["schema"]["default"] == hook.default_timeout
        assert fields["verify"]["schema"]["default"] is True


# -- the legacy hook methods --------------------------------------------------------------------------

@pytest.mark.parametrize("conn_type", ["pipedrive", "leadboxer"])
def test_legacy_ui_field_behaviour_matches_provider_info(info, conn_type):
    hook = HOOKS[conn_type]
    assert "get_ui_field_behaviour" in hook.__dict__  # ProvidersManager looks in the class itself
    behaviour = connection_types(info)[conn_type]["ui-field-behaviour"]
    assert hook.get_ui_field_behaviour() == {
        "hidden_fields": behaviour["hidden-fields"],
        "relabeling": behaviour["relabeling"],
        "placeholders": behaviour["placeholders"],
    }


class _Field:
    def __init__(self, label=None, validators=None, description="", default=None, widget=None):
        self.label, self.description, self.default, self.widget = label, description, default, widget


@pytest.fixture
def fake_fab(monkeypatch):
    """Stand-ins for Flask-AppBuilder and WTForms, which Airflow 3 without the FAB provider lacks."""
    wtforms = types.ModuleType("wtforms")
    for name in ("StringField", "IntegerField", "BooleanField", "PasswordField"):
        setattr(wtforms, name, type(name, (_Field,), {}))
    fieldwidgets = types.ModuleType("flask_appbuilder.fieldwidgets")
    fieldwidgets.BS3TextFieldWidget = type("BS3TextFieldWidget", (), {})
    flask_babel = types.ModuleType("flask_babel")
    flask_babel.lazy_gettext = str
    monkeypatch.setitem(sys.modules, "wtforms", wtforms)
    monkeypatch.setitem(sys.modules, "flask_appbuilder", types.ModuleType("flask_appbuilder"))
    monkeypatch.setitem(sys.modules, "flask_appbuilder.fieldwidgets", fieldwidgets)
    monkeypatch.setitem(sys.modules, "flask_babel", flask_babel)
    return wtforms


@pytest.mark.parametrize("conn_type", ["pipedrive", "leadboxer"])
def test_legacy_form_widgets_match_conn_fields(info, conn_type, fake_fab):
    hook = HOOKS[conn_type]
    assert "get_connection_form_widgets" in hook.__dict__
    widgets = hook.get_connection_form_widgets()
    conn_fields = connection_types(info)[conn_type]["conn-fields"]
    assert list(widgets) == list(conn_fields)
    expected_class = {"integer": "IntegerField", "boolean": "BooleanField", "number": "StringField",
                      "string": "StringField"}
    for name, widget in widgets.items():
        schema = conn_fields[name]["schema"]
        kind = next(k for k in (schema["type"] if isinstance(schema["type"], list) else [schema["type"]])
                    if k != "null")
        assert type(widget).__name__ == expected_class[kind], name
        assert widget.label == conn_fields[name]["label"]
        assert isinstance(widget, (fake_fab.StringField, fake_fab.IntegerField, fake_fab.BooleanField))


@pytest.mark.skipif(importlib.util.find_spec("flask_appbuilder") is not None, reason="FAB is installed")
def test_legacy_form_widgets_without_fab_raise_what_airflow_tolerates():
    # ProvidersManager logs and goes on when the ImportError names one of these modules.
    with pytest.raises(ImportError) as raised:
        PipedriveHook.get_connection_form_widgets()
    assert raised.value.name in ("flask_appbuilder", "wtforms")


# -- pyproject.toml -----------------------------------------------------------------------------------

def test_entry_point_resolves_to_get_provider_info():
    target = PYPROJECT["project"]["entry-points"]["apache_airflow_provider"]["provider_info"]
    module_name, _, attribute = target.partition(":")
    assert getattr(importlib.import_module(module_name), attribute) is get_provider_info


def test_project_metadata():
    project = PYPROJECT["project"]
    assert project["name"] == "leadboxer-pipedrive"
    assert project["requires-python"] == ">=3.11"
    assert "version" in project.get("dynamic", []) or project.get("version") == leadboxer_pipedrive.__version__
    assert PYPROJECT["tool"]["hatch"]["version"]["path"] == "plugins/leadboxer_pipedrive/__init__.py"
    assert PYPROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == ["plugins/leadboxer_pipedrive"]


def test_dependencies_are_ranges_the_lock_satisfies():
    pins = lock_pins()
    requirements = [Requirement(text) for text in PYPROJECT["project"]["dependencies"]]
    names = {canonicalize_name(req.name) for req in requirements}
    # The runtime top level of requirements.in is all there (plus SQLAlchemy, which the ledger imports).
    top_level = {
        canonicalize_name(re.split(r"[=<>!~\[ ;]", line, maxsplit=1)[0])
        for line in (ROOT / "requirements.in").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith(("#", "-"))
    }
    assert top_level <= names
    for req in requirements:
        name = canonicalize_name(req.name)
        assert name in pins, f"{name} is not in requirements.txt"
        assert req.specifier.contains(pins[name], prereleases=True), f"{req} rejects the lock's {pins[name]}"
        assert not any(spec.operator in ("==", "===") for spec in req.specifier), f"{req} pins exactly"


def test_airflow_range_stays_on_the_locked_minor():
    airflow = next(Requirement(t) for t in PYPROJECT["project"]["dependencies"] if t.startswith("apache-airflow>"))
    assert airflow.specifier.contains(lock_pins()["apache-airflow"])
    assert not airflow.specifier.contains("3.4.0")
    assert not airflow.specifier.contains("3.3.1")


# -- SQL as package data ------------------------------------------------------------------------------

def test_sql_is_mapped_into_the_package_from_include_sql():
    force_include = PYPROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    assert force_include == {"include/sql": "leadboxer_pipedrive/include/sql"}
    assert (ROOT / "include" / "sql" / "ledger_schema.sql").is_file()
    # include/sql is the only copy in the repository: the packaged one exists in built wheels only.
    assert not (ROOT / "plugins" / "leadboxer_pipedrive" / "include").exists()


def test_sql_dir_in_the_repository_is_include_sql(monkeypatch):
    monkeypatch.delenv("LEADBOXER_PIPEDRIVE_SQL_DIR", raising=False)
    assert sql_module.sql_dir() == ROOT / "include" / "sql"


def test_sql_dir_of_an_installed_package_is_the_packaged_copy(tmp_path, monkeypatch):
    """sql.py as a wheel installs it: site-packages/leadboxer_pipedrive/{sql.py,include/sql/}."""
    monkeypatch.delenv("LEADBOXER_PIPEDRIVE_SQL_DIR", raising=False)
    package = tmp_path / "lib" / "python3.11" / "site-packages" / "leadboxer_pipedrive"
    (package / "include").mkdir(parents=True)
    shutil.copy(sql_module.__file__, package / "sql.py")
    shutil.copytree(ROOT / "include" / "sql", package / "include" / "sql")
    spec = importlib.util.spec_from_file_location("_installed_lbpd_sql", package / "sql.py")
    installed = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(installed)
    assert installed.sql_dir() == package.resolve() / "include" / "sql"
    assert installed.load_script("ledger_schema.sql")
    monkeypatch.setenv("LEADBOXER_PIPEDRIVE_SQL_DIR", str(tmp_path))
    assert installed.sql_dir() == tmp_path
