"""PipedriveHook with OAuth 2 (a Marketplace app) against the sandbox's token endpoint."""

import json
import logging
import time

import pytest
import requests

from leadboxer_pipedrive.exceptions import ApiAuthError
from leadboxer_pipedrive.hooks import pipedrive as pipedrive_module
from leadboxer_pipedrive.hooks.pipedrive import PipedriveHook

API_TOKEN = "oauth-suite-api-token-s3cr3t"
CLIENT_ID = "oauth-suite-client-id"
CLIENT_SECRET = "oauth-suite-client-s3cr3t"
REFRESH_TOKEN = "oauth-suite-refresh-s3cr3t"
CONN_ID = "pipedrive_oauth_test"


@pytest.fixture(autouse=True)
def _forget_process_tokens():
    pipedrive_module._OAUTH_MEMORY.clear()
    yield
    pipedrive_module._OAUTH_MEMORY.clear()


@pytest.fixture
def sandbox():
    from sandbox.pipedrive import PipedriveSandbox

    with PipedriveSandbox(token=API_TOKEN, oauth_client_id=CLIENT_ID, oauth_client_secret=CLIENT_SECRET,
                          oauth_refresh_token=REFRESH_TOKEN) as pd:
        yield pd


@pytest.fixture
def oauth_conn(sandbox, monkeypatch):
    """An env-var connection using OAuth 2; the client secret is the password unless told otherwise."""
    def configure(host: str | None = None, password: str | None = CLIENT_SECRET, **extra):
        extra = {"auth_type": "oauth2", "client_id": CLIENT_ID, "refresh_token": REFRESH_TOKEN,
                 "token_url": sandbox.token_url, "token_expiry_margin": 0, "burst_limit": 100, **extra}
        conn = {"conn_type": "pipedrive", "extra": extra}
        if host is not None:
            conn["host"] = host
        if password is not None:
            conn["password"] = password
        monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(conn))
        return CONN_ID
    return configure


def fast_hook(conn_id, **kwargs):
    hook = PipedriveHook(conn_id, **kwargs)
    hook.backoff_base = 0.01
    return hook


def oauth_counters(sandbox):
    counters = sandbox.state()["counters"]
    return counters["oauth_token_refreshes"], counters["oauth_refresh_failures"]


def all_secrets(sandbox, hook=None):
    """Every secret in play: the configured ones plus each token the sandbox issued."""
    values = {API_TOKEN, CLIENT_SECRET, REFRESH_TOKEN, *sandbox.app.refresh_tokens, *sandbox.app.access_tokens}
    if hook is not None and hook._oauth:
        values.update(v for k, v in hook._oauth.items() if k in ("access_token", "refresh_token") and v)
    return values


def manual_refresh(sandbox, refresh_token=REFRESH_TOKEN):
    response = requests.post(sandbox.token_url, data={"grant_type": "refresh_token", "refresh_token": refresh_token},
                             auth=(CLIENT_ID, CLIENT_SECRET), timeout=5)
    assert response.status_code == 200, response.text
    return response.json()


# -- the sandbox's token endpoint ----------------------------------------------------------------------

def test_sandbox_token_endpoint_rotates_and_expires(sandbox):
    body = manual_refresh(sandbox)
    assert body["token_type"] == "Bearer" and body["api_domain"] == sandbox.url
    assert body["refresh_token"] != REFRESH_TOKEN and body["expires_in"] == 3599 and body["scope"]
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    assert requests.get(sandbox.url + "/api/v1/users/me", headers=bearer, timeout=5).status_code == 200
    # The old refresh token is spent; wrong client credentials are refused.
    again = requests.post(sandbox.token_url, data={"grant_type": "refresh_token", "refresh_token": REFRESH_TOKEN},
                          auth=(CLIENT_ID, CLIENT_SECRET), timeout=5)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    wrong = requests.post(sandbox.token_url, data={"grant_type": "refresh_token",
                                                   "refresh_token": body["refresh_token"]},
                          auth=(CLIENT_ID, "nope"), timeout=5)
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    assert oauth_counters(sandbox) == (1, 2)
    sandbox.expire_access_tokens()
    assert requests.get(sandbox.url + "/api/v1/users/me", headers=bearer, timeout=5).status_code == 401
    state = requests.get(sandbox.url + "/_sandbox/state", timeout=5).json()
    assert state["counters"]["oauth_token_refreshes"] == 1 and state["oauth"]["live_access_tokens"] == 0
    assert body["access_token"] not in json.dumps(state)


