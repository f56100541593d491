import json

import numpy as np
import pandas as pd
import pytest

from leadboxer_pipedrive.frames import (
    EventRows,
    LeadRows,
    _read_event_pages,
    decoded_event_page,
    distinct_codes,
    epoch_ms,
    event_page_rows,
    event_rows,
    events_frame,
    lead_page,
    leads_frame,
    normalise_email,
    parse_epoch_ms,
    rows_where,
    text_column,
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


# Leads as LeadBoxer sends them (text as text, visits, lastEvent and segment ids as numbers), and what
# Arrow's strict reader refuses in a lead page.
PLAIN_LEADS = [{"use_id": f" l{n} ", "email": f" Ann.{n}@ACME.io ", "firstName": "Zoe\u0301", "lastName": "  ",
                "organizationName": "Acme BV", "esScore": "63", "total_number_visits": n,
                "lastEvent": 1_795_150_800_000 + n,
                "eventEsTimestamp": str(1_795_150_900_000 + n) if n % 3 else None, "segments": [14118, n, None],
                "leadcard_url": "https://app.leadboxer.com?q=1&site=x", "type": {"name": "user"}, "extra": [1, {}]}
               for n in range(6)]
PLAIN_LEADS[4] = {"use_id": "l4"}  # fields left out: missing
PLAIN_LEADS[5].pop("segments")
REFUSED_LEADS = [{"use_id": 42}, {"use_id": "l", "esScore": 63}, {"use_id": "l", "segments": "14118,2"},
                 {"use_id": "l", "segments": ["14118"]}, {"use_id": "l", "phoneNumber": 31201234567},
                 {"use_id": "l", "total_number_visits": 4.5}, {"use_id": "l", "firstName": {"an": "object"}},
                 "not an object", {"use_id": "l", "title": "\ud800"}]


def _lead_page(leads, token=None):
    return json.dumps({"data": leads, "nextToken": token, "rows": len(leads or [])}).encode()


def test_lead_pages_read_by_arrow_equal_the_same_leads_decoded():
    pages = [_lead_page(PLAIN_LEADS[:3], "t1"), _lead_page([]), _lead_page(None),
             json.dumps({"nextToken": "t3", "data": PLAIN_LEADS[3:]}, indent=2).encode()]
    read = [lead_page(page) for page in pages]
    assert all(page.records is None for page in read)  # all read by Arrow
    assert [page.next_token for page in read] == ["t1", None, None, "t3"]
    records = [lead for page in pages for lead in (json.loads(page)["data"] or [])]
    assert [i for page in read for i in page.lead_ids] == [lead.get("use_id") for lead in records]  # as sent
    # Last seen: eventEsTimestamp, else lastEvent.
    assert [ms for page in read for ms in page.last_seen_ms] == [
        1_795_150_800_000, 1_795_150_900_001, 1_795_150_900_002, 1_795_150_800_003, None, 1_795_150_900_005]
    collected = LeadRows(14118, page_rows=4)
    for page in read:
        for row in range(len(page.lead_ids)):
            collected.add(page, row)
    pd.testing.assert_frame_equal(collected.frame(), leads_frame(records, 14118))
    framed = collected.frame()
    assert framed.loc[1, "segment_ids"] == ("14118", "1") and framed["in_segment"].tolist() == [True] * 4 + [False] * 2
    assert framed.loc[2, ["use_id", "email", "first_name", "visits"]].tolist() == ["l2", "ann.2@acme.io", "Zoé", "2"]


def test_lead_pages_arrow_refuses_are_decoded_the_exact_way():
    for refused in REFUSED_LEADS:
        page = _lead_page([PLAIN_LEADS[0], refused], "next")
        read = lead_page(page)
        assert read.records == [PLAIN_LEADS[0], refused], refused
        assert read.next_token == "next"
        assert read.lead_ids == [" l0 ", refused.get("use_id") if isinstance(refused, dict) else None]
        collected = LeadRows(14118)
        collected.add(read, 0)
        collected.add(read, 1)
        pd.testing.assert_frame_equal(collected.frame(), leads_frame([PLAIN_LEADS[0], refused], 14118))
    not_utf8 = b'{"data": [{"use_id": "a", "firstName": "Bj\xf6rn"}], "nextToken": null}'
    assert lead_page(not_utf8).records == [{"use_id": "a", "firstName": "Bj\ufffdrn"}]  # as requests reads it
    assert lead_page(b"").lead_ids == [] and lead_page(b"").next_token is None
    assert lead_page(json.dumps({"data": [], "nextToken": 7}).encode()).next_token == 7  # not text: decoded
    with pytest.raises(ValueError, match="a page of leads"):
        lead_page(b'{"data": {"use_id": "x"}}')


def test_leads_of_pages_read_by_arrow_and_decoded_stay_in_the_order_added():
    arrow, decoded = lead_page(_lead_page(PLAIN_LEADS[:4])), lead_page(_lead_page([REFUSED_LEADS[0], PLAIN_LEADS[4]]))
    assert arrow.records is None and decoded.records is not None
    collected = LeadRows(14118, page_rows=3)
    order = [(arrow, 0), (decoded, 1), (arrow, 2), (arrow, 3), (decoded, 0), (arrow, 1)]
    for page, row in order:
        collected.add(page, row, if_it_has_events=row == 3)
    assert len(collected) == len(order)
    records = [(PLAIN_LEADS[:4] if page is arrow else [REFUSED_LEADS[0], PLAIN_LEADS[4]])[row] for page, row in order]
    pd.testing.assert_frame_equal(collected.frame(), leads_frame(records, 14118))
    events = pd.Series(["l0"], dtype="category")  # only l0 has events: l3, kept if it had any, goes
    assert collected.frame(events)["use_id"].tolist() == ["l0", "l4", "l2", "42", "l1"]


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


def _page(events, **extra) -> bytes:
    return json.dumps({"data": events, "nextToken": None, **extra}).encode()


# Events as LeadBoxer sends them, and every kind of value Arrow's strict reader refuses.
PLAIN_EVENTS = [{"event_id": f"e{n}", "use_id": "own", "eventUnixTimestamp": str(1_795_150_800_000 + n * 600_000),
                 "title": f" Pagé {n} \u200b", "original_url": "https://x.io/?a=1&b=\u00e9", "campaign": None,
                 "properties": {"nested": [1, {"deep": None}]}} for n in range(8)]
REFUSED_BY_ARROW = [{"event_id": 42}, {"event_id": "e", "title": 7.0}, {"event_id": "e", "title": True},
                    {"event_id": "e", "title": {"an": "object"}}, {"event_id": "e", "title": ["a list"]},
                    "not an object", 7]


def test_event_pages_read_by_arrow_equal_the_same_events_decoded():
    pages = [_page(PLAIN_EVENTS[:3]), _page([]), _page(None), b"", _page([*PLAIN_EVENTS[3:6], None]),
             json.dumps({"data": PLAIN_EVENTS[6:]}, indent=2).encode(), _page([PLAIN_EVENTS[0]], total=9)]
    lead_ids = [f"l{n}" if n != 4 else None for n in range(len(pages))]
    channels = ["email", None, "direct", "x", None, "paid", 3]
    assert _read_event_pages([page for page in pages if page]) is not None  # Arrow took them (the empty one has none)
    decoded = [(e, lead, channel) for page, lead, channel in zip(pages, lead_ids, channels)
               for e in decoded_event_page(page)]
    expected = event_rows([e for e, _, _ in decoded], [lead for _, lead, _ in decoded], [c for _, _, c in decoded])
    pd.testing.assert_frame_equal(event_page_rows(pages, lead_ids, channels), expected)
    assert len(expected) == 10 and pd.isna(expected.loc[6, "event_id"])  # the null event is a row
    assert expected["use_id"].tolist()[2:4] == ["l0", "own"]  # the page's lead, else the event's own


def test_one_line_pages_are_read_by_arrow_whatever_their_length():
    # Without a newline in any page, Arrow splits the pages at newlines: a page longer than its usual
    # block must still be read whole.
    pages = [_page(PLAIN_EVENTS[:3]), _page([{**PLAIN_EVENTS[3], "title": "long " * (1 << 19)}, PLAIN_EVENTS[4]]),
             _page(PLAIN_EVENTS[5:])]
    assert not any(b"\n" in page for page in pages) and _read_event_pages(pages) is not None
    decoded = [(e, f"l{n}") for n, page in enumerate(pages) for e in decoded_event_page(page)]
    expected = event_rows([e for e, _ in decoded], [lead for _, lead in decoded], ["email"] * len(decoded))
    pd.testing.assert_frame_equal(event_page_rows(pages, ["l0", "l1", "l2"], ["email"] * 3), expected)
    assert expected["title"].str.len().max() > 2 << 20


def test_event_pages_arrow_refuses_are_decoded_the_exact_way():
    for refused in [*REFUSED_BY_ARROW, {"event_id": "e", "title": "\ud800"}]:
        pages = [_page(PLAIN_EVENTS[:2]), _page([refused, PLAIN_EVENTS[2]])]
        assert _read_event_pages(pages) is None, refused
        expected = event_rows([*PLAIN_EVENTS[:3][:2], refused, PLAIN_EVENTS[2]], ["a", "a", "b", "b"], ["c"] * 4)
        pd.testing.assert_frame_equal(event_page_rows(pages, ["a", "b"], ["c", "c"]), expected)
    repeated_key = b'{"data": [{"event_id": "x", "event_id": "y"}]}'
    assert _read_event_pages([repeated_key]) is None
    assert event_page_rows([repeated_key], ["a"], [None])["event_id"].tolist() == ["y"]  # as json.loads reads it
    # Not UTF-8: Arrow's reader takes it, its text kernels do not; read as requests reads such a body.
    for field in ("event_id", "title", "utm_term", "_lead_id"):
        invalid_utf8 = b'{"data": [{"%s": "caf\xe9 \xff"}, {"event_id": "e2"}]}' % field.encode()
        frame = event_page_rows([invalid_utf8], [None], [None])
        column = {"_lead_id": "use_id"}.get(field, field)
        assert frame[column].tolist()[0] == "caf\ufffd \ufffd" and frame["event_id"].tolist()[1] == "e2", field
    lone_surrogate = event_page_rows([_page([{"event_id": "e", "title": "a\ud800"}])], ["a"], [None])
    assert lone_surrogate["title"].tolist() == ["a\ufffd"]  # UTF-8 cannot hold it


def test_an_events_page_of_another_shape_is_a_clear_error():
    for page in (b"[1, 2]", b'{"data": {"event_id": "e"}}', b"not json"):
        with pytest.raises(ValueError):
            event_page_rows([page], ["a"], [None])
    collected = EventRows(page_bytes=1)  # framed on the worker thread: the error still reaches the extract
    collected.add_page(_page(PLAIN_EVENTS[:1]), "a")
    collected.add_page(b"[1, 2]", "a")
    with pytest.raises(ValueError, match="not"):
        collected.frame()


def test_event_rows_keep_the_window_and_what_cannot_be_read_whichever_way_they_are_framed():
    start, end = 1_795_150_800_000, 1_795_154_400_000
    times = [str(start), str(end - 1), str(end), str(start - 1), "1795150800", "garbage", None, "0" + str(start)[1:],
             "2026-11-20T05:30:00Z", 10**30]
    events = [{"event_id": f"e{n}", "eventUnixTimestamp": t} for n, t in enumerate(times)]
    inside = [n for n, t in enumerate(times) if (ms := epoch_ms(t)) is None or start <= ms < end]
    assert inside == [0, 1, 4, 5, 6, 7, 8, 9]  # 7: 0795150800000 ms is 1995, implausible, unreadable
    from_records = EventRows(page_rows=3, window=(start, end))
    from_pages = EventRows(page_bytes=50, window=(start, end))
    for n in range(0, len(events), 2):
        from_records.add(events[n:n + 2], "l", "c")
        from_pages.add_page(_page(events[n:n + 2]), "l", "c")
    assert from_records.flush() == from_pages.flush() == len(inside)
    pd.testing.assert_frame_equal(from_pages.frame(), from_records.frame())
    assert from_records.frame()["event_id"].tolist() == [f"e{n}" for n in inside]


def test_batches_read_by_arrow_refused_by_it_or_added_as_records_frame_as_one_in_their_order():
    events = [{**event, "event_id": f"e{n}", "title": [" Pagé \u200b", "Pagé", "Home"][n % 3],
               "session_id": f"s{n // 4}"} for n, event in enumerate(PLAIN_EVENTS * 2)]
    collected = EventRows(page_bytes=1)  # every page its own batch, read on the worker
    collected.add_page(_page(events[:3]), "l1", "email")
    collected.add_page(_page(events[3:5]), "l1", None)
    collected.add_page(_page([*events[5:7], REFUSED_BY_ARROW[1]]), "l2", "paid")  # decoded the exact way
    collected.add(events[7:9], "l2", "paid")
    collected.add_page(_page(events[9:]), "l3", "email")
    framed = collected.frame()
    records = [*events[:7], REFUSED_BY_ARROW[1], *events[7:]]
    expected = event_rows(records, ["l1"] * 5 + ["l2"] * 5 + ["l3"] * 7,
                          ["email"] * 3 + [None] * 2 + ["paid"] * 5 + ["email"] * 7)
    pd.testing.assert_frame_equal(framed, expected)
    # One category per cleaned value, whichever batches held it and however it was spelled there.
    assert list(framed["title"].cat.categories) == ["Pagé", "Home", "7"]
    assert framed["session_channel"].isna().tolist() == [False] * 3 + [True] * 2 + [False] * 12


def test_leads_that_need_events_stay_only_with_events():
    collected = LeadRows(1, page_rows=2)
    for n, lead in enumerate([{"use_id": "a"}, {"use_id": "b"}, {"use_id": 0}, {"use_id": "c"}]):
        collected.append(lead, if_it_has_events=n in (1, 3))
    assert collected.frame(pd.Series(["c", "x"]))["use_id"].tolist() == ["a", "0", "c"]


def test_parse_epoch_ms_reads_digit_columns_as_other_columns():
    digits = ["1783024863769", "1783024863", None, "0", "4102444800000", "946684800000", "999999999999999", "0001"]
    fast = parse_epoch_ms(pd.Series(digits, dtype="object"))
    slow = parse_epoch_ms(pd.Series([*digits, "garbage"], dtype="object")).iloc[:-1]  # the general path
    pd.testing.assert_series_equal(fast, slow)
    assert fast.tolist()[:2] == [1783024863769, 1783024863000] and fast.iloc[2:5].isna().all()


def test_rows_where_equals_boolean_indexing_for_every_kind_of_column():
    import pyarrow as pa

    text = pd.arrays.ArrowStringArray(pa.chunked_array([["a", None, "c"], ["d", "e"]]))  # as pages concatenate
    frame = pd.DataFrame({"text": text, "category": pd.Categorical(["x", "y", None, "x", "y"]),
                          "number": pd.array([1, None, 3, 4, 5], dtype="Int64"), "flag": [True, False] * 2 + [True],
                          "tuples": pd.Series([(1,), (), (2, 3), (), (4,)], dtype=object)}, index=[5, 6, 7, 8, 9])
    keep = np.array([True, False, True, True, False])
    pd.testing.assert_frame_equal(rows_where(frame, keep), frame[keep].reset_index(drop=True))
    assert rows_where(frame, np.zeros(5, dtype=bool)).empty


def test_distinct_codes_number_combinations_in_order_of_first_appearance_missing_values_included():
    rng = np.random.default_rng(7)
    many = [str(n) for n in rng.integers(0, 70_000, 3_000)]  # six such columns outgrow 64 bits: re-numbered
    frame = pd.DataFrame({
        **{f"lead_{n}": pd.Categorical(np.roll(many, n)) for n in range(6)},
        "text": pd.Series(["a", None, "b", "a", None] * 600, dtype="string"),
        "flag": [True, False, False] * 1_000,
        "number": pd.array([1, None, 1, 2, 3, None] * 500, dtype="Int64"),
    })
    frame.loc[5, "lead_2"] = None
    for columns in (list(frame.columns), ["text", "flag"], ["lead_0", "number"], ["text"]):
        expected = frame.groupby(columns, dropna=False, sort=False).ngroup().to_numpy()
        codes, first_rows = distinct_codes(frame, columns)
        assert np.array_equal(codes, expected), columns
        assert np.array_equal(first_rows, [np.flatnonzero(expected == code)[0] for code in range(expected.max() + 1)])
    assert [len(part) for part in distinct_codes(frame.iloc[:0], ["text", "flag"])] == [0, 0]
