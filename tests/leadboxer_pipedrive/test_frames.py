import pandas as pd

from leadboxer_pipedrive.frames import (
    EVENT_ROW_COLUMNS,
    EventRows,
    email_column,
    epoch_ms,
    epoch_ms_column,
    event_rows,
    events_frame,
    leads_frame,
    raw_events,
    text_column,
)


def test_epoch_ms_reads_every_timestamp_spelling():
    values = ["1783024863769", 1783024863, 1783024863769.0, "2026-11-20T05:10:00Z",
              None, "garbage", -5, {"a": 1}, "  "]
    parsed = epoch_ms_column(values).tolist()
    assert parsed[:4] == [1783024863769, 1783024863000, 1783024863769, 1795151400000]
    assert all(pd.isna(v) for v in parsed[4:])


def test_epoch_ms_rules_value_by_value():
    cases = [
        ("1783024863769", 1783024863769), (1783024863, 1783024863000), (1783024863769, 1783024863769),
        ("0001783024863769", 1783024863769), (1783024863769.0, 1783024863769), ("1783024863", 1783024863000),
        ("2026-11-20T05:10:00Z", 1795151400000), (" 1783024863769 ", 1783024863769), ("١٧٨٣٠٢٤٨٦٣٧٦٩", None),
        ("²", None), (True, None), (False, None), (None, None), ("garbage", None), (-5, None), (0, None),
        ("0", None), (10**30, None), ("99999999999999999999", None), (4_102_444_800_000, None),
        (4_102_444_799_999, 4_102_444_799_999), (946_684_800_000, 946_684_800_000), (946_684_799_999, None),
        ("  ", None), (1783024863.5, 1783024863500), ("1.783024863769e12", 1783024863769),
        ("+1783024863769", 1783024863769), ("inf", None), (float("nan"), None), (float("inf"), None),
        ("2026-11-20", 1795132800000), ("2026-11-20T05:10:00+05:30", 1795131600000),
        ("2026-11-20T05:10:00.123456789Z", 1795151400123), ("1795150800000\u200b", 1795150800000),
        ("1_795_150_800_000", None), (b"1795150800000", 1795150800000), (1795150801000.5, 1795150801000),
        ("2026-11-20T25:10:00Z", None), ("tomorrow", None), ("now", None), ("today", None), ({"a": 1}, None),
        ([1], None), ("a\ud800", None),
    ]
    assert [(value, epoch_ms(value)) for value, _ in cases] == cases
    assert epoch_ms_column([value for value, _ in cases]).tolist() == [
        pd.NA if expected is None else expected for _, expected in cases]


def test_a_column_of_text_reads_as_a_column_of_mixed_kinds():
    """A column of text and missing values is cleaned per distinct value in one pass; other kinds of
    values (numbers, booleans, objects) are told apart by kind too. Both must read every value alike."""
    texts = ["  Jane ", "Zoe\u0301", "\u00a0x\u200b", "", "   ", None, float("nan"), "a\tb", "ÅNGSTRÖM", "\ufeffid-1"]
    fast = text_column(pd.Series(texts, dtype=object))
    mixed = text_column(pd.Series([*texts, 7], dtype=object))
    assert mixed.iloc[-1] == "7"
    pd.testing.assert_series_equal(fast, mixed.iloc[:-1])
    assert fast.tolist()[:3] == ["Jane", "Zoé", "x"] and fast.iloc[3:7].isna().all()
    # True == 1 in Python: each still reads as its own kind.
    assert text_column([1, True, 1.0, False, 0, {"a": 1}, [1], "1"]).tolist() == [
        "1", "True", "1", "False", "0", pd.NA, pd.NA, "1"]
    digits = ["1783024863769", "1783024863", None, "0", "4102444800000", "946684800000", "999999999999999", "0001"]
    pd.testing.assert_series_equal(epoch_ms_column(digits), epoch_ms_column([*digits, 7.5]).iloc[:-1])


