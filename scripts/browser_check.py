"""`make browser-check`: what a user sees in the Airflow UI of `make airflow`, checked in a real browser.

Starts the same Airflow as `make airflow` (its own home and a free port; the demo hour synced), then drives
Debian's chromium with Playwright (``CHROMIUM``, default /usr/bin/chromium; Playwright's own browser download
is not used) through the UI: the trigger forms show the ids as number fields, the Connections page lists
both connections with their types, Add Connection offers both types, each connection's Test button
succeeds, and each run's validation report opens from the link the validate task stored (its "Validation
report" button). Prints one line per check and leaves screenshots in ``.airflow/browser-check/``; exits
non-zero if a check fails.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from urllib.parse import quote

import requests
from playwright.sync_api import Page, sync_playwright

from scripts.airflow_standalone import PASSWORDS, RunningAirflow, running_airflow
from scripts.demo import latest_run_summary
from scripts.sandboxes import free_port

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
OUT = ROOT / ".airflow" / "browser-check"
ID_FIELDS = {"leadboxer_pipedrive_activities": ["segment_id", "pipeline_id", "max_leads"],
             "leadboxer_pipedrive_leads": ["segment_id", "owner_id", "max_leads"]}
CONNECTIONS = {"pipedrive_default": ("pipedrive", "Pipedrive"), "leadboxer_default": ("leadboxer", "LeadBoxer")}
STARTUP_SECONDS = 240


def wait_until_ready(running: RunningAirflow) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if running.process.poll() is not None:
            raise SystemExit(f"airflow standalone exited {running.process.returncode}")
        try:
            if (running.home / PASSWORDS).exists() and requests.get(
                    f"{running.url}/api/v2/monitor/health", timeout=5).ok:
                return
        except requests.ConnectionError:
            pass
        time.sleep(2)
    raise SystemExit(f"the Airflow UI did not answer within {STARTUP_SECONDS} s")


def sign_in(page: Page, running: RunningAirflow) -> None:
    user, password = running.login()
    page.goto(f"{running.url}/")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{running.url}/")


def trigger_form_fields(page: Page, running: RunningAirflow, dag_id: str) -> dict[str, str]:
    """The kind of each Param input of the DAG's trigger form: number-input, field (text) or textarea."""
    page.goto(f"{running.url}/dags/{dag_id}")
    page.get_by_role("button", name="Trigger Dag").click()
    form = page.get_by_role("dialog")
    form.locator("[name^=element_]").first.wait_for()
    page.screenshot(path=OUT / f"trigger-{dag_id}.png", full_page=True)
    kinds = form.locator("[name^=element_]").evaluate_all(
        "els => els.map(e => [e.name.slice(8), e.tagName === 'TEXTAREA' ? 'textarea' : e.dataset.scope || e.type])")
    page.keyboard.press("Escape")
    return dict(kinds)


def listed_connections(page: Page, running: RunningAirflow) -> dict[str, str]:
    page.goto(f"{running.url}/connections")
    page.locator("table tbody tr").first.wait_for()
    page.screenshot(path=OUT / "connections.png")
    rows = page.locator("table tbody tr").evaluate_all(
        "rows => rows.map(r => Array.from(r.querySelectorAll('td')).map(td => td.innerText.trim()))")
    return {cells[1]: cells[2] for cells in rows if len(cells) > 2}


def offered_types(page: Page, running: RunningAirflow, typed: str) -> list[str]:
    """The connection types Add Connection offers for what is typed in its type box."""
    page.goto(f"{running.url}/connections")
    page.get_by_role("button", name="Add Connection").click()
    form = page.get_by_role("dialog")
    form.locator("input[aria-autocomplete=list]").focus()
    page.keyboard.type(typed)
    page.wait_for_timeout(500)
    offered = page.locator("[id*=-option-]").all_inner_texts()
    page.screenshot(path=OUT / f"add-connection-{typed}.png")
    page.keyboard.press("Escape")
    return offered


def test_button_says(page: Page, running: RunningAirflow, conn_id: str) -> str:
    page.goto(f"{running.url}/connections")
    row = page.locator("table tbody tr", has_text=conn_id)
    with page.expect_response(lambda r: r.url.endswith("/api/v2/connections/test")) as answer:
        row.get_by_role("button", name="Test Connection").click()
    result = answer.value.json()
    return result.get("message") or result.get("detail") or str(result)


def opened_report(page: Page, running: RunningAirflow, dag_id: str) -> tuple[str, str]:
    """The run's report link as the validate task stored it (its UI button), and the page's heading."""
    run_id = latest_run_summary(running.home, dag_id)["run_id"]
    links = page.request.get(f"{running.url}/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}"
                             "/taskInstances/validate/links").json()
    link = links["extra_links"].get("Validation report")
    if not link:
        return f"no link ({links})", ""
    page.goto(link)
    page.screenshot(path=OUT / f"report-{dag_id}.png", full_page=True)
    return link, page.locator("h1").inner_text()


def checks(page: Page, running: RunningAirflow) -> dict[str, bool]:
    results: dict[str, bool] = {}
    for dag_id, fields in ID_FIELDS.items():
        kinds = trigger_form_fields(page, running, dag_id)
        shown = ", ".join(f"{field}: {kinds.get(field)}" for field in fields)
        results[f"{dag_id} trigger form shows the ids as number fields ({shown})"] = all(
            kinds.get(field) == "number-input" for field in fields)
    listed = listed_connections(page, running)
    for conn_id, (conn_type, label) in CONNECTIONS.items():
        results[f"Connections lists {conn_id} of type {listed.get(conn_id)}"] = listed.get(conn_id) == conn_type
        offered = offered_types(page, running, conn_type[:4])
        results[f"Add Connection offers {label} for '{conn_type[:4]}' ({offered})"] = label in offered
        said = test_button_says(page, running, conn_id)
        results[f"Test on {conn_id} says: {said}"] = said.startswith("Connected to")
    for dag_id in ID_FIELDS:
        link, heading = opened_report(page, running, dag_id)
        results[f"{dag_id}: the validate task's 'Validation report' link opens '{heading}' ({link})"] = (
            link.startswith(running.url) and heading.startswith("LeadBoxer"))
    return results


def main() -> int:
    if not Path(CHROMIUM).exists():
        print(f"No chromium at {CHROMIUM}: `apt-get install chromium`, or set CHROMIUM to a Chromium binary.")
        return 2
    OUT.mkdir(parents=True, exist_ok=True)
    with (OUT / "airflow.log").open("w") as log, \
            running_airflow(ROOT / ".airflow" / "browser-check-home", free_port(), output=log) as running:
        wait_until_ready(running)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            sign_in(page, running)
            results = checks(page, running)
            browser.close()
    print(f"\nBrowser check of {running.url} (chromium {CHROMIUM}; screenshots in {OUT}):")
    for name, ok in results.items():
        print(f"  [{'ok' if ok else 'FAILED'}] {name}")
    failed = sum(not ok for ok in results.values())
    print(f"===== browser check: {len(results) - failed} passed, {failed} failed =====")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
