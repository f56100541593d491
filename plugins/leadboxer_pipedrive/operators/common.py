"""What the sync operators share: the data interval, staged frames, rejections and the run summary.

Imports here stay light (Airflow's SDK only): pandas and great-expectations load inside ``execute``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from functools import cached_property
from typing import Any

from airflow.sdk import BaseOperator, BaseOperatorLink
from airflow.sdk.exceptions import AirflowFailException

from leadboxer_pipedrive.reports import accounted_for


def data_interval(context) -> tuple[Any, Any]:
    start, end = context["data_interval_start"], context["data_interval_end"]
    if start is None or end is None or start >= end:
        raise AirflowFailException(
            f"data interval [{start}, {end}) is empty: schedule the DAG with CronDataIntervalTimetable "
            "(a plain cron string gives zero-width intervals in Airflow 3)")
    return start, end


def to_ms(moment) -> int:
    return int(moment.timestamp() * 1000)


def staged_path(upstream: dict[str, Any], name: str):
    """``name`` in the run's staging folder (set by the extract task)."""
    from airflow.sdk import ObjectStoragePath

    return ObjectStoragePath(upstream["staging_folder"]) / name


def load_settings(context, upstream: dict[str, Any], **overrides: Any):
    """The loader's settings for this task try (claims are owned per dag run, task and try)."""
    from leadboxer_pipedrive.loading import LoadSettings

    ti = context["ti"]
    return LoadSettings(dataset_id=upstream["dataset_id"], dag_id=context["dag"].dag_id, run_id=context["run_id"],
                        task_id=ti.task_id, try_number=int(getattr(ti, "try_number", 1) or 1), **overrides)


def record_rejections(ledger, context, rejected, entity: str) -> None:
    """Rows validation set aside go to the ledger with their reasons."""
    frame = rejected.astype(object).where(rejected.notna(), None)
    seen: set[str] = set()
    rows = []
    for position, row in enumerate(frame.to_dict("records")):
        record_id = str(row["record_id"]) if row["record_id"] else ""
        if not record_id or record_id in seen:
            # A row without an id, or repeating one, still gets a ledger row of its own.
            record_id = f"{record_id}#row{position}"
        seen.add(record_id)
        rows.append({"dag_id": context["dag"].dag_id, "run_id": context["run_id"], "entity": entity,
                     "record_id": record_id, "use_id": row["use_id"], "email": row.get("email"), "outcome": "invalid",
                     "reason": row["reason"], "record": None})
    ledger.record_rejections(rows)


def task_timing(context) -> dict[str, Any]:
    """This task try's start (the task instance's start date), now, and the seconds between."""
    now = datetime.now(timezone.utc)
    started = getattr(context.get("ti"), "start_date", None) or now
    return {"started_at": started.isoformat(), "finished_at": now.isoformat(),
            "duration_seconds": round((now - started).total_seconds(), 3)}


def with_task_duration(context, result: dict[str, Any]) -> dict[str, Any]:
    """``result`` with this task's duration added to ``task_durations`` (task id → seconds); the first
    task also sets ``run_started_at``. Both travel downstream with the frames' paths into the run summary."""
    timing = task_timing(context)
    task_id = getattr(context.get("ti"), "task_id", None) or "task"
    durations = {**(result.get("task_durations") or {}), task_id: timing["duration_seconds"]}
    return {**result, "run_started_at": result.get("run_started_at") or timing["started_at"],
            "task_durations": durations}


def write_validation_report(operator, context, upstream: dict[str, Any], outcome, entity: str) -> str:
    """The validation of the run as one HTML page (``validation.html`` in the run's staging folder, served
    by the Airflow UI: ``leadboxer_pipedrive.plugin``); logs a readable summary and the page's link, and
    returns the link."""
    from leadboxer_pipedrive.plugin import VALIDATION_REPORT, report_url
    from leadboxer_pipedrive.reports import format_validation_summary, render_validation_html

    dag_id, run_id = context["dag"].dag_id, context["run_id"]
    title = f"LeadBoxer {entity}s of {dag_id}, run {run_id}"
    operator.log.info("%s", format_validation_summary(outcome.results, title))
    about = {"DAG": dag_id, "Run": run_id, "Interval": f"[{upstream['interval_start']}, {upstream['interval_end']})",
             "Rows": f"LeadBoxer {entity}s of dataset {upstream['dataset_id']}, segment {upstream['segment_id']}",
             "Validated": f"{outcome.statistics.get('evaluated', 0)} rows, {len(outcome.rejected)} set aside"}
    path = staged_path(upstream, VALIDATION_REPORT)
    path.write_text(render_validation_html(outcome.results, title=title, about=about, rejected=outcome.rejected),
                    encoding="utf-8")
    url = report_url(dag_id, run_id)
    operator.log.info("Validation report: %s (in the Airflow UI; the file: %s)", url, path)
    return url


