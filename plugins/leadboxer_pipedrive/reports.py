"""Run reports: the great-expectations validation result as one self-contained HTML page, and a readable
summary for the log. Pure: results in, text out (no Airflow, no I/O).

The page holds everything inline (its styles too, nothing fetched: it reads the same offline and behind a
firewall): what was validated (DAG, run, interval, the rows' dataset and segment), each expectation with
the rows it saw and the rows that failed it, and the rows set aside with their reasons. The Airflow UI
serves it (``leadboxer_pipedrive.plugin``).
"""

from __future__ import annotations

import html
from typing import Any


def validation_rows(results: Any) -> list[dict[str, Any]]:
    """One row per expectation: type, column, success, evaluated, unexpected count and percent."""
    rows = []
    for result in getattr(results, "results", None) or []:
        config = result.expectation_config
        figures = result.result or {}
        rows.append({
            "expectation": config.type,
            "column": config.kwargs.get("column"),
            "success": bool(result.success),
            "element_count": figures.get("element_count"),
            "unexpected_count": figures.get("unexpected_count", 0 if result.success else None),
            "unexpected_percent": figures.get("unexpected_percent"),
        })
    return rows


def format_validation_summary(results: Any, suite_name: str | None = None) -> str:
    """A few log lines: overall outcome, then one line per expectation."""
    rows = validation_rows(results)
    if not rows:
        return f"validation {suite_name or 'suite'}: nothing to validate (no rows)"
    passed = sum(row["success"] for row in rows)
    name = suite_name or getattr(results, "suite_name", None) or "suite"
    lines = [f"validation {name}: {passed} of {len(rows)} expectations met "
             f"({'all rows valid' if passed == len(rows) else 'failing rows were set aside'})"]
    for row in rows:
        mark = "ok  " if row["success"] else "FAIL"
        extra = "" if row["success"] else f" - {row['unexpected_count']} of {row['element_count']} rows unexpected"
        lines.append(f"  {mark} {row['expectation']}({row['column']}){extra}")
    return "\n".join(lines)


# Rows set aside listed on the page (all are in the ledger's lbpd_rejected_row).
REJECTED_ROWS_SHOWN = 200

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem; color: #1f2933; }
h1 { font-size: 1.4rem; margin: 0 0 1rem; } h2 { font-size: 1.1rem; margin: 2rem 0 .5rem; }
dl { display: grid; grid-template-columns: max-content auto; gap: .25rem 1rem; margin: 0; }
dt { color: #52606d; } dd { margin: 0; font-family: ui-monospace, monospace; }
.status { display: inline-block; padding: .25rem .75rem; border-radius: 1rem; font-weight: 600; margin: 1rem 0; }
.ok { background: #e3f9e5; color: #0e5814; } .failed { background: #ffe3e3; color: #8a1c1c; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; }
th, td { text-align: left; padding: .4rem .6rem; border-bottom: 1px solid #e4e7eb; vertical-align: top; }
th { background: #f5f7fa; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
"""


def render_validation_html(results: Any, *, title: str, about: dict[str, Any] | None = None,
                           rejected: Any = None) -> str:
    """The validation of one run as a self-contained HTML page. ``about``: what was validated (label →
    value, e.g. DAG, run, interval); ``rejected``: the rows set aside (record_id, use_id, reason)."""
    esc = html.escape
    parts = [f"<h1>{esc(title)}</h1>"]
    if about:
        parts.append("<dl>" + "".join(f"<dt>{esc(str(k))}</dt><dd>{esc(str(v))}</dd>" for k, v in about.items())
                     + "</dl>")
    rows = validation_rows(results)
    if not rows:
        parts.append('<p class="status ok">Nothing to validate: the run extracted no rows.</p>')
        return page(title, "\n".join(parts))
    met = sum(row["success"] for row in rows)
    status = "ok" if met == len(rows) else "failed"
    parts.append(f'<p class="status {status}">{met} of {len(rows)} expectations met'
                 f'{"" if status == "ok" else ": failing rows were set aside"}</p>')
    parts.append("<h2>Expectations</h2><table><tr><th></th><th>expectation</th><th>column</th>"
                 "<th>rows</th><th>unexpected</th><th>unexpected %</th></tr>")
    for row in rows:
        percent = row["unexpected_percent"]
        parts.append("<tr>" + f"<td>{'✓' if row['success'] else '✗'}</td>"
                     + "".join(f"<td>{esc(str(v))}</td>" for v in (row["expectation"], row["column"]))
                     + "".join(f'<td class="n">{esc(str(v))}</td>' for v in (
                         row["element_count"], row["unexpected_count"],
                         f"{percent:.2f}" if isinstance(percent, int | float) else percent)) + "</tr>")
    parts.append("</table>")
    if rejected is not None and len(rejected):
        shown = rejected.head(REJECTED_ROWS_SHOWN)
        parts.append(f"<h2>Rows set aside ({len(rejected)}"
                     f"{f', the first {len(shown)} shown' if len(shown) < len(rejected) else ''})</h2>"
                     "<table><tr><th>record</th><th>lead (use_id)</th><th>reason</th></tr>")
        for record_id, use_id, reason in shown[["record_id", "use_id", "reason"]].itertuples(index=False):
            parts.append("<tr>" + "".join(f"<td>{esc(_text(v))}</td>" for v in (record_id, use_id, reason)) + "</tr>")
        parts.append("</table>")
    return page(title, "\n".join(parts))


def _text(value: Any) -> str:
    return "" if value is None or str(value) in ("<NA>", "nan", "None") else str(value)


def page(title: str, body: str, *, style: str = _STYLE, script: str = "") -> str:
    """A self-contained HTML page: its styles and script inline, nothing fetched."""
    tail = f"<script>{script}</script>" if script else ""
    return (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head>\n<body>\n{body}\n{tail}</body></html>\n")


def accounted_for(summary: dict[str, Any]) -> int:
    """What a run did with its rows: pushed + already pushed + rejected + deferred (equals extracted)."""
    return summary["pushed"] + summary["already_pushed"] + summary["rejected"] + summary.get("deferred", 0)
