"""Validation reports: the great-expectations result as one self-contained page, and the log summary."""

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


@pytest.fixture(scope="module")
def outcome():
    events = pd.DataFrame({
        "event_id": ["a", "a", "b", None], "email": ["x@y.io", "x@y.io", "not-an-email", None],
        "in_segment": [True, True, False, True],
        "event_time_ms": pd.array([1000, 1500, 5000, None], dtype="Int64"), "use_id": ["u1", "u1", "u2", "u3"]})
    return validate_events(events, 1000, 2000)


def test_the_page_says_what_was_validated_each_expectation_and_the_rows_set_aside(outcome):
    about = {"DAG": "leadboxer_pipedrive_activities", "Run": "manual__2026-11-20T06:00:00+00:00",
             "Rows": "LeadBoxer events of dataset ds, segment 14118"}
    page = reports.render_validation_html(outcome.results, title="LeadBoxer events <run 1>", about=about,
                                          rejected=outcome.rejected)
    assert page.startswith("<!DOCTYPE html>") and "LeadBoxer events &lt;run 1&gt;" in page
    for label, value in about.items():
        assert f"<dt>{label}</dt><dd>{value}</dd>" in page
    assert "0 of 7 expectations met: failing rows were set aside" in page
    assert page.count("<tr>") == 1 + 7 + 1 + len(outcome.rejected)
    assert "expect_column_values_to_be_unique" in page and "<td>✗</td>" in page
    assert "duplicate event id" in page and "<td>u2</td>" in page
    # Styled, and nothing fetched from elsewhere: it reads the same offline.
    assert "<style>" in page and "http" not in page and "__none__" not in page and "None</dd>" not in page


def test_no_rows_gives_a_page_saying_so():
    page = reports.render_validation_html(None, title="empty")
    assert "Nothing to validate" in page


def test_the_summary_is_readable(results):
    text = reports.format_validation_summary(results, "events")
    assert text.splitlines()[0] == "validation events: 0 of 7 expectations met (failing rows were set aside)"
    assert "FAIL expect_column_values_to_be_unique(event_id) - 2 of 4 rows unexpected" in text
    assert "nothing to validate" in reports.format_validation_summary(None, "events")