class ValidationReportLink(BaseOperatorLink):
    """The validate task's button in the Airflow UI: its run's validation report."""

    name = "Validation report"

    def get_link(self, operator, *, ti_key) -> str:
        from leadboxer_pipedrive.plugin import report_url

        return report_url(ti_key.dag_id, ti_key.run_id)


def run_summary(upstream: dict[str, Any], loaded: dict[str, Any], usage: dict[str, Any]) -> dict[str, Any]:
    """One run's figures: extracted = pushed + already pushed + rejected (invalid or refused) + deferred
    (left for the next runs: members of a whole-segment run by the token budget, activity rows waiting
    for the account index's first read). The Pipedrive figures
    count the preflight's calls with the load's (``usage``: the load hook's, with ``spent_on``)."""
    preflight = upstream.get("preflight") or {}
    spent_on = {task: text for task, text in (("preflight", preflight.get("pipedrive_spent_on")),
                                               ("load", usage.get("spent_on"))) if text}
    return {
        "interval_start": upstream["interval_start"],
        "interval_end": upstream["interval_end"],
        "dataset_id": upstream["dataset_id"],
        "segment_id": upstream["segment_id"],
        "entity": upstream["entity"],
        "leads": upstream["leads"] - upstream.get("leads_without_id", 0),
        "leads_without_id": upstream.get("leads_without_id", 0),
        "extracted": upstream["extracted"],
        "pushed": loaded["pushed"],
        "already_pushed": loaded["already_pushed"],
        "rejected": upstream["rejected"] + loaded["refused"],
        "rejected_invalid": upstream["rejected"],
        "rejected_by_pipedrive": loaded["refused"],
        "rejected_by_reason": _by_reason(upstream.get("rejected_by_reason", {}), loaded.get("refused_by_reason", {})),
        "deferred": loaded.get("deferred", 0),
        "scope": upstream.get("scope", "hour"),
        "loaded": loaded,
        "tokens_spent": usage["tokens_spent"] + preflight.get("pipedrive_tokens", 0),
        "requests": usage["requests"] + preflight.get("pipedrive_requests", 0),
        "rate_limited": usage["rate_limited"],
        "preflight_tokens": preflight.get("pipedrive_tokens", 0),
        "tokens_spent_on": spent_on,
        "validation_report": upstream.get("validation_report"),
        "task_durations": upstream.get("task_durations", {}),
    }


# Counts of records kept current (loading.updates): updated, unchanged, kept (someone else's value), refused.
_KEPT_CURRENT = ("s_updated", "s_unchanged", "s_kept", "_updates_refused", "_updates_dropped_gone")


def format_summary(summary: dict[str, Any]) -> str:
    lines = [
        f"interval        [{summary['interval_start']}, {summary['interval_end']})",
        f"extracted       {_extracted(summary)}",
        f"pushed          {summary['pushed']}",
        f"already pushed  {summary['already_pushed']}",
        f"rejected        {summary['rejected']} ({summary['rejected_invalid']} invalid, "
        f"{summary['rejected_by_pipedrive']} refused by Pipedrive)",
    ]
    lines += [f"  - {count} x {reason}" for reason, count in summary["rejected_by_reason"].items()]
    if summary.get("deferred"):
        lines.append(f"deferred        {summary['deferred']} (left for the next runs: the token budget, or the "
                     "account index's first read)")
    if summary.get("segment_progress"):
        lines.append(f"segment         {summary['segment_id']}: {summary['segment_progress']}")
    lines += _count_lines(summary["loaded"])
    lines.append(f"pipedrive       {summary['tokens_spent']} tokens, {summary['requests']} requests, "
                 f"{summary['rate_limited']} answered 429")
    lines += [f"  {task + ':':<14}{spent}" for task, spent in (summary.get("tokens_spent_on") or {}).items()]
    if summary.get("duration_seconds") is not None:
        lines.append(_duration_line(summary))
    if summary.get("validation_report"):
        lines.append(f"validation      {summary['validation_report']}")
    return "\n".join(lines)