def test_text_rules():
    values = [" Jane ", 7.0, 7.5, 1e18, True, {"a": 1}, [1], b"bytes\xff", "a\ud800", "\ud83d\ude00", "x\u202ey",
              "\u00ad", "KELVIN\u212a"]
    assert text_column(values).tolist() == ["Jane", "7", "7.5", "1e+18", "True", pd.NA, pd.NA, "bytes\ufffd",
                                            "a\ufffd", "😀", "x\u202ey", pd.NA, "KELVINK"]


def test_emails_are_trimmed_folded_and_lowercased():
    assert email_column(["  Jane.Doe@ACME.com ", "", None]).tolist() == ["jane.doe@acme.com", pd.NA, pd.NA]
    odd = ["Ｊａｎｅ＠ｅｘａｍｐｌｅ．ｃｏｍ", "Ja\u200bne@x.io", "a\u00a0@x.de", "ß@x.de", "jörg@bücher.de", True, 7.0,
           "a\ud800@x.io", {"a": 1}]
    assert email_column(odd).tolist() == ["jane@example.com", "jane@x.io", "a @x.de", "ß@x.de", "jörg@bücher.de",
                                          "true", "7", "a\ufffd@x.io", pd.NA]


def test_leads_frame_marks_segment_membership_and_keeps_every_row_for_validation():
    leads = [
        {"use_id": "a", "email": "A@x.io", "segments": [14118, 2]},
        {"use_id": "b", "segments": "3,14118"},
        {"use_id": "c", "segments": [1]},
        {"use_id": "a", "email": "other@x.io", "segments": [14118]},
        {"email": "no-id@x.io"},
    ]
    frame = leads_frame(leads, 14118)
    assert frame["use_id"].fillna("-").tolist() == ["a", "b", "c", "a", "-"]
    assert frame["in_segment"].tolist() == [True, True, False, True, False]
    assert frame.loc[0, "email"] == "a@x.io"
    more = [{"use_id": f"l{n}", "email": f" L{n}@X.io ", "segments": [1, n] if n % 2 else "2,3"} for n in range(7)]
    more[3] = "not an object"
    assert leads_frame(more, 1)["in_segment"].tolist() == [False, True, False, False, False, True, False]


# Leads as LeadBoxer sends them (text as text, visits, lastEvent and segment ids as numbers), and leads
# with values of other kinds.
PLAIN_LEADS = [{"use_id": f" l{n} ", "email": f" Ann.{n}@ACME.io ", "firstName": "Zoe\u0301", "lastName": "  ",
                "organizationName": "Acme BV", "esScore": "63", "total_number_visits": n,
                "lastEvent": 1_795_150_800_000 + n,
                "eventEsTimestamp": str(1_795_150_900_000 + n) if n % 3 else None, "segments": [14118, n, None],
                "leadcard_url": "https://app.leadboxer.com?q=1&site=x", "type": {"name": "user"}, "extra": [1, {}]}
               for n in range(6)]
PLAIN_LEADS[4] = {"use_id": "l4"}  # fields left out: missing
PLAIN_LEADS[5].pop("segments")
ODD_LEADS = [{"use_id": 42}, {"use_id": "l", "esScore": 63}, {"use_id": "l", "segments": "14118,2"},
             {"use_id": "l", "segments": ["14118"]}, {"use_id": "l", "phoneNumber": 31201234567},
             {"use_id": "l", "total_number_visits": 4.5}, {"use_id": "l", "firstName": {"an": "object"}},
             "not an object", {"use_id": "l", "title": "\ud800"}, {"use_id": 42.0},
             {"use_id": "l", "segments": [" 14118 ", True, 14118.0, {"x": 1}, "garbage"]}]


