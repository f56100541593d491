import json

import pytest

TOKEN = "sandbox-token-s3cr3t-value"
API_KEY = "sandbox-key-s3cr3t-value"


@pytest.fixture
def pipedrive_sandbox():
    from sandbox.pipedrive import PipedriveSandbox

    with PipedriveSandbox(token=TOKEN) as sandbox:
        yield sandbox


@pytest.fixture
def leadboxer_sandbox():
    from sandbox.leadboxer import LeadBoxerSandbox

    with LeadBoxerSandbox(api_key=API_KEY, leads=60) as sandbox:
        yield sandbox


@pytest.fixture
def pipedrive_conn(pipedrive_sandbox, monkeypatch):
    def configure(token: str = TOKEN, **extra):
        monkeypatch.setenv("AIRFLOW_CONN_PIPEDRIVE_TEST", json.dumps({
            "conn_type": "pipedrive", "host": pipedrive_sandbox.url, "password": token,
            "extra": {"burst_limit": 100, **extra}}))
        return "pipedrive_test"
    return configure


@pytest.fixture
def leadboxer_conn(leadboxer_sandbox, monkeypatch):
    def configure(api_key: str = API_KEY, **extra):
        monkeypatch.setenv("AIRFLOW_CONN_LEADBOXER_TEST", json.dumps({
            "conn_type": "leadboxer", "host": leadboxer_sandbox.url, "password": api_key, "extra": extra}))
        return "leadboxer_test"
    return configure