def _extracted(summary: dict[str, Any]) -> str:
    """``32 events of 11 leads``, ``105 leads (the whole segment)``; a lead without an id counts as a
    record of its own (its events cannot be read)."""
    if summary["entity"] != "event":
        return f"{summary['extracted']} leads" + (" (the whole segment)" if summary.get("scope") == "segment" else "")
    without_id = summary.get("leads_without_id", 0)
    events = f"{summary['extracted'] - without_id} events of {summary['leads']} leads"
    return f"{summary['extracted']} records: {events}, and {without_id} without an id" if without_id else events


def _count_lines(loaded: dict[str, Any]) -> list[str]:
    """The loader's own counts: what it resolved, and what it kept current."""
    counts = {k: v for k, v in loaded.items() if isinstance(v, int)}
    kept_current = {k: v for k, v in counts.items() if k.endswith(_KEPT_CURRENT)}
    resolved = {k: v for k, v in counts.items()
                if k not in ("received", "pushed", "already_pushed", "refused") and k not in kept_current}
    return [f"{title:<16}" + ", ".join(f"{k}={v}" for k, v in counts.items())
            for title, counts in (("resolved", resolved), ("kept current", kept_current)) if counts]


def _duration_line(summary: dict[str, Any]) -> str:
    durations = ", ".join(f"{k} {v:.1f}s" for k, v in (summary.get("task_durations") or {}).items())
    run = summary.get("run_duration_seconds")
    return (f"duration        load {summary['duration_seconds']:.1f}s"
            + (f", run {run:.1f}s" if run is not None else "") + (f" ({durations})" if durations else ""))


def finish_dry_run(operator, context, ledger, upstream: dict[str, Any], plan: dict[str, Any],
                   usage: dict[str, int]) -> dict[str, Any]:
    """A dry run's report: the priced plan, nothing written to Pipedrive."""
    summary = {**run_summary(upstream, {"pushed": 0, "already_pushed": plan["already_pushed"], "refused": 0,
                                        "deferred": plan.get("deferred", 0)}, usage), "dry_run": True, "plan": plan}
    summary.update(_load_timing(context, upstream, summary))
    ledger.record_run(dag_id=context["dag"].dag_id, run_id=context["run_id"],
                      interval_start=summary["interval_start"], interval_end=summary["interval_end"],
                      extracted=summary["extracted"], pushed=0, already_pushed=plan["already_pushed"],
                      rejected=summary["rejected"], tokens_spent=summary["tokens_spent"],
                      rate_limited=usage["rate_limited"], summary=json.dumps(summary, default=str))
    lines = [f"DRY RUN for [{summary['interval_start']}, {summary['interval_end']}): nothing was written to "
             f"Pipedrive. {summary['extracted']} extracted, {summary['rejected']} rejected, "
             f"{plan['already_pushed']} already pushed.",
             f"Would create: {plan['would_create'] or 'nothing'}",
             f"Would update: {plan.get('would_update') or 'nothing'}",
             f"Estimated cost: {plan['estimated_tokens']} tokens ({plan['calls']})"]
    for entity, way in plan.get("finding", {}).items():
        lines.append(f"Finding {entity}s: {way['way']} ({way['why']})")
    if plan.get("deferred"):
        lines.append(f"Left for the next runs by the token budget: {plan['deferred']} rows "
                     f"(about {plan['deferred_tokens']} tokens)")
    for kind, samples in plan["samples"].items():
        lines += [f"  sample {kind}: {json.dumps(sample, default=str, ensure_ascii=False)}" for sample in samples]
    operator.log.info("\n".join(lines))
    return json_safe(summary)


def budget_allowance(ledger, pipedrive, now=None) -> int | None:
    """What this run may spend: its share of the daily budget, at most what is left of it today (None:
    no budget set)."""
    budget, share = pipedrive.budget_settings()
    if not budget:
        return None
    return max(0, min(int(budget * share), budget - spent_today(ledger, now)[0]))


