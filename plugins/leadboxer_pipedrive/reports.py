"""Run reports: the great-expectations validation result as Data Docs HTML, and a readable summary.

Pure: results object in, text out (no Airflow, no I/O). great-expectations is imported only inside
``render_validation_html``. The page is GE's own Data Docs page (``ValidationResultsPageRenderer`` →
``DefaultJinjaPageView``), rendered offline; its stylesheets come from public CDNs, so without internet
the page shows unstyled but complete. Should GE's renderer fail, a small self-contained HTML table of
the same figures is written instead, so a run never fails for its report.
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


def render_validation_html(results: Any, title: str = "LeadBoxer validation") -> str:
    """The validation result as an HTML page (GE Data Docs; a plain table if GE cannot render it)."""
    if results is None or not getattr(results, "results", None):
        return _page(title, "<p>Nothing to validate: the run extracted no rows.</p>")
    try:
        from great_expectations.render.renderer import ValidationResultsPageRenderer
        from great_expectations.render.view import DefaultJinjaPageView

        document = ValidationResultsPageRenderer().render(results)
        page = DefaultJinjaPageView().render(document)
        if page and "<html" in page.lower():
            return page
    except Exception:  # the plain table below says the same
        pass
    return render_validation_table(results, title)


def render_validation_table(results: Any, title: str = "LeadBoxer validation") -> str:
    """A small self-contained HTML table of the expectations (the fallback page)."""
    rows = validation_rows(results)
    passed = sum(row["success"] for row in rows)
    body = [f"<p>{passed} of {len(rows)} expectations met.</p>",
            "<table border='1' cellpadding='4' cellspacing='0'>",
            "<tr><th>expectation</th><th>column</th><th>success</th><th>rows</th>"
            "<th>unexpected</th><th>unexpected %</th></tr>"]
    for row in rows:
        percent = row["unexpected_percent"]
        body.append("<tr>" + "".join(f"<td>{html.escape(str(value))}</td>" for value in (
            row["expectation"], row["column"], "yes" if row["success"] else "NO", row["element_count"],
            row["unexpected_count"], f"{percent:.2f}" if isinstance(percent, int | float) else percent)) + "</tr>")
    body.append("</table>")
    return _page(title, "\n".join(body))


def _page(title: str, body: str) -> str:
    safe = html.escape(title)
    return (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{safe}</title></head>\n"
            f"<body><h1>{safe}</h1>\n{body}\n</body></html>\n")
