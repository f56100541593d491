"""The sync dashboard in a real browser: Debian's chromium (driven by Playwright, pointed at the system
browser; Playwright's own browser download is not used) signs in to the Airflow of `make airflow` (its own
home and port; the demo hours synced, two activity creates refused by the sandbox), opens the dashboard
from the DAG's tab, sees the runs chart and a rejected row, and puts a quarantined row back in the retry
queue. Screenshots: ``.airflow/browser-check/dashboard*.png`` (the README's is one of them).

Skipped, saying so, where no chromium is installed (``.ci/run`` installs it).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = ROOT / ".airflow" / "browser-check"
DAG_ID = "leadboxer_pipedrive_activities"


@pytest.fixture(scope="module")
def airflow_ui(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no chromium at {CHROMIUM}: `apt-get install chromium` (or set CHROMIUM) to run the browser test")
    from scripts.airflow_standalone import running_airflow
    from scripts.browser_check import wait_until_ready
    from scripts.sandboxes import free_port

    home = tmp_path_factory.mktemp("ui") / "home"
    SHOTS.mkdir(parents=True, exist_ok=True)
    with (SHOTS / "dashboard-airflow.log").open("w") as log, running_airflow(home, free_port(), output=log) as running:
        wait_until_ready(running)
        yield running


def ledger_of(running, monkeypatch):
    from leadboxer_pipedrive.hooks.ledger import LedgerHook

    monkeypatch.setenv("AIRFLOW_CONN_UI_LEDGER", json.dumps({
        "conn_type": "sqlite", "host": str(running.home / "leadboxer_pipedrive_ledger.sqlite")}))
    return LedgerHook("ui_ledger")


def test_the_dashboard_shows_the_runs_and_rejected_rows_and_re_drives_a_quarantined_row(airflow_ui, monkeypatch):
    from playwright.sync_api import expect, sync_playwright

    from scripts.browser_check import sign_in

    ledger = ledger_of(airflow_ui, monkeypatch)
    # A row Pipedrive refused max_attempts times, as the load leaves it (one of the hour's real events).
    with sqlite3.connect(airflow_ui.home / "leadboxer_pipedrive_ledger.sqlite") as db:
        event = db.execute("SELECT dataset_id, event_id, use_id FROM lbpd_pushed_event ORDER BY event_id").fetchone()
    payload = {"event_id": event[1], "use_id": event[2], "email": "jo@acme.example"}
    ledger.queue_retries([{"dataset_id": event[0], "entity": "event", "record_id": event[1],
                           "payload": json.dumps(payload), "attempts": 3, "status": "quarantined",
                           "last_error": "Pipedrive refused the activity: HTTP 400"}])
    user, _ = airflow_ui.login()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM,
                                             args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        sign_in(page, airflow_ui)
        page.goto(f"{airflow_ui.url}/dags/{DAG_ID}")
        page.get_by_role("link", name="Sync dashboard").first.click()
        frame = page.frame_locator("iframe").first
        expect(frame.locator("#runs-chart rect").first).to_be_attached(timeout=30_000)
        assert frame.locator("#runs tr").count() >= 4  # a heading and the three synced hours
        refused = frame.locator("#rejected-rows tr", has_text="Sandbox fault: HTTP 400")
        expect(refused.first).to_be_visible()
        page.screenshot(path=SHOTS / "dashboard-in-ui.png", full_page=True)

        row = frame.locator("#retries tr", has_text=event[1])
        row.locator("input[type=checkbox]").check()
        frame.get_by_role("button", name="Put the selected rows back in the retry queue").click()
        expect(frame.locator("#redrives tr", has_text=event[1])).to_contain_text(user, timeout=15_000)
        expect(frame.locator("#retries tr", has_text=event[1])).to_contain_text("pending")

        page.goto(f"{airflow_ui.url}/leadboxer-pipedrive/dashboard/{DAG_ID}")
        page.screenshot(path=SHOTS / "dashboard.png", full_page=True)
        browser.close()

    (queued,) = [row for row in ledger.retries(event[0], "event") if row["record_id"] == event[1]]
    assert queued["attempts"] == 3  # status pending: the next run sends it once more
    (recorded,) = ledger.redrives(DAG_ID)
    assert (recorded["record_id"], recorded["redriven_by"]) == (event[1], user)
    ledger.get_conn().dispose()