def spent_today(ledger, now=None) -> tuple[int, datetime]:
    """(tokens the ledger's runs spent since midnight UTC, that midnight)."""
    now = now or datetime.now(timezone.utc)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return ledger.tokens_spent_since(midnight.isoformat(timespec="seconds")), midnight


def largest_affordable(count: int, cost_of_first, allowance: int) -> int:
    """The largest ``n`` ≤ ``count`` whose ``cost_of_first(n)`` fits ``allowance`` (costs grow with ``n``)."""
    low, high = 0, count
    while low < high:
        middle = (low + high + 1) // 2
        if cost_of_first(middle) <= allowance:
            low = middle
        else:
            high = middle - 1
    return low


def check_budget(ledger, pipedrive, estimated_tokens: int, log, now=None) -> None:
    """Refuse to start a load the daily token budget cannot pay for, instead of failing half-way.

    Over the per-run share: fails at once (retrying cannot help; lower max_leads or use digest mode).
    Over what is left today: reschedules the task to just after midnight UTC, when the budget resets.
    """
    from airflow.sdk.exceptions import AirflowRescheduleException

    budget, share = pipedrive.budget_settings()
    if not budget:
        return
    run_allowance = int(budget * share)
    if estimated_tokens > run_allowance:
        raise AirflowFailException(
            f"this run would spend about {estimated_tokens} tokens, over its allowance of {run_allowance} "
            f"({share:.0%} of the daily budget {budget}): lower max_leads, use activity_mode=digest, or raise "
            "max_run_budget_share on the Pipedrive connection")
    spent, midnight = spent_today(ledger, now)
    if spent + estimated_tokens > budget:
        resume = midnight + timedelta(days=1, minutes=5)
        log.warning("Pipedrive daily token budget: %d of %d spent today and this run needs about %d; nothing "
                    "was written; waiting until %s, when the budget resets", spent, budget, estimated_tokens,
                    resume.isoformat())
        raise AirflowRescheduleException(reschedule_date=resume)


def finish_run(operator, context, ledger, upstream: dict[str, Any], loaded: dict[str, Any],
               usage: dict[str, int], estimated_tokens: int | None = None,
               max_rejected_share: float | None = None, segment_progress: str | None = None) -> dict[str, Any]:
    """Store, log and check the run summary; fail loudly if any record is unaccounted for, or when
    Pipedrive refused more than ``max_rejected_share`` of the rows sent (they stay queued for retry)."""
    summary = run_summary(upstream, loaded, usage)
    summary["estimated_tokens"] = estimated_tokens
    if segment_progress:
        summary["segment_progress"] = segment_progress
    summary.update(_load_timing(context, upstream, summary))
    ledger.record_run(dag_id=context["dag"].dag_id, run_id=context["run_id"],
                      interval_start=summary["interval_start"], interval_end=summary["interval_end"],
                      extracted=summary["extracted"], pushed=summary["pushed"],
                      already_pushed=summary["already_pushed"], rejected=summary["rejected"],
                      tokens_spent=summary["tokens_spent"], rate_limited=usage["rate_limited"],
                      summary=json.dumps(summary))
    operator.log.info("Run summary:\n%s", format_summary(summary))
    if summary["extracted"] != accounted_for(summary):
        raise AirflowFailException(f"accounting mismatch, nothing may be lost silently: {summary}")
    sent = loaded["received"] + loaded.get("retries_pending", 0) - loaded["already_pushed"]
    refused = loaded["refused"] + loaded.get("retries_refused", 0)
    if max_rejected_share is not None and sent and refused / sent > max_rejected_share:
        raise AirflowFailException(
            f"Pipedrive refused {refused} of {sent} rows ({refused / sent:.0%}), over max_rejected_share "
            f"{max_rejected_share:.0%}: see lbpd_rejected_row for the reasons; the rows stay queued in lbpd_retry "
            "and later runs retry them")
    return json_safe(summary)


def _by_reason(*counts: dict[str, int]) -> dict[str, int]:
    """Rejections by reason, validation's and Pipedrive's together: they sum to the run's ``rejected``."""
    total: dict[str, int] = {}
    for reasons in counts:
        for reason, count in reasons.items():
            total[reason] = total.get(reason, 0) + count
    return total