def test_leads_of_every_kind_of_value_are_framed():
    framed = leads_frame(PLAIN_LEADS, 14118)
    assert framed["segment_ids"].tolist()[:2] == [("14118", "0"), ("14118", "1")]
    assert framed["in_segment"].tolist() == [True] * 4 + [False] * 2
    assert framed.loc[2, ["use_id", "email", "first_name", "last_name", "visits"]].tolist() == [
        "l2", "ann.2@acme.io", "Zoé", pd.NA, "2"]
    assert framed.loc[4].drop(["use_id", "segment_ids", "in_segment"]).isna().all()
    odd = leads_frame(ODD_LEADS, 14118)
    assert odd["use_id"].tolist() == ["42", "l", "l", "l", "l", "l", "l", pd.NA, "l", "42", "l"]
    assert odd.loc[1, "lead_score"] == "63" and odd.loc[4, "phone"] == "31201234567"
    assert odd.loc[5, "visits"] == "4.5" and pd.isna(odd.loc[6, "first_name"]) and odd.loc[8, "job_title"] == "\ufffd"
    assert odd["in_segment"].tolist() == [False, False, True, True] + [False] * 6 + [True]
    assert odd.loc[2, "segment_ids"] == ("14118", "2") and odd.loc[10, "segment_ids"] == ("14118", "14118", "garbage")
    assert odd.loc[7].drop(["segment_ids", "in_segment"]).isna().all()


def test_events_frame_joins_lead_facts_by_the_lead_it_was_fetched_for():
    leads = leads_frame([{"use_id": "lead-1", "email": "j@acme.com", "organizationName": "Acme",
                          "segments": [7]}], 7)
    events = [{"event_id": "e1", "use_id": "stale-id", "_lead_id": "lead-1", "eventUnixTimestamp": "1000000000000",
               "title": "Pricing", "extra_field": {"nested": True}},
              {"event_id": "e2", "use_id": "unknown", "eventUnixTimestamp": "soon"}]
    frame = events_frame(events, leads, "ds")
    assert frame.loc[0, "email"] == "j@acme.com"
    assert frame.loc[0, "org_name"] == "Acme"
    assert bool(frame.loc[0, "in_segment"]) is True
    assert pd.isna(frame.loc[1, "email"]) and bool(frame.loc[1, "in_segment"]) is False
    assert pd.isna(frame.loc[1, "event_time_ms"])
    assert (frame["dataset_id"] == "ds").all()


def test_frames_of_nothing_are_empty_with_all_columns():
    leads = leads_frame([], 1)
    events = events_frame([], leads, "ds")
    assert events.empty and "email" in events.columns and "event_time_ms" in events.columns
    assert EventRows().frame().columns.tolist() == EVENT_ROW_COLUMNS


def test_events_framed_batch_by_batch_equal_events_framed_at_once():
    leads = leads_frame([{"use_id": "l1", "email": "a@x.io", "segments": [1]},
                         {"use_id": "l2", "email": "b@x.io", "segments": [2]}], 1)
    records = [{"event_id": f"e{n}", "eventUnixTimestamp": str(1_783_024_863_769 + n), "title": f" Page {n % 3} ",
                "use_id": "own-id", "utm_source": 7 if n == 4 else None} for n in range(11)]
    records[5] = "not an object"
    collected = EventRows(batch_rows=3)
    for start in range(0, 11, 2):  # sessions that do not line up with batches
        collected.add(raw_events(records[start:start + 2]), lead_id="l1" if start < 6 else None, channel="email")
    assert len(collected) == 11
    batched = events_frame(collected.frame(), leads, "ds")
    # A record that is not an object is framed as an empty one (a row without an id) of its session.
    at_once = events_frame([{**(r if isinstance(r, dict) else {}), "_session_channel": "email",
                             **({"_lead_id": "l1"} if n < 6 else {})} for n, r in enumerate(records)], leads, "ds")
    pd.testing.assert_frame_equal(batched, at_once)
    assert batched["use_id"].tolist() == ["l1"] * 6 + ["own-id"] * 5  # fetched for, else its own use_id
    assert pd.isna(batched.loc[5, "event_id"]) and batched.loc[4, "utm_source"] == "7"
    assert batched["in_segment"].tolist() == [True] * 6 + [False] * 5


# Events as LeadBoxer sends them, and events with values of other kinds.
PLAIN_EVENTS = [{"event_id": f"e{n}", "use_id": "own", "eventUnixTimestamp": str(1_795_150_800_000 + n * 600_000),
                 "title": f" Pagé {n} \u200b", "original_url": "https://x.io/?a=1&b=\u00e9", "campaign": None,
                 "properties": {"nested": [1, {"deep": None}]}} for n in range(8)]
