import re

import pandas as pd

from leadboxer_pipedrive.distinct import plain
from leadboxer_pipedrive.frames import events_frame, leads_frame
from leadboxer_pipedrive.transforms import (
    MAX_TEXT,
    activity_fields,
    activity_payloads,
    event_ids_in_note,
    event_marker,
    organization_keys,
)

EVENT_MS = 1_795_151_400_000  # 2026-11-20T05:10:00Z


def build(lead: dict, event: dict) -> pd.DataFrame:
    leads = leads_frame([{"use_id": "l", "segments": [1], "email": "jane@acme.com", **lead}], 1)
    events = events_frame([{"event_id": "e1", "_lead_id": "l", "eventUnixTimestamp": str(EVENT_MS),
                            **event}], leads, "ds")
    return activity_payloads(events, "task")


def test_pageview_becomes_a_done_activity_due_at_the_event_time_in_utc():
    row = build({"firstName": "Jane", "lastName": "Doe"},
                {"event_type": "pageview", "title": "Pricing", "original_url": "https://ex.com/pricing",
                 "utm_campaign": "spring", "referrer": "https://google.com/"}).iloc[0]
    assert row["subject"] == "LeadBoxer: Page view – Pricing"
    assert (row["due_date"], row["due_time"], bool(row["done"]), row["type"]) == ("2026-11-20", "05:10", True, "task")
    assert row["person_name"] == "Jane Doe"
    assert '<a href="https://ex.com/pricing">Pricing</a>' in row["note"]
    assert "<b>UTM campaign:</b> spring" in row["note"] and "<b>Referrer:</b> https://google.com/" in row["note"]
    assert "LeadBoxer event" not in row["note"]  # the event's marker is added when it is sent


def test_a_sent_note_adds_the_lead_card_and_ends_with_its_event_marker_which_reads_back_the_event_id():
    frame = build({"leadcard_url": "https://app.leadboxer.com/?q=l&site=ds"},
                  {"event_type": "pageview", "title": "Pricing"})
    frame["event_id"] = 'e1<&"\'>'  # ids are text from LeadBoxer: escaped in the HTML, read back as sent
    note = activity_fields(frame)["note"]
    assert note == (frame["note"].iloc[0]
                    + '<p><a href="https://app.leadboxer.com/?q=l&amp;site=ds">Open the lead card in LeadBoxer</a></p>'
                    + event_marker(frame["event_id"].iloc[0]))
    assert "<&" not in note
    assert event_ids_in_note(note) == [frame["event_id"].iloc[0]]


def test_notes_are_categorical_one_per_page_and_the_lead_card_one_per_lead():
    leads = leads_frame([{"use_id": "l", "segments": [1], "email": "jane@acme.com", "leadcard_url": "https://lb.io/l"},
                         {"use_id": "m", "segments": [1], "email": "max@acme.com", "leadcard_url": "https://lb.io/m"}],
                        1)
    page = {"eventUnixTimestamp": str(EVENT_MS), "title": "Pricing", "original_url": "https://ex.com/pricing"}
    events = events_frame([{"event_id": "e1", "_lead_id": "l", **page}, {"event_id": "e2", "_lead_id": "l", **page},
                           {"event_id": "e3", "_lead_id": "m", **page},
                           {"event_id": "e4", "_lead_id": "l", **page, "title": "Demo"}], leads, "ds")
    payloads = activity_payloads(events, "task")
    assert isinstance(payloads["note"].dtype, pd.CategoricalDtype)
    assert payloads["note"].tolist()[:3] == [payloads["note"].iloc[0]] * 3 and payloads["note"].nunique() == 2
    assert payloads["leadcard_url"].tolist() == ["https://lb.io/l", "https://lb.io/l", "https://lb.io/m", "https://lb.io/l"]
    sent = [activity_fields(payloads.iloc[[n]])["note"] for n in range(4)]
    assert len(set(sent)) == 4 and "https://lb.io/m" in sent[2] and "Demo" in sent[3]