def _load_timing(context, upstream: dict[str, Any], summary: dict[str, Any]) -> dict[str, Any]:
    """The load task's start, end and duration, the run's (extract start → load end), and the load's own
    entry in ``task_durations``: stored with the summary (``lbpd_run.summary``) and returned."""
    timing = task_timing(context)
    task_id = getattr(context.get("ti"), "task_id", None) or "load"
    run_started = upstream.get("run_started_at") or timing["started_at"]
    run_seconds = (datetime.fromisoformat(timing["finished_at"]) - datetime.fromisoformat(run_started))
    return {**timing, "run_started_at": run_started, "run_duration_seconds": round(run_seconds.total_seconds(), 3),
            "task_durations": {**summary.get("task_durations", {}), task_id: timing["duration_seconds"]}}


def json_safe(value: Any) -> Any:
    """Plain JSON types only (XCom): pandas' NA and numpy scalars become null/str."""
    return json.loads(json.dumps(value, default=lambda v: None if str(v) in ("<NA>", "nan", "NaT") else str(v)))


def finish_validation(operator, context, upstream: dict[str, Any], outcome, entity: str,
                      staged_name: str) -> dict[str, Any]:
    """After validation of ``entity`` rows ("event" or "lead"): rejected rows to the ledger with their
    reasons, a log line per reason, the validation report, and valid/rejected frames to staging."""
    from leadboxer_pipedrive.staging import write_frame

    record_rejections(operator.ledger_hook, context, outcome.rejected, entity)
    by_reason = outcome.statistics.get("by_reason", {})
    for reason, count in by_reason.items():
        operator.log.info("Rejected %d %s(s): %s", count, entity, reason)
    report = write_validation_report(operator, context, upstream, outcome, entity)
    return with_task_duration(context, {
        **upstream,
        "validation_report": report,
        "valid": len(outcome.valid),
        "rejected": len(outcome.rejected),
        "rejected_by_reason": by_reason,
        "valid_path": write_frame(outcome.valid, staged_path(upstream, f"valid{staged_name}.parquet")),
        "rejected_path": write_frame(outcome.rejected, staged_path(upstream, f"rejected{staged_name}.parquet")),
    })


class SyncOperator(BaseOperator):
    """Base of the sync operators: the hooks of their connections (``leadboxer_conn_id``,
    ``pipedrive_conn_id``, ``ledger_conn_id``, set by each operator), each built once per task."""

    leadboxer_conn_id: str = "leadboxer_default"
    pipedrive_conn_id: str = "pipedrive_default"
    ledger_conn_id: str = "leadboxer_pipedrive_ledger"

    @cached_property
    def leadboxer_hook(self):
        from leadboxer_pipedrive.hooks.leadboxer import LeadBoxerHook

        return LeadBoxerHook(self.leadboxer_conn_id)

    @cached_property
    def pipedrive_hook(self):
        from leadboxer_pipedrive.hooks.pipedrive import PipedriveHook

        return PipedriveHook(self.pipedrive_conn_id)

    @cached_property
    def ledger_hook(self):
        from leadboxer_pipedrive.hooks.ledger import LedgerHook

        return LedgerHook(self.ledger_conn_id)


