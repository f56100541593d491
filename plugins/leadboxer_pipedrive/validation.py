"""Validation of extracted frames with great-expectations. Pure: no Airflow imports.

Every row either passes every expectation or is set aside with the reasons it failed; nothing is
dropped silently. great-expectations validates whole frames (vectorised), never row by row, and its
``COMPLETE`` result format names the failing rows by index. Events are validated in two batches: the
event-level expectations over every event, the lead-level ones (email, segment) over each distinct
(email, in_segment) pair, whose outcome every event carrying it takes.

Rules (the normalisation that precedes them is described in ``frames``):

* **Email well formed** (``EMAIL_REGEX``, applied to the *normalised* address): at most 254 characters,
  a local part of at most 64; the local part a dot-atom (printable characters except whitespace,
  controls and ``"(),:;<>@[]`` and backslash; no leading, trailing or doubled dot; apostrophes and ``+`` are fine);
  quoted local parts (``"x"@y.io``) are refused. The domain is two or more labels of letters, digits
  and inner hyphens (Unicode letters allowed: IDN domains are accepted as Unicode, ``xn--`` punycode
  too), each at most 63 characters, ending in a top-level domain of 2+ letters; no trailing dot, no
  IP literal, no ``localhost``.
* **Event time** inside the data interval ``[start, end)``: an event at ``end`` belongs to the next
  interval. Times that ``frames.epoch_ms`` cannot read (garbage, zero, negative, implausible)
  are "missing or unparseable".
* **Uniqueness** (event id, lead id): of the copies of an id, the first copy that passes every other
  expectation is kept and every later copy is a duplicate; a copy that fails something else is
  rejected for that only (so an invalid first copy never hides a valid later one).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from leadboxer_pipedrive.distinct import distinct_codes

# A deliberately plain check of the normalised address (see the module docstring). ``[^\W_]`` is a
# Unicode letter or digit; ``\Z`` (not ``$``) so a trailing newline cannot slip through.
_ATEXT = r"[^\s\x00-\x1f\x7f-\x9f@<>\"(),;:\[\]\\.]"
_LOCAL = _ATEXT + r"+(?:\." + _ATEXT + r"+)*"
_LABEL = r"[^\W_](?:(?:[^\W_]|-){0,61}[^\W_])?"
_TLD = r"(?:[^\W\d_]{2,63}|xn--[a-z0-9-]{1,59})"
EMAIL_REGEX = r"^(?=[^@]{1,64}@)(?=.{3,254}\Z)" + _LOCAL + "@(?:" + _LABEL + r"\.)+" + _TLD + r"\Z"

REASON_EMAIL_MISSING = "email missing: lead is not identified by email"
REASON_EMAIL_INVALID = "email malformed"
REASON_NOT_IN_SEGMENT = "lead not in the segment"
REASON_EVENT_ID_MISSING = "event id missing"
REASON_DUPLICATE_EVENT = "duplicate event id (an earlier row with this id is kept)"
REASON_TIME_MISSING = "event time missing or unparseable"
REASON_OUTSIDE_WINDOW = "event time outside the data interval"
REASON_LEAD_ID_MISSING = "lead id (use_id) missing"
REASON_DUPLICATE_LEAD = "duplicate lead id (an earlier row with this id is kept)"
REASON_NO_EMAIL_FOR_PERSON = "email missing: cannot link the lead to a person"
REASON_NO_ORGANIZATION = "organization unknown: cannot link the lead to an organization"
REASON_NOTHING_TO_LINK = "neither email nor organization known: nothing to link the lead to"


@dataclass
class ValidationOutcome:
    valid: pd.DataFrame
    rejected: pd.DataFrame  # columns: record_id (event or lead id), use_id, reason
    statistics: dict[str, Any] = field(default_factory=dict)
    results: Any = None  # the great-expectations suite result, kept for reports


@lru_cache(maxsize=1)
def _context():
    # Quiet and offline: no usage statistics, no progress bars, and none of great-expectations' own
    # informational chatter (200-odd "Skipping registering function ..." lines per import) in task logs.
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(store_backend_defaults=InMemoryStoreBackendDefaults(),
                               analytics_enabled=False, progress_bars=ProgressBarsConfig(globally=False))
    context = gx.get_context(mode="ephemeral", project_config=config)
    batch_definition = (context.data_sources.add_pandas("leadboxer")
                        .add_dataframe_asset("frame").add_batch_definition_whole_dataframe("whole"))
    return gx, context, batch_definition


def event_expectations(window_start_ms: int, window_end_ms: int) -> list[tuple[Any, str]]:
    """The expectations every event must meet, each with the reason a failing row gets."""
    gx, _, _ = _context()
    E = gx.expectations
    return [
        (E.ExpectColumnValuesToNotBeNull(column="event_id"), REASON_EVENT_ID_MISSING),
        (E.ExpectColumnValuesToBeUnique(column="event_id"), REASON_DUPLICATE_EVENT),
        (E.ExpectColumnValuesToNotBeNull(column="email"), REASON_EMAIL_MISSING),
        (E.ExpectColumnValuesToMatchRegex(column="email", regex=EMAIL_REGEX), REASON_EMAIL_INVALID),
        (E.ExpectColumnValuesToBeInSet(column="in_segment", value_set=[True]), REASON_NOT_IN_SEGMENT),
        (E.ExpectColumnValuesToNotBeNull(column="event_time_ms"), REASON_TIME_MISSING),
        (E.ExpectColumnValuesToBeBetween(column="event_time_ms", min_value=window_start_ms,
                                         max_value=window_end_ms - 1), REASON_OUTSIDE_WINDOW),
    ]


# Expectations on what an event takes from its lead: checked once per distinct value (see validate_events).
LEAD_LEVEL_COLUMNS = ("email", "in_segment")


def validate_events(events: pd.DataFrame, window_start_ms: int, window_end_ms: int,
                    suite_name: str = "leadboxer_events") -> ValidationOutcome:
    """Split events into valid rows and rejected rows (with every reason each failed).

    Two whole-frame batches: the event-level expectations (id, time) read every event; the lead-level
    ones (email, segment) read each distinct (email, in_segment) pair once, as a lead's events all
    carry the same pair, and every event takes its pair's outcome. The rows set aside and their
    reasons are the same as validating every event; the report counts lead-level expectations in
    distinct pairs."""
    frame = events.reset_index(drop=True)
    expectations = event_expectations(window_start_ms, window_end_ms) if len(frame) else []
    lead_level = [(e, r) for e, r in expectations if e.column in LEAD_LEVEL_COLUMNS]
    event_level = [(e, r) for e, r in expectations if e.column not in LEAD_LEVEL_COLUMNS]
    pairs = frame[list(LEAD_LEVEL_COLUMNS)]
    pair_of_row, first_rows = distinct_codes(pairs, list(LEAD_LEVEL_COLUMNS))
    distinct = pairs.iloc[first_rows].reset_index(drop=True)
    # GE compares plain floats (not nullable Int64), and its regular expression reads Python strings.
    batches = [
        (frame[["event_id"]].assign(event_time_ms=frame["event_time_ms"].astype("float64")), event_level, None),
        (distinct.assign(email=distinct["email"].astype("object")), lead_level, pair_of_row),
    ]
    return _validate(frame, batches, [reason for _, reason in expectations], id_column="event_id",
                     suite_name=suite_name)


LINK_TO_OPTIONS = ("organization", "person", "both")


def lead_expectations(link_to: str) -> list[tuple[Any, str]]:
    """What a lead must meet to become a Pipedrive lead linked as ``link_to`` says."""
    if link_to not in LINK_TO_OPTIONS:
        raise ValueError(f"link_to must be one of {LINK_TO_OPTIONS}, not {link_to!r}")
    gx, _, _ = _context()
    E = gx.expectations
    expectations = [
        (E.ExpectColumnValuesToNotBeNull(column="use_id"), REASON_LEAD_ID_MISSING),
        (E.ExpectColumnValuesToBeUnique(column="use_id"), REASON_DUPLICATE_LEAD),
        (E.ExpectColumnValuesToBeInSet(column="in_segment", value_set=[True]), REASON_NOT_IN_SEGMENT),
        (E.ExpectColumnValuesToMatchRegex(column="email", regex=EMAIL_REGEX), REASON_EMAIL_INVALID),
    ]
    if link_to == "person":
        expectations.append((E.ExpectColumnValuesToNotBeNull(column="email"), REASON_NO_EMAIL_FOR_PERSON))
    elif link_to == "organization":
        expectations.append((E.ExpectColumnValuesToNotBeNull(column="org_name"), REASON_NO_ORGANIZATION))
    else:
        expectations.append((E.ExpectColumnValuesToBeInSet(column="linkable", value_set=[True]),
                             REASON_NOTHING_TO_LINK))
    return expectations


def validate_leads(leads: pd.DataFrame, link_to: str, suite_name: str = "leadboxer_leads") -> ValidationOutcome:
    """Split leads into those that can become Pipedrive leads and those set aside, with reasons."""
    frame = leads.reset_index(drop=True)
    checked = frame.assign(
        use_id=frame["use_id"].astype("object"), email=frame["email"].astype("object"),
        org_name=frame["org_name"].astype("object"),
        linkable=(frame["email"].notna() | frame["org_name"].notna()).astype(bool))
    expectations = lead_expectations(link_to) if len(frame) else []
    return _validate(frame, [(checked, expectations, None)], [reason for _, reason in expectations],
                     id_column="use_id", suite_name=suite_name)


# A batch: (checked, expectations, row_of); see _validate.
_Batch = tuple[pd.DataFrame, list[tuple[Any, str]], np.ndarray | None]
_UNIQUE = "expect_column_values_to_be_unique"


def _validate(frame: pd.DataFrame, batches: list[_Batch], reason_order: list[str], *, id_column: str,
              suite_name: str) -> ValidationOutcome:
    """Run each batch's expectations over its frame (GE-friendly dtypes, whole frame at once) and set
    aside the rows of ``frame`` that fail any. A batch is ``(checked, expectations, row_of)``:
    ``row_of[i]`` is the row of ``checked`` that row ``i`` of ``frame`` takes its outcome from (None:
    the same row). Reasons are listed in ``reason_order``."""
    if frame.empty:
        return ValidationOutcome(frame, _rejected_frame([], [], [], id_column), {"evaluated": 0})
    suite_results = []
    failures: list[tuple[str, np.ndarray]] = []  # (reason, failing rows of frame)
    duplicates: list[tuple[str, np.ndarray]] = []  # uniqueness: decided once every other reason is known
    for checked, expectations, row_of in batches:
        if not expectations:
            continue
        results, reasons = _run_suite(checked, expectations, suite_name)
        suite_results.append(results)
        for expectation_type, reason, mask in _failing_rows(results, reasons, len(checked), row_of):
            if expectation_type == _UNIQUE:
                duplicates.append((reason, mask))
            else:
                failures.append((reason, mask))
    failing_otherwise = _union([mask for _, mask in failures], len(frame))
    failures.extend(_later_copies(frame[id_column], duplicates, failing_otherwise))
    failures.sort(key=lambda failure: reason_order.index(failure[0]))
    return _outcome(frame, failures, id_column, suite_results)


def _run_suite(checked: pd.DataFrame, expectations: list[tuple[Any, str]], suite_name: str
               ) -> tuple[Any, list[tuple[str, str, str]]]:
    """great-expectations' COMPLETE result of the expectations over ``checked``, and the (type, column,
    reason) of each expectation."""
    gx, _, batch_definition = _context()
    from great_expectations.validator.v1_validator import Validator

    suite = gx.ExpectationSuite(name=suite_name)
    reasons_by_expectation = []
    for expectation, reason in expectations:
        suite.add_expectation(expectation)
        reasons_by_expectation.append((expectation.expectation_type, expectation.column, reason))
    # GE hashes and filters the whole batch frame: hand it only the columns the expectations read.
    columns = list(dict.fromkeys(column for _, column, _ in reasons_by_expectation))
    # The validator great-expectations' own ValidationDefinition runs: it reads (and fingerprints) the
    # batch once, where get_batch().validate() reads it twice.
    results = Validator(batch_definition=batch_definition, batch_parameters={"dataframe": checked[columns]},
                        result_format={"result_format": "COMPLETE"}).validate_expectation_suite(suite)
    return results, reasons_by_expectation


def _failing_rows(results: Any, reasons_by_expectation: list[tuple[str, str, str]], size: int,
                  row_of: np.ndarray | None) -> Iterator[tuple[str, str, np.ndarray]]:
    """(type, reason, failing rows of ``frame``) of each failed expectation. Failing rows as boolean masks,
    one per reason (vectorised: no per-row Python, whatever the number of failing rows)."""
    positions = pd.RangeIndex(size)
    for result in results.results:
        if result.success:
            continue
        config = result.expectation_config
        reason = next(r for t, c, r in reasons_by_expectation
                      if t == config.type and c == config.kwargs.get("column"))
        failing = result.result.get("unexpected_index_list")
        if failing is None:
            raise RuntimeError(f"great-expectations gave no failing rows for {config.type}")
        mask = np.zeros(size, dtype=bool)
        mask[positions.get_indexer(pd.Index(failing))] = True
        yield config.type, reason, mask if row_of is None else mask[row_of]


def _later_copies(ids: pd.Series, duplicates: list[tuple[str, np.ndarray]], failing_otherwise: np.ndarray
                  ) -> list[tuple[str, np.ndarray]]:
    """Every copy fails uniqueness. Keep the first copy that passes everything else; later copies are
    duplicates. Copies failing something else are rejected for that alone."""
    copies = []
    for reason, mask in duplicates:
        clean = mask & ~failing_otherwise
        later = ids[clean].duplicated(keep="first").to_numpy()
        copy = np.zeros(len(ids), dtype=bool)
        copy[np.flatnonzero(clean)[later]] = True
        copies.append((reason, copy))
    return copies


def _union(masks: list[np.ndarray], size: int) -> np.ndarray:
    union = np.zeros(size, dtype=bool)
    for mask in masks:
        union |= mask
    return union


def _outcome(frame: pd.DataFrame, failures: list[tuple[str, np.ndarray]], id_column: str,
             suite_results: list[Any]) -> ValidationOutcome:
    """The valid rows, the rejected ones with their reasons (in the order of ``failures``), statistics."""
    is_rejected = _union([mask for _, mask in failures], len(frame))
    bad = frame[is_rejected]
    reasons = pd.Series("", index=bad.index, dtype="object")
    for reason, mask in failures:
        hit = mask[is_rejected]
        if hit.any():
            reasons[hit] = (reasons[hit] + "; " + reason).to_numpy()
    valid = frame[~is_rejected].reset_index(drop=True)
    rejected = _rejected_frame(bad[id_column].tolist(), bad["use_id"].tolist(),
                               reasons.str.slice(2).tolist(), id_column)
    counts = {reason: int(mask.sum()) for reason, mask in failures if mask.any()}
    statistics = {"evaluated": len(frame), "valid": len(valid), "rejected": len(rejected),
                  "by_reason": dict(sorted(counts.items(), key=lambda item: -item[1]))}
    return ValidationOutcome(valid, rejected, statistics, _one_result(suite_results))


def _one_result(suite_results: list[Any]) -> Any:
    """The batches' suite results as one (what the reports show)."""
    if not suite_results:
        return None
    combined = suite_results[0]
    for other in suite_results[1:]:
        combined.results.extend(other.results)
        combined.success = combined.success and other.success
    evaluated = len(combined.results)
    met = sum(bool(result.success) for result in combined.results)
    combined.statistics.update(evaluated_expectations=evaluated, successful_expectations=met,
                               unsuccessful_expectations=evaluated - met,
                               success_percent=100.0 * met / evaluated if evaluated else None)
    return combined


def reject_leads_without_id(leads: pd.DataFrame) -> pd.DataFrame:
    """Rejected rows (``ValidationOutcome.rejected``'s columns) for the activity sync's leads without an
    id (``frames.leads_without_id``)."""
    from leadboxer_pipedrive.frames import leads_without_id

    count = len(leads_without_id(leads))
    return _rejected_frame([None] * count, [None] * count, [REASON_LEAD_ID_MISSING] * count, "use_id")


def _rejected_frame(record_ids: list, use_ids: list, reasons: list, id_column: str) -> pd.DataFrame:
    """``record_id`` (the event id or lead id), ``use_id`` and ``reason`` of each row set aside."""
    return pd.DataFrame({"record_id": pd.Series(record_ids, dtype="string"),
                         "use_id": pd.Series(use_ids, dtype="string"),
                         "reason": pd.Series(reasons, dtype="string")})
