"""Validation reports: great-expectations results rendered as Data Docs HTML, and the log summary."""

from __future__ import annotations

import pandas as pd
import pytest

from leadboxer_pipedrive import reports
from leadboxer_pipedrive.validation import validate_events


@pytest.fixture(scope="module")
def results():
    events = pd.DataFrame({
        "event_id": ["a", "a", "b", None], "email": ["x@y.io", "x@y.io", "not-an-email", None],
        "in_segment": [True, True, False, True],
        "event_time_ms": pd.array([1000, 1500, 5000, None], dtype="Int64"), "use_id": ["u1", "u1", "u2", "u3"]})
    return validate_events(events, 1000, 2000).results


def test_rows_list_every_expectation_with_its_unexpected_count(results):
    rows = {(r["expectation"], r["column"]): r for r in reports.validation_rows(results)}
    assert len(rows) == 7
    unique = rows[("expect_column_values_to_be_unique", "event_id")]
    assert unique["success"] is False and unique["unexpected_count"] == 2 and unique["element_count"] == 4
    assert rows[("expect_column_values_to_match_regex", "email")]["unexpected_count"] == 1


def test_the_html_is_great_expectations_data_docs(results):
    page = reports.render_validation_html(results, title="LeadBoxer events run 1")
    assert page.lstrip().lower().startswith("<!doctype html") or "<html" in page.lower()
    assert "Great Expectations" in page
    assert "leadboxer_events" in page
    for column in ("event_id", "email", "event_time_ms", "in_segment"):
        assert column in page


def test_a_renderer_failure_falls_back_to_a_plain_table(results, monkeypatch):
    import great_expectations.render.renderer as renderer

    class Broken:
        def render(self, _):
            raise RuntimeError("no renderer")

    monkeypatch.setattr(renderer, "ValidationResultsPageRenderer", Broken)
    page = reports.render_validation_html(results, title="Fallback <run>")
    assert "<table" in page and "Fallback &lt;run&gt;" in page
    assert page.count("<tr>") == 1 + 7
    assert "expect_column_values_to_be_unique" in page and "NO" in page


def test_no_rows_gives_a_page_saying_so():
    page = reports.render_validation_html(None, title="empty")
    assert "Nothing to validate" in page


def test_the_summary_is_readable(results):
    text = reports.format_validation_summary(results, "events")
    assert text.splitlines()[0] == "validation events: 0 of 7 expectations met (failing rows were set aside)"
    assert "FAIL expect_column_values_to_be_unique(event_id) - 2 of 4 rows unexpected" in text
    assert "nothing to validate" in reports.format_validation_summary(None, "events")
