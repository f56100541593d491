"""Failure alerts through Airflow's notifier mechanism.

``LeadBoxerPipedriveFailureNotifier`` formats one clear message (DAG, run, task, data interval,
exception, log link) and sends it to the log, and then to every target configured:

* ``email_to``: mails it with the SMTP provider's ``SmtpNotifier`` (connection ``smtp_conn_id``);
* ``notifiers``: any Airflow notifiers you build, e.g. ``SlackNotifier(text="{{ lbpd_alert }}")`` or
  ``SmtpNotifier(..., html_content="<pre>{{ lbpd_alert }}</pre>")``: each is called with the task's
  context, in which ``lbpd_alert`` (the message) and ``lbpd_alert_subject`` are set for its templates;
* ``callbacks``: plain callables ``f(message, context)``.

A target that fails is logged and the others still run; the task's own failure is never masked.
Imports stay light (the notifier is built at DAG-parse time).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from airflow.sdk import BaseNotifier
from airflow.sdk.exceptions import AirflowFailException


def _get(obj: Any, name: str, default: Any = None) -> Any:
    return getattr(obj, name, default) if obj is not None else default


def format_failure(context: Any) -> tuple[str, str]:
    """(subject, message) for a failed task's context."""
    ti = context.get("ti") or context.get("task_instance")
    dag = context.get("dag")
    dag_id = _get(dag, "dag_id") or _get(ti, "dag_id") or "?"
    task_id = _get(context.get("task"), "task_id") or _get(ti, "task_id") or "?"
    run_id = context.get("run_id") or _get(context.get("dag_run"), "run_id") or "?"
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    exception = context.get("exception")
    try_number = _get(ti, "try_number")
    max_tries = _get(ti, "max_tries")
    try:
        log_url = _get(ti, "log_url")
    except Exception:  # the URL needs configuration a test or CLI run may not have
        log_url = None
    params = context.get("params") or {}
    focus = {k: params.get(k) for k in ("dataset_id", "segment_id", "pipeline_id", "link_to") if k in params}
    subject = f"[LeadBoxer→Pipedrive] {dag_id}.{task_id} failed ({run_id})"
    if isinstance(exception, AirflowFailException):  # a setting or credential to fix: never retried
        tries = " (not retried: retrying cannot fix this)"
    elif try_number is not None and max_tries is not None:
        tries = f" (try {try_number} of {int(max_tries) + 1})"
    else:
        tries = ""
    lines = [
        "LeadBoxer → Pipedrive sync failed",
        f"DAG:       {dag_id}",
        f"Run:       {run_id}",
        f"Task:      {task_id}{tries}",
        f"Interval:  [{_iso(start)}, {_iso(end)})",
    ]
    if focus:
        lines.append("Params:    " + ", ".join(f"{k}={v}" for k, v in focus.items()))
    lines.append(f"Exception: {type(exception).__name__}: {exception}" if exception is not None
                 else "Exception: (none given)")
    if log_url:
        lines.append(f"Log:       {log_url}")
    return subject, "\n".join(lines)


def _iso(moment: Any) -> str:
    return moment.isoformat() if hasattr(moment, "isoformat") else str(moment)


class LeadBoxerPipedriveFailureNotifier(BaseNotifier):
    """Sends a clear failure message to the log and the configured targets.

    :param email_to: addresses mailed through ``SmtpNotifier`` (apache-airflow-providers-smtp).
    :param smtp_conn_id: SMTP connection for ``email_to``.
    :param notifiers: other Airflow notifiers called with the context (``{{ lbpd_alert }}`` holds the message).
    :param callbacks: callables ``f(message, context)``.
    :param log_level: level of the log line (``error`` by default).
    """

    template_fields = ()

    def __init__(self, *, email_to: Sequence[str] | str | None = None, smtp_conn_id: str = "smtp_default",
                 notifiers: Sequence[BaseNotifier] = (), callbacks: Sequence[Callable[[str, Any], Any]] = (),
                 log_level: str = "error") -> None:
        super().__init__()
        self.email_to = [email_to] if isinstance(email_to, str) else list(email_to or [])
        self.smtp_conn_id = smtp_conn_id
        self.notifiers = list(notifiers)
        self.callbacks = list(callbacks)
        self.log_level = log_level

    def notify(self, context: Any) -> None:
        subject, message = format_failure(context)
        getattr(self.log, self.log_level, self.log.error)("%s", message)
        try:
            context["lbpd_alert"] = message
            context["lbpd_alert_subject"] = subject
        except TypeError:  # a read-only mapping: the targets still get the message through callbacks
            pass
        for target in self._targets():
            try:
                if isinstance(target, BaseNotifier):
                    target(context)
                else:
                    target(message, context)
            except Exception:
                self.log.exception("Failure alert target %r failed; the task's own failure stands", target)

    def _targets(self) -> list[Any]:
        targets: list[Any] = list(self.notifiers) + list(self.callbacks)
        if self.email_to:
            from airflow.providers.smtp.notifications.smtp import SmtpNotifier

            targets.insert(0, SmtpNotifier(to=self.email_to, smtp_conn_id=self.smtp_conn_id,
                                           subject="{{ lbpd_alert_subject }}",
                                           html_content="<pre>{{ lbpd_alert | e }}</pre>"))
        return targets