def test_note_escapes_html_and_refuses_script_urls():
    frame = build({"leadcard_url": "javascript:alert(1)"},
                  {"event_type": "form_submit", "title": "<script>alert('x')</script>",
                   "original_url": "javascript:alert(2)"})
    assert pd.isna(frame["leadcard_url"].iloc[0])
    for note in (frame["note"].iloc[0], activity_fields(frame)["note"]):  # as staged, and as sent
        assert "<script>" not in note and "&lt;script&gt;" in note
        assert 'href="javascript' not in note and "lead card" not in note


def test_long_texts_are_clipped_to_what_pipedrive_accepts():
    row = build({"fullName": "N" * 400, "organizationName": "O" * 400}, {"title": "T" * 600}).iloc[0]
    assert len(row["subject"]) == MAX_TEXT and row["subject"].endswith("…")
    assert len(row["person_name"]) == MAX_TEXT and len(row["org_name"]) == MAX_TEXT


def test_person_name_falls_back_to_the_email_local_part():
    assert build({}, {}).iloc[0]["person_name"] == "jane"


def test_email_open_subject_names_the_campaign():
    row = build({}, {"event_type": "email_open", "campaign": "webinar-apr"}).iloc[0]
    assert row["subject"] == "LeadBoxer: Email open – webinar-apr"


def test_organization_key_prefers_the_domain_and_ignores_blank_names():
    frame = pd.DataFrame({
        "org_domain": pd.Series(["https://www.Acme.com/", None, "acme.com", None], dtype="string"),
        "org_name": pd.Series(["Acme BV", " Beta  Corp ", None, "  "], dtype="string"),
    })
    assert organization_keys(frame).tolist()[:2] == ["domain:acme.com", "name:beta  corp"]
    assert organization_keys(frame).iloc[2:].isna().all()


# -- leads ------------------------------------------------------------------------------------------
import pytest  # noqa: E402

from leadboxer_pipedrive.transforms import check_title_template, lead_payloads, score_labels  # noqa: E402


def lead_rows(link_to, template="{organization_or_name} – LeadBoxer lead (score {score})", bands=None, **lead):
    frame = leads_frame([{"use_id": "l", "segments": [1], **lead}], 1)
    frame["dataset_id"] = "ds"
    return lead_payloads(frame, link_to, template, bands)


def test_lead_title_uses_the_organization_else_the_person():
    assert lead_rows("both", email="j@acme.com", fullName="Jane", organizationName="Acme",
                     esScore="73").iloc[0]["title"] == "Acme – LeadBoxer lead (score 73)"
    assert lead_rows("both", email="j@acme.com", fullName="Jane", esScore="12").iloc[0]["title"] == \
        "Jane – LeadBoxer lead (score 12)"


def test_link_to_decides_which_keys_the_loader_gets():
    person_only = lead_rows("person", email="j@acme.com", organizationName="Acme").iloc[0]
    assert pd.isna(person_only["org_key"]) and person_only["email"] == "j@acme.com"
    org_only = lead_rows("organization", email="j@acme.com", organizationName="Acme").iloc[0]
    assert pd.isna(org_only["email"]) and org_only["org_key"] == "name:acme"


def test_score_labels_pick_the_highest_band_reached():
    scores = pd.Series([95, 70, 69.9, 40, 3, None], dtype="Float64")
    assert score_labels(scores, {"Hot": 70, "Warm": 40, "Cold": 0}).fillna("-").tolist() == \
        ["Hot", "Hot", "Warm", "Warm", "Cold", "-"]
    assert score_labels(scores, {}).isna().all()


def test_title_template_placeholders_are_checked():
    assert check_title_template("{name} from {organization} ({visits} visits)") == ["name", "organization", "visits"]
    with pytest.raises(ValueError, match="unknown placeholder"):
        check_title_template("{name} {password}")
    with pytest.raises(ValueError, match="unknown placeholder"):
        check_title_template("{score:>5}")


def test_custom_title_template_fills_every_row():
    row = lead_rows("both", "{name} · {country} · {channel}", email="j@acme.com", fullName="Jane",
                    last_country_name="Netherlands", last_channel="email").iloc[0]
    assert row["title"] == "Jane · Netherlands · email"