def test_sandbox_short_token_ttl(sandbox):
    sandbox.configure_oauth(0.3)
    body = manual_refresh(sandbox)
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    assert requests.get(sandbox.url + "/api/v1/users/me", headers=bearer, timeout=5).status_code == 200
    time.sleep(0.4)
    assert requests.get(sandbox.url + "/api/v1/users/me", headers=bearer, timeout=5).status_code == 401


# -- the hook --------------------------------------------------------------------------------------------

def test_only_a_refresh_token_works_and_the_first_call_refreshes(sandbox, oauth_conn):
    # No host: the api_domain of the token answer is the base URL.
    hook = fast_hook(oauth_conn())
    seen = []
    hook.get_conn().hooks["response"].append(lambda response, **_: seen.append(response.request))
    assert [p["id"] for p in hook.list_pipelines()] == [1, 2]
    assert hook.base_url == sandbox.url
    assert oauth_counters(sandbox) == (1, 0) and hook.oauth_refreshes == 1
    assert hook.responses_by_status == {200: 1}
    assert seen[0].headers["Authorization"] == f"Bearer {hook._oauth['access_token']}"
    assert "x-api-token" not in seen[0].headers


def test_a_valid_stored_access_token_is_used_as_is(sandbox, oauth_conn):
    body = manual_refresh(sandbox)
    conn_id = oauth_conn(host=sandbox.url, refresh_token=body["refresh_token"], access_token=body["access_token"],
                         expires_at=int(time.time()) + 3000)
    hook = fast_hook(conn_id)
    hook.list_pipelines()
    assert hook.oauth_refreshes == 0 and oauth_counters(sandbox) == (1, 0)


def test_an_expired_token_is_refreshed_before_the_call(sandbox, oauth_conn):
    body = manual_refresh(sandbox)
    conn_id = oauth_conn(host=sandbox.url, refresh_token=body["refresh_token"], access_token=body["access_token"],
                         expires_at=int(time.time()) - 5, token_expiry_margin=30)
    hook = fast_hook(conn_id)
    hook.list_pipelines()
    assert hook.oauth_refreshes == 1
    assert 401 not in hook.responses_by_status  # refreshed before, not after a refusal


def test_short_lived_tokens_are_refreshed_as_they_expire(sandbox, oauth_conn):
    sandbox.configure_oauth(1)
    hook = fast_hook(oauth_conn())
    hook.get_current_user()
    time.sleep(1.2)
    hook.get_current_user()
    assert hook.oauth_refreshes == 2 and hook.responses_by_status == {200: 2}


def test_a_401_mid_run_refreshes_once_and_the_call_succeeds(sandbox, oauth_conn):
    hook = fast_hook(oauth_conn())
    hook.list_pipelines()
    sandbox.expire_access_tokens()  # e.g. the user's session was reset on Pipedrive's side
    person = hook.create_person({"name": "After refresh"})
    assert person["name"] == "After refresh"
    assert hook.responses_by_status == {200: 2, 401: 1}
    assert hook.oauth_refreshes == 2 and oauth_counters(sandbox) == (2, 0)


def test_a_second_401_is_the_usual_auth_error(sandbox, oauth_conn):
    hook = fast_hook(oauth_conn())
    hook.list_pipelines()
    sandbox.add_fault({"kind": "status", "status": 401, "count": 2, "path": "^/api/v2/pipelines"})
    with pytest.raises(ApiAuthError) as raised:
        hook.list_pipelines()
    assert raised.value.status == 401 and raised.value.path == "/api/v2/pipelines"
    assert hook.oauth_refreshes == 2  # refreshed once, retried once, then gave up
    assert hook.responses_by_status == {200: 1, 401: 2}


