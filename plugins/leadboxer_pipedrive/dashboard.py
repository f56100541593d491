"""The sync dashboard: a DAG's runs, its Pipedrive token budget, its rejected rows and its retry queue, as
figures (the plugin's JSON API) and as one HTML page. Pure: ledger rows in, figures and HTML out (no
Airflow, no I/O); ``leadboxer_pipedrive.plugin`` reads the ledger and serves them.

The page is self-contained: its styles, its charts (SVG drawn here) and its one script are inline, so it
works without internet. Where each figure comes from:

- a run's counts, tokens, requests, 429s and duration: the run summary the load task stored in ``lbpd_run``
  (``invalid`` = rows validation set aside, ``rejected`` = rows Pipedrive refused); its state: Airflow's
  own record of the run (a run that failed before its load has no ledger row, only its state);
- tokens per day: the sum of ``lbpd_run.tokens_spent`` by UTC day, over every DAG sharing the ledger (the
  load's budget check counts the same); the budget and the run share: the Pipedrive connection's
  ``daily_token_budget`` and ``max_run_budget_share``; the next run's estimate: the median of the DAG's
  last real runs;
- rejected rows: ``lbpd_rejected_row``; the retry queue and quarantine: ``lbpd_retry``, of the datasets
  the DAG's runs synced; re-drives: ``lbpd_redrive``.
"""

from __future__ import annotations

import html
import json
from datetime import date, timedelta
from statistics import median
from typing import Any
from urllib.parse import quote, urlencode

from leadboxer_pipedrive.reports import accounted_for, page

UPDATES = ("person_update", "organization_update", "deal_update")
# The rows a sync's runs send again, by the kind of rows it extracts (its summary's ``entity``).
RETRIED_ENTITIES = {"event": ("event", *UPDATES), "lead": ("lead", *UPDATES)}
ESTIMATE_RUNS = 24  # real runs the next run's estimate is the median of
BUDGET_DAYS = 14
# Bars of the runs chart, bottom to top: (figure, label, colour).
RUN_PARTS = (("pushed", "pushed", "#2f855a"), ("already_pushed", "already pushed", "#90cdf4"),
             ("refused", "rejected by Pipedrive", "#dd6b20"), ("invalid", "invalid", "#c53030"),
             ("deferred", "deferred", "#cbd5e0"))


def run_figures(dag_id: str, row: dict[str, Any]) -> dict[str, Any]:
    """One ``lbpd_run`` row as the dashboard shows it: its counts (rejected split into invalid and refused by
    Pipedrive), whether they add up (extracted = pushed + already pushed + rejected + deferred), tokens,
    requests, 429s, duration, and the links to the run in the Airflow grid and to its validation report."""
    summary = json.loads(row["summary"] or "{}")
    counts = {key: int(row[key] or 0) for key in ("extracted", "pushed", "already_pushed", "rejected")}
    counts["deferred"] = int(summary.get("deferred") or 0)
    invalid = int(summary.get("rejected_invalid", counts["rejected"]) or 0)
    return {
        "run_id": row["run_id"], "interval_start": row["interval_start"], "interval_end": row["interval_end"],
        "state": None, **counts, "invalid": invalid, "refused": counts["rejected"] - invalid,
        "adds_up": counts["extracted"] == accounted_for(counts),
        "rejected_by_reason": summary.get("rejected_by_reason", {}), "dry_run": bool(summary.get("dry_run")),
        "dataset_id": summary.get("dataset_id"), "entity": summary.get("entity"),
        "tokens_spent": int(row["tokens_spent"] or 0), "requests": summary.get("requests"),
        "rate_limited": int(row["rate_limited"] or 0), "duration_seconds": summary.get("run_duration_seconds"),
        "finished_at": row["finished_at"], "grid_url": grid_url(dag_id, row["run_id"]),
        "validation_report": summary.get("validation_report"),
    }


def grid_url(dag_id: str, run_id: str) -> str:
    return f"/dags/{quote(dag_id)}/runs/{quote(run_id, safe='')}"


