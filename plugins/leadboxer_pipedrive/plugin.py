"""The package's Airflow plugin, served by Airflow's API server behind its login (``/leadboxer-pipedrive``):

- each sync run's validation report (``/reports/<dag_id>/<run_id>/validation``; the validate task logs the
  link and shows it as its "Validation report" button, ``ValidationReportLink``);
- the sync dashboard (``/dashboard/`` and ``/dashboard/<dag_id>``, in the UI's navigation and as a tab of
  every DAG): runs, the token budget, rejected rows, the retry queue and quarantine
  (``leadboxer_pipedrive.dashboard`` draws it), and its JSON API (``/api/dags/<dag_id>/...``).

Every page and API call needs read permission on the DAG's runs (Airflow's auth manager decides; rejected
rows carry emails); putting quarantined rows back in the retry queue needs edit permission on the DAG and
is recorded in the ledger with the user's name. Each DAG is read from its own ledger: the ledger and
Pipedrive connections of its load task (in the serialized DAG).

Registered by the installed distribution's ``airflow.plugins`` entry point (``plugins/.airflowignore`` keeps
Airflow's plugins-folder scan from registering it twice). Every Airflow process imports plugins, task
workers too, so this module imports only FastAPI and pydantic at load time; the rest is imported when a
request comes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

URL_PREFIX = "/leadboxer-pipedrive"
RUNS_SHOWN = 48  # a DAG's runs on its page (two days of hourly runs); the API takes ``limit``
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


# -- who may do what: Airflow's auth manager ------------------------------------------------------------
async def signed_in_user(request: Request):
    """The signed-in user (session cookie or bearer token); 401 for anyone else."""
    from airflow.api_fastapi.core_api.security import bearer_scheme, get_user

    return await get_user(request, None, await bearer_scheme(request))


async def can_read_dag_runs(request: Request) -> None:
    """Airflow's own check: the signed-in user (or token) may read this DAG's runs."""
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from airflow.api_fastapi.core_api.security import requires_access_dag

    requires_access_dag("GET", DagAccessEntity.RUN)(request, await signed_in_user(request))


async def dag_editor(request: Request) -> str:
    """The name of the signed-in user, who must be allowed to edit this DAG (403 otherwise)."""
    from airflow.api_fastapi.core_api.security import requires_access_dag

    user = await signed_in_user(request)
    requires_access_dag("PUT")(request, user)
    return user.get_name()


async def may_edit_dag(request: Request) -> bool:
    try:
        await dag_editor(request)
    except HTTPException:
        return False
    return True


async def readable_sync_dags(request: Request) -> list[dict[str, Any]]:
    """The sync DAGs (tagged ``leadboxer``, as ``dag_factory`` tags them) the signed-in user may read: dag_id and
    description."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.models.dag import DagModel, DagTag
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from leadboxer_pipedrive.dag_factory import DEFAULT_TAGS

    readable = get_auth_manager().get_authorized_dag_ids(user=await signed_in_user(request))
    with create_session() as session:
        dags = session.execute(select(DagModel.dag_id, DagModel.description).join(DagTag)
                               .where(DagTag.name == DEFAULT_TAGS[0]).order_by(DagModel.dag_id)).all()
    return [{"dag_id": dag_id, "description": description} for dag_id, description in dags if dag_id in readable]


# -- what the dashboard reads -----------------------------------------------------------------------------
@dataclass(frozen=True)
class SyncDag:
    """A sync DAG and the connections its load task uses."""

    dag_id: str
    ledger_conn_id: str
    pipedrive_conn_id: str


def sync_dag(dag_id: str) -> SyncDag:
    """The DAG's ledger and Pipedrive connections, from its serialized load task; 404 for other DAGs."""
    from airflow.models.serialized_dag import SerializedDagModel

    dag = SerializedDagModel.get_dag(dag_id)
    if dag is None:
        raise HTTPException(404, f"No DAG {dag_id!r}")
    for task in dag.tasks:
        ledger, pipedrive = getattr(task, "ledger_conn_id", None), getattr(task, "pipedrive_conn_id", None)
        if ledger and pipedrive:
            return SyncDag(dag_id, ledger, pipedrive)
    raise HTTPException(404, f"{dag_id!r} is not a LeadBoxer → Pipedrive sync DAG (no task of it loads into "
                             "Pipedrive through a ledger)")