def test_a_revoked_refresh_token_fails_clearly_without_revealing_secrets(sandbox, oauth_conn, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    hook = fast_hook(oauth_conn())
    hook.list_pipelines()
    sandbox.revoke_oauth()  # the app was uninstalled
    with pytest.raises(ApiAuthError) as raised:
        hook.list_pipelines()
    message = str(raised.value)
    assert "re-authorize" in message and "invalid_grant" in message and CONN_ID in message
    assert raised.value.path == "/oauth/token" and raised.value.status == 400
    assert hook.responses_by_status == {200: 1, 401: 1}
    ok, text = hook.test_connection()
    assert not ok and "re-authorize" in text
    captured = capfd.readouterr()
    everything = message + text + caplog.text + captured.out + captured.err
    for secret in all_secrets(sandbox, hook):
        assert secret not in everything


def test_wrong_client_secret_is_an_auth_error_naming_the_client(sandbox, oauth_conn, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    hook = fast_hook(oauth_conn(password="wrong-client-s3cr3t"))
    with pytest.raises(ApiAuthError, match="client_id and the client secret") as raised:
        hook.list_pipelines()
    captured = capfd.readouterr()
    everything = str(raised.value) + caplog.text + captured.out + captured.err
    assert "wrong-client-s3cr3t" not in everything and REFRESH_TOKEN not in everything


def test_client_secret_may_be_in_the_extra(sandbox, oauth_conn):
    hook = fast_hook(oauth_conn(password=None, client_secret=CLIENT_SECRET))
    assert hook.test_connection()[0]


def test_missing_oauth_settings_are_named(oauth_conn):
    with pytest.raises(ApiAuthError, match="lacks: extra client_id, extra refresh_token"):
        fast_hook(oauth_conn(client_id="", refresh_token=None)).get_conn()
    with pytest.raises(ApiAuthError, match="auth_type"):
        fast_hook(oauth_conn(auth_type="basic")).get_conn()


def test_no_secret_in_logs_over_a_whole_run(sandbox, oauth_conn, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    # Tokens outlive the test, so the refresh logged comes from the 401 below and not, on a slow
    # machine, from the token having run out first (the hook then refreshes ahead and sees no 401).
    sandbox.configure_oauth(3600)
    hook = fast_hook(oauth_conn())
    hook.list_pipelines()
    sandbox.expire_access_tokens()
    hook.list_pipelines()
    captured = capfd.readouterr()
    everything = caplog.text + captured.out + captured.err
    assert "rotated the OAuth refresh token" in everything  # env-var connection: memory only, said so
    assert "401" in everything and "refreshing the OAuth access token" in everything
    for secret in all_secrets(sandbox, hook):
        assert secret not in everything


def test_test_connection_works_with_oauth(sandbox, oauth_conn):
    ok, message = fast_hook(oauth_conn()).test_connection()
    assert ok, message


def test_env_connection_tokens_live_in_process_memory(sandbox, oauth_conn):
    conn_id = oauth_conn()
    first = fast_hook(conn_id)
    first.list_pipelines()
    # The refresh token rotated; a second hook of the same process uses the newest state.
    second = fast_hook(conn_id)
    second.list_pipelines()
    assert second.oauth_refreshes == 0 and oauth_counters(sandbox) == (1, 0)
    assert second._oauth["access_token"] == first._oauth["access_token"]


def test_api_token_path_is_unchanged(sandbox, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_PIPEDRIVE_PLAIN", json.dumps(
        {"conn_type": "pipedrive", "host": sandbox.url, "password": API_TOKEN, "extra": {"burst_limit": 100}}))
    hook = fast_hook("pipedrive_plain")
    seen = []
    hook.get_conn().hooks["response"].append(lambda response, **_: seen.append(response.request))
    hook.list_pipelines()
    assert hook._oauth is None and hook.oauth_refreshes == 0
    assert seen[0].headers["x-api-token"] == API_TOKEN and "Authorization" not in seen[0].headers
    assert oauth_counters(sandbox) == (0, 0)


# -- where refreshed tokens are stored ------------------------------------------------------------------

@pytest.fixture
def db_style_conn(sandbox, monkeypatch):
    """A connection that does not come from an env var (as from the metadata DB via the Task SDK)."""
    from airflow.sdk import Connection

    conn = Connection(conn_id=CONN_ID, conn_type="pipedrive", password=CLIENT_SECRET,
                      extra=json.dumps({"auth_type": "oauth2", "client_id": CLIENT_ID,
                                        "refresh_token": REFRESH_TOKEN, "token_url": sandbox.token_url,
                                        "token_expiry_margin": 0}))
    monkeypatch.setattr(PipedriveHook, "get_connection", classmethod(lambda cls, conn_id: conn))
    return conn


@pytest.fixture
def variables(monkeypatch):
    from airflow.sdk import Variable

    stored: dict[str, str] = {}

    def set_(key, value, description=None, serialize_json=False):
        stored[key] = json.dumps(value) if serialize_json else value

    def get(key, default=None, deserialize_json=False):
        if key not in stored:
            return default
        return json.loads(stored[key]) if deserialize_json else stored[key]

    monkeypatch.setattr(Variable, "set", staticmethod(set_))
    monkeypatch.setattr(Variable, "get", staticmethod(get))
    return stored


def test_refreshed_tokens_go_to_the_metadata_db_when_the_orm_is_usable(db_style_conn, monkeypatch, variables):
    written = []
    monkeypatch.setattr(PipedriveHook, "_oauth_store_in_db", lambda self, state: written.append(state) or True)
    hook = fast_hook(CONN_ID)
    hook.list_pipelines()
    assert written and written[0]["access_token"] == hook._oauth["access_token"]
    assert written[0]["refresh_token"] != REFRESH_TOKEN and written[0]["expires_at"] > time.time()
    assert not variables


def test_in_a_task_without_orm_access_tokens_go_to_a_variable(db_style_conn, sandbox, monkeypatch, variables,
                                                              caplog, capfd):
    def blocked(self, state):
        raise RuntimeError("Direct database access via the ORM is not allowed in Airflow 3.0")

    monkeypatch.setattr(PipedriveHook, "_oauth_store_in_db", blocked)
    caplog.set_level(logging.DEBUG)
    first = fast_hook(CONN_ID)
    first.list_pipelines()
    key = PipedriveHook.oauth_variable_prefix + CONN_ID
    assert key in variables and "token" in key  # Airflow masks values of Variables named *token*
    assert json.loads(variables[key])["refresh_token"] == first._oauth["refresh_token"]
    # Another process (empty memory) starts from the connection's spent refresh token: the Variable wins.
    pipedrive_module._OAUTH_MEMORY.clear()
    second = fast_hook(CONN_ID)
    second.list_pipelines()
    assert second.oauth_refreshes == 0 and oauth_counters(sandbox) == (1, 0)
    captured = capfd.readouterr()
    everything = caplog.text + captured.out + captured.err
    assert "Airflow Variable" in everything
    for secret in all_secrets(sandbox, first):
        assert secret not in everything


def test_a_variable_from_an_older_grant_is_ignored(db_style_conn, sandbox, monkeypatch, variables):
    key = PipedriveHook.oauth_variable_prefix + CONN_ID
    variables[key] = json.dumps({"origin": "someoldgrant", "access_token": "stale", "refresh_token": "stale-rt",
                                 "expires_at": time.time() + 9999, "api_domain": sandbox.url})
    monkeypatch.setattr(PipedriveHook, "_oauth_store_in_db", lambda self, state: True)
    hook = fast_hook(CONN_ID)
    hook.list_pipelines()
    assert hook.oauth_refreshes == 1 and hook._oauth["access_token"] != "stale"


def test_nothing_writable_warns_and_keeps_the_token_in_memory(db_style_conn, sandbox, monkeypatch, caplog,
                                                              capfd):
    from airflow.sdk import Variable

    def blocked(*args, **kwargs):
        raise RuntimeError("no")

    monkeypatch.setattr(PipedriveHook, "_oauth_store_in_db", blocked)
    monkeypatch.setattr(Variable, "set", staticmethod(blocked))
    monkeypatch.setattr(Variable, "get", staticmethod(blocked))
    caplog.set_level(logging.DEBUG)
    hook = fast_hook(CONN_ID)
    hook.list_pipelines()
    again = fast_hook(CONN_ID)
    again.list_pipelines()
    assert again.oauth_refreshes == 0  # from process memory
    captured = capfd.readouterr()
    everything = caplog.text + captured.out + captured.err
    assert "Could not store the refreshed OAuth token" in everything
    for secret in all_secrets(sandbox, hook):
        assert secret not in everything