ODD_EVENTS = [{"event_id": 42}, {"event_id": "e", "title": 7.0}, {"event_id": "e", "title": True},
              {"event_id": "e", "title": {"an": "object"}}, {"event_id": "e", "title": ["a list"]},
              "not an object", 7, None, {"event_id": "e", "title": "a\ud800"}, {"event_id": " e \u200b"}]


def test_events_of_every_kind_of_value_are_framed():
    frame = event_rows([*PLAIN_EVENTS[:2], *ODD_EVENTS], ["l"] * 12, ["email"] * 11 + [None])
    assert frame["title"].tolist() == ["Pagé 0", "Pagé 1", pd.NA, "7", "True", pd.NA, pd.NA, pd.NA, pd.NA, pd.NA,
                                       "a\ufffd", pd.NA]
    assert frame["event_id"].tolist() == ["e0", "e1", "42", "e", "e", "e", "e", pd.NA, pd.NA, pd.NA, "e", "e"]
    assert frame["url"].tolist()[:2] == ["https://x.io/?a=1&b=\u00e9"] * 2 and frame["url"].isna().sum() == 10
    assert frame["event_time_ms"].tolist()[:2] == [1_795_150_800_000, 1_795_151_400_000]
    assert frame["use_id"].tolist() == ["l"] * 12 and frame["session_channel"].isna().tolist() == [False] * 11 + [True]
    # Repeated values are categorical: one category per cleaned value.
    assert list(frame["title"].cat.categories) == ["Pagé 0", "Pagé 1", "7", "True", "a\ufffd"]


def test_events_are_kept_inside_the_window_or_when_their_time_cannot_be_read():
    start, end = 1_795_150_800_000, 1_795_154_400_000
    times = [str(start), str(end - 1), str(end), str(start - 1), "1795150800", "garbage", None, "0" + str(start)[1:],
             "2026-11-20T05:30:00Z", 10**30]
    events = [{"event_id": f"e{n}", "eventUnixTimestamp": t} for n, t in enumerate(times)]
    kept = raw_events([*events, "not an object"], (start, end))
    # e7: 0795150800000 ms is 1995, implausible, unreadable; what is not an object has no time either
    assert kept.values["event_id"] == ["e0", "e1", "e4", "e5", "e6", "e7", "e8", "e9", None]
    assert kept.times_ms == [start, end - 1, start, None, None, None, 1_795_152_600_000, None, None]
    collected = EventRows()
    collected.add(kept, "l", "c")
    inside = [*(events[n] for n in (0, 1, 4, 5, 6, 7, 8, 9)), "not an object"]
    pd.testing.assert_frame_equal(collected.frame(), event_rows(inside, ["l"] * 9, ["c"] * 9))


def test_batches_frame_as_one_in_their_order_with_one_category_per_cleaned_value():
    events = [{**event, "event_id": f"e{n}", "title": [" Pagé \u200b", "Pagé", "Home"][n % 3],
               "session_id": f"s{n // 4}"} for n, event in enumerate(PLAIN_EVENTS * 2)]
    collected = EventRows(batch_rows=2)
    collected.add(raw_events(events[:3]), "l1", "email")
    collected.add(raw_events(events[3:5]), "l1", None)
    collected.add(raw_events([*events[5:7], ODD_EVENTS[1]]), "l2", "paid")
    collected.add(raw_events(events[7:9]), "l2", "paid")
    collected.add(raw_events(events[9:]), "l3", "email")
    framed = collected.frame()
    records = [*events[:7], ODD_EVENTS[1], *events[7:]]
    expected = event_rows(records, ["l1"] * 5 + ["l2"] * 5 + ["l3"] * 7,
                          ["email"] * 3 + [None] * 2 + ["paid"] * 5 + ["email"] * 7)
    pd.testing.assert_frame_equal(framed, expected)
    # One category per cleaned value, whichever batches held it and however it was spelled there.
    assert list(framed["title"].cat.categories) == ["Pagé", "Home", "7"]
    assert framed["session_channel"].isna().tolist() == [False] * 3 + [True] * 2 + [False] * 12