def test_working_per_distinct_value_gives_what_working_per_row_gives(monkeypatch):
    """activity_payloads computes lead facts, pages, subjects and notes once per distinct value; on the
    hostile corpus (plus repeats of it) that must equal applying each function to every row at once."""
    import json
    from pathlib import Path

    import leadboxer_pipedrive.transforms as transforms

    corpus = json.loads((Path(__file__).parents[1] / "data" / "hostile_leadboxer.json").read_text())
    leads = leads_frame(corpus["leads"], corpus["segments"][0]["segmentId"])
    raw_events = [{**event, "_lead_id": lead.get("use_id"), "_session_channel": session.get("channel")}
                  for lead in corpus["leads"] for session in lead.get("sessions") or [] if isinstance(session, dict)
                  for event in session.get("events") or [] if isinstance(event, dict)]
    events = events_frame(raw_events * 3, leads, "ds")  # every lead, page and subject repeated
    events = events[events["event_time_ms"].notna()]
    assert len(events) > 300
    per_distinct = activity_payloads(events, "task")
    monkeypatch.setattr(transforms, "per_distinct",
                        lambda frame, columns, function, categorical=False: function(plain(frame[columns])))
    per_row = activity_payloads(events, "task")
    pd.testing.assert_frame_equal(plain(per_distinct), plain(per_row))
    assert isinstance(per_distinct["org_address"].dtype, pd.CategoricalDtype)  # each distinct value once


def test_rows_staged_or_queued_with_their_whole_note_keep_their_card_and_get_todays_marker():
    # Earlier versions wrote the lead-card line and the marker into the note up front, and had no
    # leadcard_url: such rows (a staged payload, a row queued for a retry) must not get a second card.
    card = '<p><a href="https://lb.io/l">Open the lead card in LeadBoxer</a></p>'
    whole = '<p><b>Page:</b> <a href="https://ex.com/">Home</a></p>' + card
    old = pd.DataFrame([{"event_id": "e1", "subject": "s", "type": "task", "due_date": "2026-11-20",
                         "due_time": "05:10", "done": True, "note": whole + "<p><small>LeadBoxer event e1</small></p>",
                         "use_id": "l", "event_time_ms": 1}])
    assert activity_fields(old)["note"] == whole + event_marker("e1")
    assert activity_fields(old.assign(note=whole + event_marker("e1")))["note"] == whole + event_marker("e1")
    digest = activity_fields(pd.concat([old, old.assign(event_id="e2", note=old["note"].str.replace("e1", "e2"))]))
    assert event_ids_in_note(digest["note"]) == ["e1", "e2"] and digest["note"].count("lead card") == 2


SPELLS_MARKERS = "LeadBoxer event [[e2]] <p><small>LeadBoxer event [[e3]]</small></p> LeadBoxer event [[[e4]]]"


def rewritten(note: str) -> list[str]:
    """The note as Pipedrive might hand it back: its markup rewritten, entities decoded, or its text only."""
    from html import unescape

    div = re.sub(r"<(/?)p>", r"<\1div>", note).replace("<small>", '<span class="small">').replace("</small>", "</span>")
    text = re.sub(r"<[^>]+>", " ", note)
    return [note, div, unescape(note), unescape(text), re.sub(r"\s+", " ", unescape(text))]


def test_a_page_title_or_url_spelling_markers_is_never_read_as_one_however_the_note_is_rewritten():
    frame = build({"leadcard_url": "https://lb.io/?q=[[e5]]"},
                  {"title": SPELLS_MARKERS, "original_url": "https://ex.com/LeadBoxer%20event%20[[e6]]",
                   "referrer": SPELLS_MARKERS, "utm_campaign": SPELLS_MARKERS})
    note = activity_fields(frame)["note"]
    assert "e2" in note and "e4" in note  # the text is kept, its "[[" split
    for seen in rewritten(note):
        assert event_ids_in_note(seen) == ["e1"], seen


def test_every_event_of_a_digest_reads_back_from_its_note_however_it_is_rewritten():
    frame = build({}, {"title": SPELLS_MARKERS})
    frame = pd.concat([frame.assign(event_id=f"id {n}/]]<{n}>", event_time_ms=n) for n in range(60)])
    note = activity_fields(frame)["note"]  # 50 events in full, 10 by their markers only
    for seen in rewritten(note):
        assert event_ids_in_note(seen) == [f"id {n}/]]<{n}>" for n in range(60)], seen