class PipedriveLoadOperator(SyncOperator):
    """What both load tasks do: price the plan, stop there on a dry run, check the token budget, load,
    and record the run summary. Subclasses say how to plan and which loader loads.

    Params arrive as native objects (the sync DAGs set ``render_template_as_native_obj``).

    :param upstream: the transform task's return value. (templated)
    :param organization_domain_field: name of a Pipedrive organization custom (text) field holding the
        domain: organizations are matched by it first and new ones get it; empty: none. (templated)
    :param dry_run: write nothing to Pipedrive; log and return the priced plan instead. (templated)
    :param max_rejected_share: fail the run when Pipedrive refuses more than this share of the rows.
    :param max_attempts: refusals before a row is quarantined (no more retries).
    :param pipedrive_conn_id: Airflow connection to Pipedrive. (templated)
    :param ledger_conn_id: Airflow connection to the ledger database. (templated)
    """

    template_fields: Sequence[str] = ("upstream", "organization_domain_field", "dry_run", "max_rejected_share",
                                      "max_attempts", "pipedrive_conn_id", "ledger_conn_id")
    ui_color = "#fde8e8"

    def __init__(self, *, upstream: Any, organization_domain_field: str | None = None, dry_run: bool = False,
                 max_rejected_share: float = 0.2, max_attempts: int = 3,
                 pipedrive_conn_id: str = "pipedrive_default", ledger_conn_id: str = "leadboxer_pipedrive_ledger",
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.upstream = upstream
        self.organization_domain_field = organization_domain_field
        self.dry_run = dry_run
        self.max_rejected_share = max_rejected_share
        self.max_attempts = max_attempts
        self.pipedrive_conn_id = pipedrive_conn_id
        self.ledger_conn_id = ledger_conn_id

    def plan(self, frame, settings):
        """The load's plan (``loading.plan``), priced by the caller."""
        raise NotImplementedError

    def loader(self, settings):
        """The loader that pushes the frame (``load(frame)`` returns a ``LoadResult``)."""
        raise NotImplementedError

    def load_settings(self, context, **overrides: Any):
        return load_settings(context, self.upstream, max_attempts=self.max_attempts,
                             organization_domain_field=self.organization_domain_field or None, **overrides)

    def execute(self, context) -> dict[str, Any]:
        from leadboxer_pipedrive.staging import read_frame

        pipedrive, ledger = self.pipedrive_hook, self.ledger_hook
        settings = self.load_settings(context)
        frame = read_frame(self.upstream["payloads_path"])
        frame, deferred = self.within_budget(frame, settings)
        priced = self.plan(frame, settings).as_dict(pipedrive.token_costs)
        if self.dry_run:
            if len(deferred):
                priced.update(deferred=len(deferred),
                              deferred_tokens=self.plan(deferred, settings).tokens(pipedrive.token_costs))
            return finish_dry_run(self, context, ledger, self.upstream, priced,
                                  {**pipedrive.usage(), "spent_on": pipedrive.spent_on()})
        check_budget(ledger, pipedrive, priced["estimated_tokens"], self.log)
        try:
            result = self.loader(settings).load(frame)
        finally:
            self.log.info("Pipedrive usage this try: %s", pipedrive.usage())
        loaded = {**result.as_dict(), **({"deferred": len(deferred)} if len(deferred) else {})}
        return finish_run(self, context, ledger, self.upstream, loaded,
                          {**pipedrive.usage(), "spent_on": pipedrive.spent_on()},
                          estimated_tokens=priced["estimated_tokens"],
                          max_rejected_share=float(self.max_rejected_share),
                          segment_progress=self.record_segment_progress(frame, deferred, settings))

    def within_budget(self, frame, settings):
        """``(rows to load now, rows left for later runs)``. A whole-segment run takes, in the order listed,
        the members whose plan fits the token budget (``budget_allowance``) and leaves the rest; any other
        run takes every row (``check_budget`` then decides whether it may start)."""
        allowance = budget_allowance(self.ledger_hook, self.pipedrive_hook) \
            if self.upstream.get("scope") == "segment" else None
        if allowance is None:
            return frame, frame.iloc[0:0]
        costs = self.pipedrive_hook.token_costs
        affordable = largest_affordable(len(frame), lambda n: self.plan(frame.iloc[:n], settings).tokens(costs),
                                        allowance)
        if affordable < len(frame):
            self.log.warning("The token budget allows %d tokens this run: %d of %d members go now, the rest in the "
                             "next runs", allowance, affordable, len(frame))
        return frame.iloc[:affordable], frame.iloc[affordable:]

    def record_segment_progress(self, frame, deferred, settings) -> str | None:
        """After a whole-segment run: how much of the segment is in Pipedrive, remembered in the ledger."""
        if self.upstream.get("scope") != "segment":
            return None
        from leadboxer_pipedrive.segment_sync import record_progress

        members = [*frame["use_id"], *deferred["use_id"]]
        in_pipedrive = len(self.ledger_hook.leads_by_use_id(settings.dataset_id, members))
        left_tokens = self.plan(deferred, settings).tokens(self.pipedrive_hook.token_costs) if len(deferred) else 0
        return record_progress(self.ledger_hook, settings.dataset_id, self.upstream["segment_id"],
                               members=self.upstream["extracted"], in_pipedrive=in_pipedrive, left=len(deferred),
                               left_tokens=left_tokens).describe()