def airflow_runs(dag_id: str, limit: int = Query(RUNS_SHOWN, ge=1, le=1000)) -> list[dict[str, Any]]:
    """Airflow's record of the DAG's last runs (its state of each), newest first."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    def iso(moment) -> str | None:
        return moment.isoformat() if moment else None

    with create_session() as session:
        runs = session.scalars(select(DagRun).where(DagRun.dag_id == dag_id)
                               .order_by(DagRun.run_after.desc()).limit(limit)).all()
        return [{"run_id": run.run_id, "state": str(getattr(run.state, "value", run.state)),
                 "start_date": iso(run.start_date), "end_date": iso(run.end_date),
                 "interval_start": iso(run.data_interval_start), "interval_end": iso(run.data_interval_end)}
                for run in runs]


SyncDagDep = Annotated[SyncDag, Depends(sync_dag)]
AirflowRunsDep = Annotated[list, Depends(airflow_runs)]
EditorDep = Annotated[str, Depends(dag_editor)]
MayEditDep = Annotated[bool, Depends(may_edit_dag)]
SyncDagsDep = Annotated[list, Depends(readable_sync_dags)]


class RowKey(BaseModel):
    dataset_id: str
    entity: str
    record_id: str


class Redrive(BaseModel):
    """Quarantined rows to put back in the retry queue."""

    rows: list[RowKey]


def plugin_app() -> FastAPI:
    app = FastAPI(title="LeadBoxer → Pipedrive", description="Reports and dashboard of the LeadBoxer → Pipedrive sync")
    ledgers: dict[str, Any] = {}  # one ledger hook (and engine) per connection for the app's life

    def ledger_of(sync: SyncDag):
        from leadboxer_pipedrive.hooks.ledger import LedgerHook

        if sync.ledger_conn_id not in ledgers:
            ledgers[sync.ledger_conn_id] = LedgerHook(sync.ledger_conn_id)
        return ledgers[sync.ledger_conn_id]

    def runs_of(sync: SyncDag, limit: int, from_airflow: list[dict[str, Any]]) -> list[dict[str, Any]]:
        from leadboxer_pipedrive.dashboard import run_figures, with_airflow_states

        rows = ledger_of(sync).runs_of_dag(sync.dag_id, limit)
        return with_airflow_states(sync.dag_id, [run_figures(sync.dag_id, row) for row in rows], from_airflow)

    def budget_of(sync: SyncDag, runs: list[dict[str, Any]]) -> dict[str, Any]:
        from datetime import datetime, timedelta, timezone

        from airflow.sdk.exceptions import AirflowNotFoundException

        from leadboxer_pipedrive.dashboard import BUDGET_DAYS, budget_figures, next_run_estimate
        from leadboxer_pipedrive.hooks.pipedrive import PipedriveHook

        try:
            budget, share = PipedriveHook(sync.pipedrive_conn_id).budget_settings()
        except AirflowNotFoundException:
            budget, share = None, 1.0
        today = datetime.now(timezone.utc).date()
        spent = ledger_of(sync).tokens_by_day((today - timedelta(days=BUDGET_DAYS - 1)).isoformat())
        return budget_figures(spent, budget, share, today, next_run_estimate(runs))

    def rejected_of(sync: SyncDag, run_id, reason, entity, email, limit: int, offset: int) -> dict[str, Any]:
        from leadboxer_pipedrive.frames import clean_email

        filters = {"run_id": run_id or None, "reason": reason or None, "entity": entity or None,
                   "email": clean_email(email)}
        ledger = ledger_of(sync)
        matching, rows = ledger.rejected_rows_of_dag(sync.dag_id, **filters, limit=limit, offset=offset)
        return {"matching": matching, "offset": offset, "limit": limit, "filters": filters, "rows": rows,
                "kinds": ledger.rejection_kinds(sync.dag_id)}

    def retries_of(sync: SyncDag, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        from leadboxer_pipedrive.dashboard import retry_figures, synced_datasets

        return [retry_figures(row) for row in ledger_of(sync).retries_of(*synced_datasets(runs))]

    @app.exception_handler(HTTPException)
    async def page_errors(request: Request, exc: HTTPException):
        """The dashboard's pages answer errors as a page (the UI shows them in a frame); the API as JSON."""
        from fastapi.exception_handlers import http_exception_handler

        from leadboxer_pipedrive.dashboard import render_message

        if "/dashboard/" not in request.url.path:
            return await http_exception_handler(request, exc)
        return HTMLResponse(render_message("LeadBoxer → Pipedrive", str(exc.detail)), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    readers = [Depends(can_read_dag_runs)]
    filters = {"run_id": Query(None), "reason": Query(None), "entity": Query(None), "email": Query(None)}

    @app.get("/reports/{dag_id}/{run_id}/validation", response_class=HTMLResponse, dependencies=readers)
    def validation_report(dag_id: str, run_id: str) -> HTMLResponse:
        path = report_path(dag_id, run_id)
        if not path.exists():
            raise HTTPException(404, f"No validation report for run {run_id!r} of {dag_id!r} (it is written by the "
                                     "run's validate task, in LEADBOXER_PIPEDRIVE_STAGING_URL)")
        return HTMLResponse(path.read_text(encoding="utf-8"))

    @app.get("/api/dags/{dag_id}/runs", dependencies=readers)
    def runs(sync: SyncDagDep, from_airflow: AirflowRunsDep, limit: int = Query(RUNS_SHOWN, ge=1, le=1000)) -> dict:
        """The DAG's recent runs, newest first: each as its summary recorded it in the ledger, checked
        (``adds_up``: extracted = pushed + already pushed + rejected + deferred), with Airflow's state."""
        return {"dag_id": sync.dag_id, "runs": runs_of(sync, limit, from_airflow)}

    @app.get("/api/dags/{dag_id}/budget", dependencies=readers)
    def budget(sync: SyncDagDep, from_airflow: AirflowRunsDep) -> dict:
        """Tokens spent per day against the daily budget, today's remainder, and the next run's estimate."""
        return {"dag_id": sync.dag_id, **budget_of(sync, runs_of(sync, RUNS_SHOWN, from_airflow))}

    @app.get("/api/dags/{dag_id}/rejected", dependencies=readers)
    def rejected(sync: SyncDagDep, run_id: str | None = filters["run_id"],
                 reason: str | None = filters["reason"], entity: str | None = filters["entity"],
                 email: str | None = filters["email"], limit: int = Query(50, ge=1, le=500),
                 offset: int = Query(0, ge=0)) -> dict:
        """The DAG's rejected rows, newest first, filtered by run, reason, entity and email."""
        return {"dag_id": sync.dag_id, **rejected_of(sync, run_id, reason, entity, email, limit, offset)}

    @app.get("/api/dags/{dag_id}/retries", dependencies=readers)
    def retries(sync: SyncDagDep, from_airflow: AirflowRunsDep) -> dict:
        """Rows queued for the DAG's next runs, and those quarantined, with who put rows back and when."""
        ledger = ledger_of(sync)
        return {"dag_id": sync.dag_id, "retries": retries_of(sync, runs_of(sync, RUNS_SHOWN, from_airflow)),
                "redrives": ledger.redrives(sync.dag_id)}

    @app.post("/api/dags/{dag_id}/redrive")
    def redrive(body: Redrive, user: EditorDep, sync: SyncDagDep,
                from_airflow: AirflowRunsDep) -> dict:
        """Put quarantined rows back in the retry queue (the DAG's next run sends them once more; refused
        again, they return to quarantine). Needs edit permission on the DAG; recorded with the user's name."""
        from leadboxer_pipedrive.dashboard import synced_datasets

        datasets, entities = synced_datasets(runs_of(sync, RUNS_SHOWN, from_airflow))
        foreign = [row for row in body.rows if row.dataset_id not in datasets or row.entity not in entities]
        if foreign:
            raise HTTPException(400, f"not rows this DAG's runs retry: {[row.model_dump() for row in foreign]}")
        redriven = ledger_of(sync).redrive([row.model_dump() for row in body.rows], sync.dag_id, user)
        return {"dag_id": sync.dag_id, "redriven": redriven, "by": user}

    @app.get("/dashboard/", response_class=HTMLResponse)
    def overview(request: Request, dags: SyncDagsDep) -> HTMLResponse:
        from leadboxer_pipedrive.dashboard import render_overview

        return HTMLResponse(render_overview(dags, request.scope.get("root_path", "")))

    @app.get("/dashboard/{dag_id}", response_class=HTMLResponse, dependencies=readers)
    def dashboard(request: Request, sync: SyncDagDep, from_airflow: AirflowRunsDep,
                  can_edit: MayEditDep, run_id: str | None = filters["run_id"],
                  reason: str | None = filters["reason"], entity: str | None = filters["entity"],
                  email: str | None = filters["email"], offset: int = Query(0, ge=0)) -> HTMLResponse:
        from leadboxer_pipedrive.dashboard import render_dashboard

        shown = runs_of(sync, RUNS_SHOWN, from_airflow)
        return HTMLResponse(render_dashboard(
            sync.dag_id, runs=shown, budget=budget_of(sync, shown),
            rejected=rejected_of(sync, run_id, reason, entity, email, 50, offset),
            retries=retries_of(sync, shown), redrives=ledger_of(sync).redrives(sync.dag_id), can_edit=can_edit,
            base_path=request.scope.get("root_path", "")))

    return app


class LeadBoxerPipedrivePlugin(AirflowPlugin):
    name = "leadboxer_pipedrive"
    fastapi_apps = [{"app": plugin_app(), "url_prefix": URL_PREFIX, "name": "LeadBoxer → Pipedrive"}]
    # In the UI's navigation (all sync DAGs) and as a tab of each DAG, the page inside the UI.
    external_views = [
        {"name": "LeadBoxer → Pipedrive", "href": f"{URL_PREFIX}/dashboard/", "url_route": "leadboxer-pipedrive",
         "destination": "nav"},
        {"name": "Sync dashboard", "href": f"{URL_PREFIX}/dashboard/{{DAG_ID}}", "url_route": "leadboxer-pipedrive-dag",
         "destination": "dag"},
    ]
