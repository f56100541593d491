import pandas as pd
import pytest

from leadboxer_pipedrive.frames import events_frame, leads_frame
from leadboxer_pipedrive.validation import (
    REASON_DUPLICATE_EVENT,
    REASON_EMAIL_INVALID,
    REASON_EMAIL_MISSING,
    REASON_EVENT_ID_MISSING,
    REASON_NOT_IN_SEGMENT,
    REASON_OUTSIDE_WINDOW,
    REASON_TIME_MISSING,
    validate_events,
)

START, END = 1_795_150_800_000, 1_795_154_400_000  # 2026-11-20 [05:00, 06:00) UTC


@pytest.fixture(scope="module")
def outcome():
    leads = leads_frame([
        {"use_id": "ok", "email": " Jane@Acme.com ", "segments": [1]},
        {"use_id": "anon", "segments": [1]},
        {"use_id": "bad", "email": "not-an-email", "segments": [1]},
        {"use_id": "outsider", "email": "out@side.io", "segments": [2]},
    ], 1)
    inside = str(START + 60_000)
    events = [
        {"event_id": "e1", "_lead_id": "ok", "eventUnixTimestamp": inside},
        {"event_id": "e1", "_lead_id": "ok", "eventUnixTimestamp": inside},
        {"event_id": "e2", "_lead_id": "anon", "eventUnixTimestamp": inside},
        {"event_id": "e3", "_lead_id": "bad", "eventUnixTimestamp": inside},
        {"event_id": "e4", "_lead_id": "outsider", "eventUnixTimestamp": inside},
        {"event_id": "e5", "_lead_id": "ok", "eventUnixTimestamp": str(END)},
        {"event_id": "e6", "_lead_id": "ok", "eventUnixTimestamp": "yesterday"},
        {"_lead_id": "ok", "eventUnixTimestamp": inside},
        {"event_id": "e7", "_lead_id": "ok", "eventUnixTimestamp": str(START)},
    ]
    return validate_events(events_frame(events, leads, "ds"), START, END)


def test_valid_rows_are_the_well_formed_in_window_segment_events(outcome):
    assert outcome.valid["event_id"].tolist() == ["e1", "e7"]
    assert outcome.valid["email"].tolist() == ["jane@acme.com", "jane@acme.com"]


def test_every_failing_row_is_set_aside_with_its_reason(outcome):
    reasons = dict(zip(outcome.rejected["record_id"].fillna("<none>"), outcome.rejected["reason"]))
    assert reasons == {
        "e1": REASON_DUPLICATE_EVENT,
        "e2": REASON_EMAIL_MISSING,
        "e3": REASON_EMAIL_INVALID,
        "e4": REASON_NOT_IN_SEGMENT,
        "e5": REASON_OUTSIDE_WINDOW,
        "e6": REASON_TIME_MISSING,
        "<none>": REASON_EVENT_ID_MISSING,
    }


def test_nothing_is_lost(outcome):
    assert outcome.statistics["evaluated"] == len(outcome.valid) + len(outcome.rejected) == 9


@pytest.mark.parametrize("email", ["a@b.co", "first.last+tag@sub.example.org", "x_y@host-name.io"])
def test_plausible_emails_pass(email):
    leads = leads_frame([{"use_id": "l", "email": email, "segments": [1]}], 1)
    events = events_frame([{"event_id": "e", "_lead_id": "l", "eventUnixTimestamp": str(START)}], leads, "ds")
    assert len(validate_events(events, START, END).valid) == 1


@pytest.mark.parametrize("email", ["a@b", "a b@c.com", "@c.com", "a@@c.com", "a@c.com<script>", "a@.com"])
def test_malformed_emails_fail(email):
    leads = leads_frame([{"use_id": "l", "email": email, "segments": [1]}], 1)
    events = events_frame([{"event_id": "e", "_lead_id": "l", "eventUnixTimestamp": str(START)}], leads, "ds")
    result = validate_events(events, START, END)
    assert result.valid.empty and result.rejected["reason"].tolist() == [REASON_EMAIL_INVALID]


def test_an_empty_frame_validates_to_nothing():
    leads = leads_frame([], 1)
    result = validate_events(events_frame([], leads, "ds"), START, END)
    assert result.valid.empty and result.rejected.empty and isinstance(result.rejected, pd.DataFrame)


# -- leads ------------------------------------------------------------------------------------------
from leadboxer_pipedrive.validation import (  # noqa: E402
    REASON_DUPLICATE_LEAD,
    REASON_NO_EMAIL_FOR_PERSON,
    REASON_NO_ORGANIZATION,
    REASON_NOTHING_TO_LINK,
    validate_leads,
)

LEADS = [
    {"use_id": "full", "email": "j@acme.com", "organizationName": "Acme", "segments": [1]},
    {"use_id": "org-only", "organizationName": "Globex", "segments": [1]},
    {"use_id": "email-only", "email": "s@solo.io", "segments": [1]},
    {"use_id": "nothing", "segments": [1]},
    {"use_id": "bad-email", "email": "nope", "organizationName": "X", "segments": [1]},
    {"use_id": "outsider", "email": "o@x.io", "organizationName": "X", "segments": [2]},
]


def lead_reasons(link_to):
    frame = leads_frame(LEADS, 1)
    # a repeated lead row, as a glitchy page of the API could send it
    frame = pd.concat([frame, frame.iloc[[0]]], ignore_index=True)
    outcome = validate_leads(frame, link_to)
    return outcome, dict(zip(outcome.rejected["record_id"], outcome.rejected["reason"]))


@pytest.mark.parametrize("link_to, valid, expected", [
    ("organization", ["full", "org-only"],
     {"email-only": REASON_NO_ORGANIZATION, "nothing": REASON_NO_ORGANIZATION}),
    ("person", ["full", "email-only"],
     {"org-only": REASON_NO_EMAIL_FOR_PERSON, "nothing": REASON_NO_EMAIL_FOR_PERSON}),
    ("both", ["full", "org-only", "email-only"], {"nothing": REASON_NOTHING_TO_LINK}),
])
def test_leads_are_valid_when_they_can_be_linked_as_asked(link_to, valid, expected):
    outcome, reasons = lead_reasons(link_to)
    assert outcome.valid["use_id"].tolist() == valid
    assert reasons["bad-email"] == REASON_EMAIL_INVALID
    assert reasons["outsider"] == REASON_NOT_IN_SEGMENT
    assert reasons["full"] == REASON_DUPLICATE_LEAD
    for use_id, reason in expected.items():
        assert reasons[use_id] == reason
    assert len(outcome.valid) + len(outcome.rejected) == len(LEADS) + 1


def test_unknown_link_to_is_refused():
    with pytest.raises(ValueError, match="link_to"):
        validate_leads(leads_frame(LEADS, 1), "deal")