def with_airflow_states(dag_id: str, runs: list[dict[str, Any]], airflow_runs: list[dict[str, Any]]) -> list[dict]:
    """The ledger's runs with Airflow's state of each (``airflow_runs``: run_id, state, start_date, end_date,
    newest first), and the runs Airflow has that never reached the ledger (failed or still running) as rows
    of their own, without figures. Newest first."""
    states = {run["run_id"]: run for run in airflow_runs}
    merged = [{**run, "state": (states.get(run["run_id"]) or {}).get("state")} for run in runs]
    recorded = {run["run_id"] for run in runs}
    oldest = min((run["finished_at"] for run in runs), default=None)
    for run in airflow_runs:
        moment = run.get("end_date") or run.get("start_date") or ""
        if run["run_id"] in recorded or (oldest and moment and moment < oldest):
            continue
        merged.append({"run_id": run["run_id"], "state": run["state"], "interval_start": run.get("interval_start"),
                       "interval_end": run.get("interval_end"), "finished_at": moment, "adds_up": None,
                       "grid_url": grid_url(dag_id, run["run_id"])})
    return sorted(merged, key=lambda run: run["finished_at"] or "", reverse=True)


def stands_out(run: dict[str, Any]) -> str | None:
    """Why a run needs a look: it failed, or its figures do not add up."""
    if run.get("state") == "failed":
        return "failed"
    if run.get("adds_up") is False:
        return "does not add up"
    return None


def next_run_estimate(runs: list[dict[str, Any]]) -> int | None:
    """The tokens the next run will likely spend: the median of the last real (not dry) runs recorded."""
    spent = [run["tokens_spent"] for run in runs if "tokens_spent" in run and not run.get("dry_run")][:ESTIMATE_RUNS]
    return int(median(spent)) if spent else None


def budget_figures(tokens_by_day: dict[str, int], budget: int | None, run_share: float, today: date,
                   next_run: int | None, days: int = BUDGET_DAYS) -> dict[str, Any]:
    """Tokens spent per day over the last ``days`` days (today last) against the daily budget, what is left
    of it today, what one run may spend, and the next run's estimate."""
    series = [{"day": day.isoformat(), "tokens": tokens_by_day.get(day.isoformat(), 0)}
              for day in (today - timedelta(days=back) for back in range(days - 1, -1, -1))]
    spent_today = series[-1]["tokens"]
    return {"days": series, "daily_token_budget": budget, "spent_today": spent_today,
            "left_today": None if budget is None else max(0, budget - spent_today),
            "run_allowance": None if budget is None else int(budget * run_share),
            "next_run_estimate": next_run}


