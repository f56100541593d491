import pandas as pd

from leadboxer_pipedrive.frames import (
    EventRows,
    LeadRows,
    epoch_ms,
    events_frame,
    leads_frame,
    normalise_email,
    parse_epoch_ms,
    text_column,
    window_test,
)


def test_parse_epoch_ms_reads_every_timestamp_spelling():
    values = pd.Series(["1783024863769", 1783024863, 1783024863769.0, "2026-11-20T05:10:00Z",
                        None, "garbage", -5, {"a": 1}, "  "], dtype="object")
    parsed = parse_epoch_ms(values).tolist()
    assert parsed[:4] == [1783024863769, 1783024863000, 1783024863769, 1795151400000]
    assert all(pd.isna(v) for v in parsed[4:])


def test_normalise_email_trims_and_lowercases():
    assert normalise_email(pd.Series(["  Jane.Doe@ACME.com ", "", None])).tolist()[0] == "jane.doe@acme.com"
    assert normalise_email(pd.Series(["", None])).isna().all()


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


def test_all_text_columns_take_the_arrow_path_and_read_the_same_as_mixed_ones():
    """A column of text and missing values is converted in one Arrow pass; one number in it sends it
    the value-by-value way. Both must read every text value alike."""
    texts = ["  Jane ", "Zoe\u0301", "\u00a0x\u200b", "", "   ", None, float("nan"), "a\tb", "ÅNGSTRÖM", "\ufeffid-1"]
    fast = text_column(pd.Series(texts, dtype=object))
    mixed = text_column(pd.Series([*texts, 7], dtype=object))
    assert mixed.iloc[-1] == "7"
    pd.testing.assert_series_equal(fast, mixed.iloc[:-1])
    assert fast.tolist()[:3] == ["Jane", "Zoé", "x"] and fast.iloc[3:7].isna().all()


def test_epoch_ms_reads_one_value_as_parse_epoch_ms_does():
    values = ["1783024863769", 1783024863, 1783024863769, "0001783024863769", 1783024863769.0, "1783024863",
              "2026-11-20T05:10:00Z", " 1783024863769 ", "١٧٨٣٠٢٤٨٦٣٧٦٩", "²", True, None, "garbage", -5, 0,
              "0", 10**30, "99999999999999999999", 4_102_444_800_000, 4_102_444_799_999, 946_684_800_000,
              946_684_799_999, {"a": 1}, "  "]
    expected = [None if pd.isna(v) else int(v) for v in parse_epoch_ms(pd.Series(values, dtype="object"))]
    assert [epoch_ms(value) for value in values] == expected
    assert expected[:3] == [1783024863769, 1783024863000, 1783024863769]


def test_events_framed_page_by_page_equal_events_framed_at_once():
    leads = leads_frame([{"use_id": "l1", "email": "a@x.io", "segments": [1]},
                         {"use_id": "l2", "email": "b@x.io", "segments": [2]}], 1)
    records = [{"event_id": f"e{n}", "eventUnixTimestamp": str(1_783_024_863_769 + n), "title": f" Page {n % 3} ",
                "use_id": "own-id", "utm_source": 7 if n == 4 else None} for n in range(11)]
    records[5] = "not an object"
    collected = EventRows(page_rows=3)
    for start in range(0, 11, 2):  # batches that do not line up with pages
        collected.add(records[start:start + 2], lead_id="l1" if start < 6 else None, channel="email")
    assert len(collected) == 11
    paged = events_frame(collected.frame(), leads, "ds")
    # A record that is not an object is framed as an empty one (a row without an id) of its session.
    at_once = events_frame([{**(r if isinstance(r, dict) else {}), "_session_channel": "email",
                             **({"_lead_id": "l1"} if n < 6 else {})} for n, r in enumerate(records)], leads, "ds")
    pd.testing.assert_frame_equal(paged, at_once)
    assert paged["use_id"].tolist() == ["l1"] * 6 + ["own-id"] * 5  # fetched for, else its own use_id
    assert pd.isna(paged.loc[5, "event_id"]) and paged.loc[4, "utm_source"] == "7"
    assert paged["in_segment"].tolist() == [True] * 6 + [False] * 5


def test_leads_framed_page_by_page_equal_leads_framed_at_once():
    leads = [{"use_id": f"l{n}", "email": f" L{n}@X.io ", "segments": [1, n] if n % 2 else "2,3"} for n in range(7)]
    leads[3] = "not an object"
    collected = LeadRows(1, page_rows=2)
    for lead in leads:
        collected.append(lead)
    assert len(collected) == 7
    pd.testing.assert_frame_equal(collected.frame(), leads_frame(leads, 1))
    assert collected.frame()["in_segment"].tolist() == [False, True, False, False, False, True, False]
    assert LeadRows(1).frame().columns.tolist() == leads_frame([], 1).columns.tolist()


def test_window_test_keeps_what_epoch_ms_reads_inside_the_window_or_cannot_read():
    start, end = 1_795_150_800_000, 1_795_154_400_000
    values = [str(start), str(end - 1), str(end), str(start - 1), "0" + str(start)[1:], "1795150800", start,
              str(start + 1) + " ", "١٧٩٥١٥٠٨٠٠٠٠١", "2026-11-20T05:30:00Z", "garbage", None, True, 10**30,
              "179515080000a", str(start)[:-1], "9" * 13]
    keeps = window_test(start, end)
    expected = [epoch_ms(v) is None or start <= epoch_ms(v) < end for v in values]
    assert [keeps(v) for v in values] == expected
    assert expected[:4] == [True, True, False, False]


def test_parse_epoch_ms_reads_digit_columns_as_other_columns():
    digits = ["1783024863769", "1783024863", None, "0", "4102444800000", "946684800000", "999999999999999", "0001"]
    fast = parse_epoch_ms(pd.Series(digits, dtype="object"))
    slow = parse_epoch_ms(pd.Series([*digits, "garbage"], dtype="object")).iloc[:-1]  # the general path
    pd.testing.assert_series_equal(fast, slow)
    assert fast.tolist()[:2] == [1783024863769, 1783024863000] and fast.iloc[2:5].isna().all()
