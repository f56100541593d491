"""The package's Airflow plugin: each sync run's validation report, served by Airflow's API server behind its
login (``/leadboxer-pipedrive/reports/<dag_id>/<run_id>/validation``). The validate task logs the link and
shows it as its "Validation report" button (``ValidationReportLink``).

Registered by the installed distribution's ``airflow.plugins`` entry point (``plugins/.airflowignore`` keeps
Airflow's plugins-folder scan from registering it twice). Every Airflow process imports plugins, task
workers too, so this module imports only FastAPI at load time; Airflow's API security is imported when a
request comes.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse

URL_PREFIX = "/leadboxer-pipedrive"
VALIDATION_REPORT = "validation.html"


def report_path(dag_id: str, run_id: str, staging_url: str | None = None):
    """Where a run's validation report is staged (under ``staging_url``, default
    ``LEADBOXER_PIPEDRIVE_STAGING_URL``, where the tasks wrote it)."""
    from leadboxer_pipedrive.staging import run_folder, staging_root

    return run_folder(staging_root(staging_url), dag_id, run_id, create=False) / VALIDATION_REPORT


def report_url(dag_id: str, run_id: str, base_url: str | None = None) -> str:
    """The link to a run's validation report in the Airflow UI at ``base_url`` (default: Airflow's
    ``[api] base_url``, else http://localhost:8080)."""
    from urllib.parse import quote

    if base_url is None:
        from airflow.configuration import conf

        base_url = conf.get("api", "base_url", fallback=None) or "http://localhost:8080"
    return f"{base_url.rstrip('/')}{URL_PREFIX}/reports/{quote(dag_id)}/{quote(run_id, safe='')}/validation"


async def can_read_dag_runs(request: Request) -> None:
    """Airflow's own check: the signed-in user (or token) may read this DAG's runs."""
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from airflow.api_fastapi.core_api.security import bearer_scheme, get_user, requires_access_dag

    user = await get_user(request, None, await bearer_scheme(request))
    requires_access_dag("GET", DagAccessEntity.RUN)(request, user)


def reports_app() -> FastAPI:
    app = FastAPI(title="LeadBoxer → Pipedrive", description="Reports of the LeadBoxer → Pipedrive sync runs")

    @app.get("/reports/{dag_id}/{run_id}/validation", response_class=HTMLResponse,
             dependencies=[Depends(can_read_dag_runs)])
    def validation_report(dag_id: str, run_id: str) -> HTMLResponse:
        path = report_path(dag_id, run_id)
        if not path.exists():
            raise HTTPException(404, f"No validation report for run {run_id!r} of {dag_id!r} (it is written by the "
                                     "run's validate task, in LEADBOXER_PIPEDRIVE_STAGING_URL)")
        return HTMLResponse(path.read_text(encoding="utf-8"))

    @app.get("/api/runs/{dag_id}", dependencies=[Depends(can_read_dag_runs)])
    def runs(dag_id: str, limit: int = Query(48, ge=1, le=1000),
             ledger_conn_id: str = "leadboxer_pipedrive_ledger") -> dict:
        """The DAG's recent runs as their summaries recorded them, each checked: extracted = pushed +
        already pushed + rejected + deferred (``adds_up``)."""
        from leadboxer_pipedrive.hooks.ledger import LedgerHook

        return {"dag_id": dag_id, "runs": [run_figures(dag_id, row)
                                           for row in LedgerHook(ledger_conn_id).runs_of_dag(dag_id, limit)]}

    return app


def run_figures(dag_id: str, row: dict) -> dict:
    """One ``lbpd_run`` row as the dashboard shows it: its counts, whether they add up, tokens, requests,
    429s, duration, and the links to the run in the Airflow grid and to its validation report."""
    import json
    from urllib.parse import quote

    summary = json.loads(row["summary"] or "{}")
    deferred = int(summary.get("deferred") or 0)
    counts = {key: int(row[key] or 0) for key in ("extracted", "pushed", "already_pushed", "rejected")}
    return {
        "run_id": row["run_id"], "interval_start": row["interval_start"], "interval_end": row["interval_end"],
        **counts, "deferred": deferred,
        "adds_up": counts["extracted"] == counts["pushed"] + counts["already_pushed"] + counts["rejected"] + deferred,
        "rejected_by_reason": summary.get("rejected_by_reason", {}), "dry_run": bool(summary.get("dry_run")),
        "tokens_spent": int(row["tokens_spent"] or 0), "requests": summary.get("requests"),
        "rate_limited": int(row["rate_limited"] or 0), "duration_seconds": summary.get("run_duration_seconds"),
        "finished_at": row["finished_at"],
        "grid_url": f"/dags/{quote(dag_id)}/runs/{quote(row['run_id'], safe='')}",
        "validation_report": summary.get("validation_report"),
    }


class LeadBoxerPipedrivePlugin(AirflowPlugin):
    name = "leadboxer_pipedrive"
    fastapi_apps = [{"app": reports_app(), "url_prefix": URL_PREFIX, "name": "LeadBoxer → Pipedrive reports"}]