def synced_datasets(runs: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """(the datasets the DAG's runs synced, the entities of their rows that later runs retry)."""
    datasets = sorted({run["dataset_id"] for run in runs if run.get("dataset_id")})
    entities = sorted({entity for run in runs for entity in RETRIED_ENTITIES.get(run.get("entity") or "", ())})
    return datasets, entities


def retry_figures(row: dict[str, Any]) -> dict[str, Any]:
    """A queued row as the dashboard shows it: its keys, status, attempts, Pipedrive's last message and the
    row's email (from its payload), not the payload itself."""
    try:
        payload = json.loads(row.get("payload") or "{}")
    except ValueError:
        payload = {}
    email = payload.get("email") if isinstance(payload, dict) else None
    return {key: row[key] for key in ("dataset_id", "entity", "record_id", "status", "attempts", "last_error",
                                      "updated_at")} | {"email": email if isinstance(email, str) else None}


# -- the page ---------------------------------------------------------------------------------------------
_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 1.5rem; color: #1f2933; }
h1 { font-size: 1.35rem; margin: 0 0 .25rem; } h2 { font-size: 1.05rem; margin: 2rem 0 .5rem; }
p.lead { color: #52606d; margin: 0 0 1rem; } a { color: #2b6cb0; }
table { border-collapse: collapse; width: 100%; font-size: .85rem; }
th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid #e4e7eb; vertical-align: top; }
th { background: #f5f7fa; position: sticky; top: 0; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.out td { background: #fff5f5; } .bad { color: #c53030; font-weight: 600; } .ok { color: #2f855a; }
.figures { display: flex; gap: 1.5rem; flex-wrap: wrap; margin: .5rem 0; }
.figure { background: #f5f7fa; border-radius: .5rem; padding: .5rem .9rem; }
.figure b { display: block; font-size: 1.3rem; font-variant-numeric: tabular-nums; }
.legend span { display: inline-block; margin-right: 1rem; font-size: .8rem; }
.legend i { display: inline-block; width: .8rem; height: .8rem; margin-right: .3rem; vertical-align: -1px; }
form.filters { display: flex; gap: .5rem; flex-wrap: wrap; align-items: end; margin: .5rem 0; font-size: .85rem; }
form.filters label { display: flex; flex-direction: column; gap: .15rem; }
button { padding: .3rem .8rem; border-radius: .3rem; border: 1px solid #2b6cb0; background: #2b6cb0; color: #fff; }
svg text { font-size: 10px; fill: #52606d; }
"""

_SCRIPT = """
document.querySelectorAll("form.redrive").forEach(function (form) {
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var rows = Array.from(form.querySelectorAll("input[name=row]:checked")).map(function (box) {
      return JSON.parse(box.value);
    });
    var status = form.querySelector(".status");
    if (!rows.length) { status.textContent = "Select the quarantined rows to put back first."; return; }
    fetch(form.action, {method: "POST", credentials: "same-origin", headers: {"Content-Type": "application/json"},
                        body: JSON.stringify({rows: rows})})
      .then(function (answer) { return answer.json().then(function (body) { return [answer.ok, body]; }); })
      .then(function (result) {
        if (!result[0]) { status.textContent = "Refused: " + (result[1].detail || "error"); return; }
        status.textContent = result[1].redriven + " row(s) back in the retry queue.";
        window.location.reload();
      });
  });
});
"""


def render_dashboard(dag_id: str, *, runs: list[dict[str, Any]], budget: dict[str, Any],
                     rejected: dict[str, Any], retries: list[dict[str, Any]], redrives: list[dict[str, Any]],
                     can_edit: bool, base_path: str) -> str:
    """The DAG's dashboard page. ``rejected``: ``matching``, ``rows``, ``kinds`` (entity, reason, row_count),
    ``filters`` and ``offset``/``limit`` as the API gives them; ``base_path``: where the plugin is mounted."""
    recorded = [run for run in runs if run.get("adds_up") is not None]
    flagged = sum(1 for run in runs if stands_out(run))
    parts = [f"<h1>LeadBoxer → Pipedrive: {_e(dag_id)}</h1>",
             f'<p class="lead">{len(recorded)} runs in the ledger shown'
             + (f', <span class="bad">{flagged} need a look</span>' if flagged else ", all accounted for")
             + f' · <a href="{_e(base_path)}/dashboard/" target="_self">all sync DAGs</a></p>',
             "<h2>Runs</h2>", _runs_chart(recorded), _legend(), _runs_table(runs),
             "<h2>Pipedrive tokens</h2>", _budget_section(budget),
             "<h2>Rejected rows</h2>", _rejected_section(dag_id, rejected, base_path),
             "<h2>Retry queue and quarantine</h2>", _retry_section(dag_id, retries, can_edit, base_path),
             _redrive_history(redrives)]
    return _page(f"LeadBoxer → Pipedrive: {dag_id}", "\n".join(parts))


def render_overview(dags: list[dict[str, Any]], base_path: str) -> str:
    """The list of sync DAGs the user may read (``dag_id``, ``description``), each linked to its page."""
    rows = "".join(f'<tr><td><a href="{_e(base_path)}/dashboard/{quote(dag["dag_id"])}">{_e(dag["dag_id"])}</a></td>'
                   f'<td>{_e(dag.get("description") or "")}</td></tr>' for dag in dags)
    body = ("<h1>LeadBoxer → Pipedrive sync dashboard</h1>"
            + ('<p class="lead">Pick a sync DAG: its runs, its token budget, its rejected rows and retries.</p>'
               f"<table><tr><th>DAG</th><th>description</th></tr>{rows}</table>" if dags else
               '<p class="lead">No LeadBoxer → Pipedrive sync DAG that you may read.</p>'))
    return _page("LeadBoxer → Pipedrive sync dashboard", body)


def render_message(title: str, message: str) -> str:
    """A page saying why there is nothing to show (not a sync DAG, not signed in, not allowed)."""
    return _page(title, f"<h1>{_e(title)}</h1><p class=\"lead\">{_e(message)}</p>")


def _runs_chart(runs: list[dict[str, Any]], width: int = 960, height: int = 180) -> str:
    """Stacked bars, oldest run left: pushed, already pushed, rejected by Pipedrive, invalid, deferred;
    a bar's height is the run's extracted total; a run that does not add up is marked with "!"."""
    if not runs:
        return "<p>No run recorded yet.</p>"
    runs = list(reversed(runs))
    top = max(max(run["extracted"], sum(run[key] for key, *_ in RUN_PARTS)) for run in runs) or 1
    step = width / len(runs)
    bar = max(2.0, step * 0.7)
    plot = height - 30
    shapes = []
    for index, run in enumerate(runs):
        x, y = index * step + (step - bar) / 2, plot
        for key, label, colour in RUN_PARTS:
            if run[key]:
                h = run[key] / top * plot
                y -= h
                shapes.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="{colour}">'
                              f"<title>{_e(run['run_id'])}: {run[key]} {label}</title></rect>")
        total_y = plot - run["extracted"] / top * plot
        shapes.append(f'<line x1="{x:.1f}" x2="{x + bar:.1f}" y1="{total_y:.1f}" y2="{total_y:.1f}" stroke="#1f2933">'
                      f"<title>{_e(run['run_id'])}: {run['extracted']} extracted</title></line>")
        if stands_out(run):
            shapes.append(f'<text x="{x + bar / 2:.1f}" y="{max(10, total_y - 3):.1f}" text-anchor="middle" '
                          f'class="bad" style="fill:#c53030">!</text>')
    labels = f'<text x="0" y="{height - 8}">{_e(_hour(runs[0]))}</text>' \
             f'<text x="{width}" y="{height - 8}" text-anchor="end">{_e(_hour(runs[-1]))}</text>' \
             f'<text x="0" y="10">{top} rows</text>'
    return (f'<svg id="runs-chart" role="img" aria-label="rows per run" viewBox="0 0 {width} {height}" '
            f'width="100%" height="{height}" preserveAspectRatio="none">{"".join(shapes)}{labels}</svg>')


def _legend() -> str:
    return '<div class="legend">' + "".join(f'<span><i style="background:{colour}"></i>{label}</span>'
                                            for _, label, colour in RUN_PARTS) + \
        '<span><i style="background:#1f2933;height:2px"></i>extracted</span></div>'


def _runs_table(runs: list[dict[str, Any]]) -> str:
    head = ("<tr><th>interval</th><th>run</th><th>state</th><th>extracted</th><th>pushed</th><th>already</th>"
            "<th>invalid</th><th>refused</th><th>deferred</th><th>adds up</th><th>tokens</th><th>requests</th>"
            "<th>429s</th><th>duration</th><th>report</th></tr>")
    rows = []
    for run in runs:
        recorded = run.get("adds_up") is not None
        numbers = "".join(f'<td class="n">{_e(run.get(key, ""))}</td>' for key in (
            "extracted", "pushed", "already_pushed", "invalid", "refused", "deferred")) if recorded \
            else '<td colspan="6">not in the ledger (the run did not reach its load)</td>'
        adds_up = ('<td class="ok">✓</td>' if run["adds_up"] else '<td class="bad">✗</td>') if recorded else "<td></td>"
        tail = "".join(f'<td class="n">{_e(value)}</td>' for value in (
            run.get("tokens_spent", ""), run.get("requests") or "", run.get("rate_limited", ""),
            f"{run['duration_seconds']:.0f} s" if run.get("duration_seconds") is not None else ""))
        report = f'<a href="{_e(run["validation_report"])}" target="_blank">Data Docs</a>' \
            if run.get("validation_report") else ""
        state = (run.get("state") or "") + (" (dry run)" if run.get("dry_run") else "")
        why = stands_out(run)
        rows.append(f'<tr class="{"out" if why else ""}"><td>{_e(_interval(run))}</td>'
                    f'<td><a href="{_e(run["grid_url"])}" target="_top">{_e(run["run_id"])}</a></td>'
                    f'<td class="{"bad" if why else ""}">{_e(state)}{f" ({why})" if why and why != state else ""}</td>'
                    f"{numbers}{adds_up}{tail}<td>{report}</td></tr>")
    return f'<table id="runs">{head}{"".join(rows)}</table>'


def _budget_section(budget: dict[str, Any], width: int = 960, height: int = 150) -> str:
    limit = budget["daily_token_budget"]
    days = budget["days"]
    top = max([day["tokens"] for day in days] + [limit or 0]) or 1
    plot, step = height - 25, width / len(days)
    shapes = []
    for index, day in enumerate(days):
        h = day["tokens"] / top * plot
        x = index * step + step * 0.15
        shapes.append(f'<rect x="{x:.1f}" y="{plot - h:.1f}" width="{step * 0.7:.1f}" height="{h:.1f}" '
                      f'fill="#4a5568"><title>{day["day"]}: {day["tokens"]} tokens</title></rect>')
        if index in (0, len(days) - 1):
            shapes.append(f'<text x="{x:.1f}" y="{height - 8}">{day["day"]}</text>')
    if limit:
        y = plot - limit / top * plot
        shapes.append(f'<line x1="0" x2="{width}" y1="{y:.1f}" y2="{y:.1f}" stroke="#c53030" stroke-dasharray="6 4">'
                      f"<title>daily budget {limit}</title></line>")
    chart = (f'<svg id="budget-chart" role="img" aria-label="tokens per day" viewBox="0 0 {width} {height}" '
             f'width="100%" height="{height}" preserveAspectRatio="none">{"".join(shapes)}</svg>')
    estimate = budget["next_run_estimate"]
    figures = [("spent today (UTC)", budget["spent_today"]),
               ("daily budget", limit if limit else "not set"),
               ("left today", budget["left_today"] if limit else "—"),
               ("one run may spend", budget["run_allowance"] if limit else "—"),
               ("next run, estimated", estimate if estimate is not None else "no run yet")]
    note = ""
    if limit and estimate is not None and estimate > (budget["left_today"] or 0):
        note = '<p class="bad">The next run likely needs more than is left today: it will wait for midnight UTC.</p>'
    return ('<div class="figures">' + "".join(f'<div class="figure"><b>{_e(v)}</b>{_e(k)}</div>' for k, v in figures)
            + "</div>" + note + chart)


def _rejected_section(dag_id: str, rejected: dict[str, Any], base_path: str) -> str:
    filters = rejected["filters"]
    reasons = sorted({kind["reason"] for kind in rejected["kinds"]})
    entities = sorted({kind["entity"] for kind in rejected["kinds"]})
    form = (f'<form class="filters" method="get" action="{_e(base_path)}/dashboard/{quote(dag_id)}#rejected">'
            + _input("run_id", "run", filters.get("run_id"))
            + _select("reason", "reason", reasons, filters.get("reason"))
            + _select("entity", "entity", entities, filters.get("entity"))
            + _input("email", "email", filters.get("email"))
            + '<button type="submit">Filter</button></form>')
    summary = "".join(f"<li>{kind['row_count']} × {_e(kind['entity'])}: {_e(kind['reason'])}</li>"
                      for kind in rejected["kinds"][:10])
    head = ("<tr><th>when</th><th>run</th><th>entity</th><th>record</th><th>lead (use_id)</th><th>email</th>"
            "<th>outcome</th><th>reason</th></tr>")
    rows = "".join("<tr>" + "".join(f"<td>{_e(row.get(key) or '')}</td>" for key in (
        "rejected_at", "run_id", "entity", "record_id", "use_id", "email", "outcome", "reason")) + "</tr>"
        for row in rejected["rows"])
    shown_to = rejected["offset"] + len(rejected["rows"])
    first = rejected["offset"] + 1 if rejected["rows"] else 0
    pages = f"<p>{rejected['matching']} matching rows; {first}–{shown_to} shown."
    if shown_to < rejected["matching"]:
        query = urlencode({**{k: v for k, v in filters.items() if v}, "offset": shown_to})
        pages += f' <a href="{_e(base_path)}/dashboard/{quote(dag_id)}?{_e(query)}#rejected">next</a>'
    return (f'<div id="rejected">{form}<ul>{summary}</ul>{pages}</p>'
            f'<table id="rejected-rows">{head}{rows}</table></div>')


def _retry_section(dag_id: str, retries: list[dict[str, Any]], can_edit: bool, base_path: str) -> str:
    if not retries:
        return "<p>Nothing queued: no row waits for a retry.</p>"
    quarantined = sum(row["status"] == "quarantined" for row in retries)
    head = ("<tr><th></th><th>status</th><th>entity</th><th>record</th><th>email</th><th>attempts</th>"
            "<th>Pipedrive's last message</th><th>since</th></tr>")
    rows = []
    for row in retries:
        key = json.dumps({k: row[k] for k in ("dataset_id", "entity", "record_id")})
        box = f'<input type="checkbox" name="row" value="{_e(key)}">' \
            if can_edit and row["status"] == "quarantined" else ""
        rows.append(f'<tr class="{"out" if row["status"] == "quarantined" else ""}"><td>{box}</td>'
                    + "".join(f"<td>{_e(row.get(k) or '')}</td>" for k in (
                        "status", "entity", "record_id", "email", "attempts", "last_error", "updated_at")) + "</tr>")
    table = f'<table id="retries">{head}{"".join(rows)}</table>'
    intro = (f"<p>{len(retries) - quarantined} pending (the next runs send them again), {quarantined} quarantined "
             "(refused too often: no more retries until put back).</p>")
    if not (can_edit and quarantined):
        hint = "" if not quarantined else "<p>Putting quarantined rows back needs edit permission on this DAG.</p>"
        return intro + hint + table
    return (intro + f'<form class="redrive" method="post" action="{_e(base_path)}/api/dags/{quote(dag_id)}/redrive">'
            + table + '<p><button type="submit">Put the selected rows back in the retry queue</button> '
            '<span class="status"></span></p></form>')


def _redrive_history(redrives: list[dict[str, Any]]) -> str:
    if not redrives:
        return ""
    rows = "".join("<tr>" + "".join(f"<td>{_e(row.get(k) or '')}</td>" for k in (
        "redriven_at", "redriven_by", "entity", "record_id", "attempts", "last_error")) + "</tr>" for row in redrives)
    return ("<h2>Put back in the queue</h2><table id=\"redrives\"><tr><th>when</th><th>by</th><th>entity</th>"
            f"<th>record</th><th>attempts then</th><th>Pipedrive's message then</th></tr>{rows}</table>")


def _input(name: str, label: str, value: str | None) -> str:
    return f'<label>{label}<input name="{name}" value="{_e(value or "")}"></label>'


def _select(name: str, label: str, options: list[str], chosen: str | None) -> str:
    items = "".join(f'<option value="{_e(o)}"{" selected" if o == chosen else ""}>{_e(o[:80])}</option>'
                    for o in options)
    return f'<label>{label}<select name="{name}"><option value="">any</option>{items}</select></label>'


def _interval(run: dict[str, Any]) -> str:
    start, end = run.get("interval_start") or "", run.get("interval_end") or ""
    return f"{start[:16].replace('T', ' ')} – {end[11:16]}" if start and end else ""


def _hour(run: dict[str, Any]) -> str:
    return (run.get("interval_end") or run.get("finished_at") or "")[:16].replace("T", " ")


def _e(value: Any) -> str:
    return html.escape(str(value))


def _page(title: str, body: str) -> str:
    return page(title, body, style=_STYLE, script=_SCRIPT)
