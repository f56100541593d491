"""Helpers shared by the benchmark scripts (``make bench``): connections to sandboxes, one sync run."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DAY_START = datetime(2026, 11, 20, tzinfo=timezone.utc)
DATASET = "07bacbd9d46a4e26b58b15d69f69250f"
SEGMENT = "14118"


def use_plugins() -> None:
    for path in (str(ROOT), str(ROOT / "plugins")):
        if path not in sys.path:
            sys.path.insert(0, path)
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")


@contextmanager
def sandbox_process(module: str, *args: str):
    """A sandbox (``sandbox.pipedrive`` or ``sandbox.leadboxer``) in a child process, as a real server would
    be (in this process its threads would compete with ours for Python's lock); yields its base URL."""
    import requests

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'plugins'}"}
    process = subprocess.Popen([sys.executable, "-m", module, "--port", str(port), *args],
                               cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if requests.get(url + "/_sandbox/state", timeout=1).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def connect(pipedrive_url: str, ledger_path: Path, *, burst_limit: int, search_burst_limit: int = 10,
            leadboxer_url: str | None = None, timeout: float = 30.0) -> None:
    """Point the default connections (read from the environment) at the sandboxes and a SQLite ledger."""
    os.environ["AIRFLOW_CONN_PIPEDRIVE_DEFAULT"] = json.dumps({
        "conn_type": "pipedrive", "host": pipedrive_url, "password": "sandbox-token",
        "extra": {"burst_limit": burst_limit, "search_burst_limit": search_burst_limit, "timeout": timeout}})
    os.environ["AIRFLOW_CONN_LEADBOXER_PIPEDRIVE_LEDGER"] = json.dumps({"conn_type": "sqlite",
                                                                       "host": str(ledger_path)})
    if leadboxer_url:
        connect_leadboxer(leadboxer_url)


def connect_leadboxer(leadboxer_url: str) -> None:
    """Point the default LeadBoxer connection (read from the environment) at the sandbox."""
    os.environ["AIRFLOW_CONN_LEADBOXER_DEFAULT"] = json.dumps({
        "conn_type": "leadboxer", "host": leadboxer_url, "password": "sandbox-key"})


def window_activities(hour: datetime):
    """Extract → frames → validate → transform one hour from the LeadBoxer sandbox, as the DAG does."""
    from leadboxer_pipedrive.extract import fetch_window
    from leadboxer_pipedrive.frames import events_frame
    from leadboxer_pipedrive.hooks import LeadBoxerHook
    from leadboxer_pipedrive.transforms import activity_payloads
    from leadboxer_pipedrive.validation import validate_events

    end = hour + timedelta(hours=1)
    window = fetch_window(LeadBoxerHook(), DATASET, SEGMENT, hour, end)
    events = events_frame(window.events, window.leads, DATASET)
    outcome = validate_events(events, int(hour.timestamp() * 1000), int(end.timestamp() * 1000))
    return activity_payloads(outcome.valid, "task"), len(events), len(outcome.rejected)


def load(activities, run_id: str, *, pipeline_id: int | None, workers: int, mode: str = "per_event",
         account_index: bool = True):
    """The real ActivityLoader with fresh hooks (as one task try would have them); ``account_index``
    False: always search."""
    from leadboxer_pipedrive.hooks import LedgerHook, PipedriveHook
    from leadboxer_pipedrive.loading import ActivityLoader, LoadSettings

    hook = PipedriveHook()
    settings = LoadSettings(dataset_id=DATASET, dag_id="bench", run_id=run_id, pipeline_id=pipeline_id,
                            workers=workers, activity_mode=mode, account_index=account_index)
    result = ActivityLoader(hook, LedgerHook(), settings).load(activities)
    return result, hook
