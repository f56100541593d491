"""Valid LeadBoxer events → Pipedrive activity payload columns. Pure and vectorised: no Airflow.

One output row per event. Columns hold what the loader sends: the person and organization facts used
to find or create them, and the activity fields (subject, type, due date/time in UTC, done, HTML note,
lead-card link). Columns that repeat are categorical, each distinct value worked out once; the note
sent for an activity is its ``note``, the lead-card line and its event's marker (``activity_fields``,
called by the loader for each activity it sends).

What hostile text becomes (the frames are already normalised, see ``frames``):

* Plain-text fields Pipedrive shows as text (subject, person name, organization name, lead title) are
  sent as text, *not* HTML-escaped (Pipedrive escapes them; escaping here would show ``&lt;``): control
  characters (C0 except tab/newline, DEL, C1) and bidi embedding/override/isolate characters (which can
  disguise text, "Trojan Source") are removed; subjects, person names and lead titles are made single
  line (runs of whitespace become one space); all are cut to ``MAX_TEXT`` (255) characters counted in
  UTF-16 code units as well (what a JavaScript backend counts), the cut marked with "…".
* The activity note is HTML: every value is HTML-escaped (so ``<script>`` arrives as ``&lt;script&gt;``)
  and cut to ``MAX_NOTE_VALUE``; only ``http``/``https`` URLs of at most ``MAX_URL`` characters become
  links (``javascript:``, ``data:``, relative or over-long URLs are shown as escaped text, never in an
  ``href``).
* URL-valued facts sent to Pipedrive fields (organization LinkedIn, lead-card link) are kept only when
  ``http``/``https`` and at most ``MAX_URL`` long; an organization domain is reduced to its host name
  (scheme, ``www.``, port, path dropped) and dropped when it is not a host name.
"""

from __future__ import annotations

import functools
import html
import re
from urllib.parse import quote, unquote

import numpy as np
import pandas as pd

from leadboxer_pipedrive.distinct import per_distinct, plain_values

# Pipedrive rejects longer subjects, names and titles (sandbox assumption: 255 characters).
MAX_TEXT = 255
# Notes are HTML; keep each value readable and the whole note well under Pipedrive's limits.
MAX_NOTE_VALUE = 1000
# Longer URLs are not linked (browsers and proxies commonly stop at about 2,000 characters).
MAX_URL = 2000

# Control characters (tab, newline and carriage return stay) and bidi embeddings/overrides/isolates.
_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]"
# Anything but printable ASCII (what the Unicode-aware clean-ups may have to change).
_NOT_PLAIN = r"[^ -~]"

_SAFE_URL = r"^https?://[^\s/?#]+"
_HOST_LABEL = r"[^\W_](?:(?:[^\W_]|-){0,61}[^\W_])?"
_HOST = rf"^(?:{_HOST_LABEL}\.)+(?:[^\W\d_]{{2,63}}|xn--[a-z0-9-]{{1,59}})$"

EVENT_KIND_LABELS = {
    "pageview": "Page view",
    "email_open": "Email open",
    "email_click": "Email click",
    "form_submit": "Form submit",
    "download": "Download",
    "login": "Login",
    "referrer": "Referral",
    "exit": "Exit link",
}

ACTIVITY_COLUMNS = [
    "event_id", "use_id", "dataset_id", "event_time_ms", "email", "person_name", "phone", "job_title",
    "org_key", "org_name", "org_domain", "org_address", "org_industry", "org_linkedin",
    "subject", "type", "due_date", "due_time", "done", "note", "leadcard_url",
    # Lead facts the custom_fields Param may map onto Pipedrive fields.
    "lead_score", "first_channel", "last_channel", "visits", "country",
]


def html_escape(values: pd.Series) -> pd.Series:
    """Vectorised ``html.escape(value, quote=True)``, and no ``[[`` (see ``event_marker``)."""
    return (values.str.replace("&", "&amp;", regex=False).str.replace("<", "&lt;", regex=False)
            .str.replace(">", "&gt;", regex=False).str.replace('"', "&quot;", regex=False)
            .str.replace("'", "&#x27;", regex=False).str.replace(_OPENS_MARKER, "[ ", regex=True))


def clip(values: pd.Series, limit: int = MAX_TEXT) -> pd.Series:
    """Cut strings to ``limit`` characters (and UTF-16 code units), marking the cut with an ellipsis."""
    values = values.astype("string")
    length = values.str.len()
    too_long = (length > limit).fillna(False).to_numpy(dtype=bool)
    # UTF-16 counts at most two units a character: only longer values can be too long in UTF-16.
    maybe = (length > limit // 2).fillna(False).to_numpy(dtype=bool) & ~too_long
    if maybe.any():
        units = values[maybe].str.encode("utf-16-le").str.len() > 2 * limit
        too_long[np.flatnonzero(maybe)[units.fillna(False).to_numpy(dtype=bool)]] = True
    too_long = pd.Series(too_long, index=values.index)
    if not too_long.any():
        return values
    return values.where(~too_long, values[too_long].map(lambda v: _cut(v, limit)))


def _cut(value: str, limit: int) -> str:
    units = 0
    for position, char in enumerate(value[:limit - 1]):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit - 1:
            return value[:position] + "…"
    return value[:limit - 1] + "…"


def _unusual(values: pd.Series, pattern: str = _NOT_PLAIN) -> np.ndarray:
    """Rows that hold something other than printable ASCII (or match ``pattern``): only those can
    change below, so only those go through Python's (Unicode-aware) regular expressions."""
    return values.str.contains(pattern, regex=True).fillna(False).to_numpy(dtype=bool)


def _strip_control(values: pd.Series) -> pd.Series:
    """Without control characters (tab, newline and carriage return stay) and bidi overrides."""
    values = values.astype("string")
    odd = _unusual(values)
    if not odd.any():
        return values
    out = values.copy()
    out[odd] = values[odd].astype("object").str.replace(_CONTROL, "", regex=True).astype("string")
    return out


def _single_line(values: pd.Series) -> pd.Series:
    """Control characters removed and whitespace runs (newlines, tabs, line separators) made one space."""
    values = values.astype("string")
    odd = _unusual(values, _NOT_PLAIN + "|  |^ | $")
    out = values.copy()
    if odd.any():
        out[odd] = (values[odd].astype("object").str.replace(_CONTROL, "", regex=True)
                    .str.replace(r"\s+", " ", regex=True).str.strip().astype("string"))
    return out.mask((out == "").fillna(False))


def safe_url(values: pd.Series, limit: int = MAX_URL) -> pd.Series:
    """``http``/``https`` URLs of at most ``limit`` characters; anything else missing."""
    values = values.astype("string")
    ok = values.str.match(_SAFE_URL, case=False, na=False) & (values.str.len() <= limit).fillna(False)
    return values.where(ok.astype(bool))


def host_names(values: pd.Series) -> pd.Series:
    """``https://www.Acme.com:443/x`` → ``acme.com``; missing when what is left is not a host name."""
    host = (values.astype("string").str.strip().str.lower()
            .str.replace(r"^[a-z][a-z0-9+.-]*://", "", regex=True)
            .str.replace(r"[/?#].*$", "", regex=True)
            .str.replace(r"^www\.", "", regex=True)
            .str.replace(r":\d*$", "", regex=True)
            .str.rstrip("."))
    return host.where(host.str.match(_HOST, na=False).astype(bool))


def event_kind_label(event_type: pd.Series) -> pd.Series:
    raw = _single_line(event_type.astype("string").str.replace("_", " ", regex=False)).fillna("event").str.lower()
    mapped = raw.str.replace(" ", "_", regex=False).map(EVENT_KIND_LABELS)
    fallback = raw.str.capitalize()
    return mapped.fillna(fallback).astype("string")


def person_names(frame: pd.DataFrame) -> pd.Series:
    """Full name, else first + last, else the email's local part."""
    first_last = (frame["first_name"].fillna("") + " " + frame["last_name"].fillna("")).str.strip()
    name = frame["full_name"].fillna(first_last.mask(first_last == ""))
    name = _single_line(name.astype("string"))
    nameless = name.isna().to_numpy(dtype=bool)
    if nameless.any():  # the email's local part, worked out only where it is needed
        name[nameless] = frame["email"][nameless].astype("string").str.split("@").str[0]
    return clip(_single_line(name))


def organization_keys(frame: pd.DataFrame) -> pd.Series:
    """``domain:acme.com`` when LeadBoxer knows the domain, else ``name:acme bv``; missing otherwise."""
    domain = host_names(frame["org_domain"])
    name = _strip_control(frame["org_name"].astype("string")).str.strip()
    name = name.mask(name == "")
    by_name = "name:" + name.str.casefold()
    key = ("domain:" + domain).fillna(by_name)
    return key.where(name.notna())


def organization_names(frame: pd.DataFrame) -> pd.Series:
    """The organization name sent to Pipedrive: without control characters, trimmed, clipped."""
    name = _strip_control(frame["org_name"].astype("string")).str.strip()
    return clip(name.mask(name == ""))


def organization_addresses(frame: pd.DataFrame) -> pd.Series:
    """``city, country`` (either alone when the other is unknown), single line, clipped."""
    address = (frame["org_city"].fillna("") + ", " + frame["org_country"].fillna("")).astype("string")
    return clip(_single_line(address.str.strip(", ")))


def numbers(values: pd.Series) -> pd.Series:
    """Finite numbers (``Float64``) of a text column; garbage, infinities and absurd magnitudes missing."""
    number = pd.to_numeric(values.astype("object"), errors="coerce").astype("float64")
    return number.where(number.abs() < 1e12).astype("Float64")


# What an activity's note is made of (besides the lead card, ``leadcard_url``).
NOTE_SOURCE_COLUMNS = ["url", "title", "referrer", "utm_source", "utm_medium", "utm_campaign", "utm_term",
                       "utm_content", "campaign"]


def activity_note(frame: pd.DataFrame) -> pd.Series:
    """The HTML note of each event's activity: its page, referrer, UTM values and campaign; as a
    categorical column, worked out once per distinct page and context (a site has few). The lead-card
    line and the event's marker are added when the activity is sent (``activity_fields``): written out
    here, a million events' notes would take hundreds of MB that the loader needs one at a time."""
    def line(label: str, values: pd.Series) -> pd.Series:
        escaped = html_escape(clip(_strip_control(values), MAX_NOTE_VALUE))
        return ("<p><b>" + label + ":</b> " + escaped + "</p>").fillna("")

    def page_and_context(rows: pd.DataFrame) -> pd.Series:
        url = rows["url"]
        page = ('<p><b>Page:</b> <a href="' + html_escape(safe_url(url)) + '">'
                + html_escape(clip(_strip_control(rows["title"].fillna(url)), MAX_NOTE_VALUE)) + "</a></p>")
        return (page.fillna(line("Page", rows["title"].fillna(url)))
                + line("Referrer", rows["referrer"])
                + line("UTM source", rows["utm_source"])
                + line("UTM medium", rows["utm_medium"])
                + line("UTM campaign", rows["utm_campaign"])
                + line("UTM term", rows["utm_term"])
                + line("UTM content", rows["utm_content"])
                + line("Email campaign", rows["campaign"]))

    return per_distinct(frame, NOTE_SOURCE_COLUMNS, page_and_context, categorical=True).rename("note")


def lead_card_line(url: str | None) -> str:
    """The note line linking the lead's LeadBoxer card (``url``: a ``safe_url``; none: no line)."""
    if pd.isna(url):
        return ""
    return f'<p><a href="{_OPENS_MARKER.sub("[ ", html.escape(str(url)))}">Open the lead card in LeadBoxer</a></p>'


# Every note sent ends with its event's marker: how the loader finds an activity again in Pipedrive
# (after a killed try or a create whose answer was lost) and knows which event it holds. The id sits
# between "[[" and "]]", percent-encoded, and every text a note holds has its "[[" split ("[ ["), so
# only markers hold one: a page title spelling a marker is not read as one, and the marker reads the
# same whatever Pipedrive does to the note's markup (tags, entities, whitespace).
_OPENS_MARKER = re.compile(r"\[(?=\[)")
_MARKER_RE = re.compile(r"LeadBoxer event \[\[([^\]\s<>]+)\]\]")


def event_marker(event_id: str) -> str:
    """The note line naming ``event_id`` (read back by ``event_ids_in_note``)."""
    return f"<p><small>LeadBoxer event [[{quote(str(event_id), safe='')}]]</small></p>"


def event_ids_in_note(note: str | None) -> list[str]:
    """The event ids whose markers a note holds."""
    return [unquote(match) for match in _MARKER_RE.findall(note or "")]


def _legacy_marker(event_id: str) -> str:
    """The marker notes had before it was unambiguous (rows staged or queued for a retry then)."""
    return f"<p><small>LeadBoxer event {html.escape(str(event_id))}</small></p>"


def activity_subjects(rows: pd.DataFrame) -> pd.Series:
    """``LeadBoxer: Page view – Pricing``: the event's kind, then its title, campaign or URL."""
    kind = event_kind_label(rows["event_type"])
    what = _single_line(rows["title"].fillna(rows["campaign"]).fillna(rows["url"]).astype("string")).fillna("")
    return clip("LeadBoxer: " + kind + (" – " + what).where(what != "", ""))


def _utc_minutes(minutes: pd.Series, format: str) -> pd.Series:
    return pd.to_datetime(minutes * 60_000, unit="ms", utc=True).dt.strftime(format).astype("string")


def activity_payloads(valid_events: pd.DataFrame, activity_type: str) -> pd.DataFrame:
    """One activity row per valid event. Lead facts, pages and subjects are each worked out once per
    distinct value (``per_distinct``)."""
    frame = valid_events.reset_index(drop=True)
    out = _activity_columns(frame, activity_type)
    out["note"] = activity_note(frame)
    return out[ACTIVITY_COLUMNS]


def _activity_columns(frame: pd.DataFrame, activity_type: str) -> pd.DataFrame:
    out = pd.DataFrame(index=frame.index)
    for column in ("event_id", "use_id", "event_time_ms"):
        out[column] = plain_values(frame[column])  # the loader groups and looks up by them: plain values
    # Columns that repeat a lead's (or a page's) value stay categorical: each distinct value once.
    out["dataset_id"] = pd.Series(pd.Categorical(frame["dataset_id"]), index=frame.index)
    out["email"] = plain_values(frame["email"])  # grouped and sorted by the loader: plain text
    categorical_per_distinct = functools.partial(per_distinct, frame, categorical=True)
    out["phone"] = categorical_per_distinct(["phone"], lambda rows: clip(_single_line(rows["phone"].astype("string"))))
    out["org_domain"] = categorical_per_distinct(["org_domain"], lambda rows: host_names(rows["org_domain"]))
    out["org_linkedin"] = categorical_per_distinct(["org_linkedin"], lambda rows: safe_url(rows["org_linkedin"]))
    out["person_name"] = categorical_per_distinct(["full_name", "first_name", "last_name", "email"], person_names)
    out["org_key"] = categorical_per_distinct(["org_domain", "org_name"], organization_keys)
    out["org_name"] = categorical_per_distinct(["org_name"], organization_names).where(out["org_key"].notna())
    out["org_address"] = categorical_per_distinct(["org_city", "org_country"], organization_addresses)
    for column in ("job_title", "org_industry", "first_channel", "last_channel", "country"):
        out[column] = categorical_per_distinct([column], lambda rows, c=column: clip(_single_line(
            rows[c].astype("string"))))
    for column in ("lead_score", "visits"):
        out[column] = numbers(frame[column])
    out["leadcard_url"] = categorical_per_distinct(["leadcard_url"], lambda rows: safe_url(rows["leadcard_url"]))
    out["subject"] = categorical_per_distinct(["event_type", "title", "campaign", "url"], activity_subjects)
    out["type"] = pd.Series(pd.Categorical.from_codes(np.zeros(len(frame), dtype=np.int8), [activity_type]),
                            index=frame.index)
    # Due date and time in UTC, formatted once per distinct minute.
    minutes = pd.DataFrame({"minute": frame["event_time_ms"].astype("int64") // 60_000})
    out["due_date"] = per_distinct(minutes, ["minute"], lambda rows: _utc_minutes(rows["minute"], "%Y-%m-%d"),
                                   categorical=True)
    out["due_time"] = per_distinct(minutes, ["minute"], lambda rows: _utc_minutes(rows["minute"], "%H:%M"),
                                   categorical=True)
    out["done"] = True
    return out


# A digest note lists events in full up to this many; the rest by their markers only.
DIGEST_FULL_EVENTS = 50


def activity_fields(unit: pd.DataFrame) -> pd.Series:
    """What one activity says: subject, type, due date and time, done, and its note ending with the
    marker of each event it holds. ``unit``: one activity row, or several rows of one lead (digest mode,
    ``digest_activity``)."""
    if len(unit) > 1:
        return digest_activity(unit)
    row = unit.iloc[0]
    return pd.Series({"subject": row["subject"], "type": row["type"], "due_date": row["due_date"],
                      "due_time": row["due_time"], "done": bool(row["done"]),
                      "note": _sent_note(row["note"], row["event_id"], row.get("leadcard_url"))})


def _sent_note(note, event_id, card_url=None) -> str:
    """An activity row's note as sent: ``note``, the lead-card line (``card_url``) and the event's
    marker. A note that ends with a marker already (rows staged, or queued for a retry, by versions
    that wrote the whole note up front) keeps its card and gets today's marker."""
    note, marker, legacy = _text(note), event_marker(event_id), _legacy_marker(event_id)
    if note.endswith(marker):
        return note
    if note.endswith(legacy):
        return note[:-len(legacy)] + marker
    return note + lead_card_line(card_url) + marker


def _text(value) -> str:
    return "" if pd.isna(value) else str(value)


def digest_activity(events: pd.DataFrame) -> pd.Series:
    """One activity for several activity rows of one lead (digest mode): subject, due time of the first
    event, and a note holding every event (each with its "LeadBoxer event <id>" marker), then the lead's
    card."""
    rows = events.sort_values(["event_time_ms", "event_id"], kind="stable")
    first = rows.iloc[0]
    titles = list(dict.fromkeys(s.split(" – ", 1)[1] for s in rows["subject"] if " – " in s))[:3]
    subject = f"LeadBoxer: {len(rows)} events" + (f" – {', '.join(titles)}" if titles else "")
    full = rows.iloc[:DIGEST_FULL_EVENTS]
    subjects = html_escape(full["subject"].astype("string"))  # escaped once, as a column
    parts = [f"<p><b>{len(rows)} LeadBoxer events</b></p>"]
    parts += [f"<p><b>{escaped}</b> ({r.due_date} {r.due_time} UTC)</p>{_sent_note(r.note, r.event_id)}"
              for escaped, r in zip(subjects, full.itertuples(index=False))]
    parts += [event_marker(event_id) for event_id in rows["event_id"].iloc[DIGEST_FULL_EVENTS:]]
    if card := lead_card_line(first.get("leadcard_url")):  # one lead: its card once
        parts.append(card)
    return pd.Series({
        "subject": clip(pd.Series([subject], dtype="string")).iloc[0],
        "type": first["type"],
        "due_date": first["due_date"],
        "due_time": first["due_time"],
        "done": bool(first["done"]),
        "note": "<hr/>".join(parts),
    })


# -- leads -----------------------------------------------------------------------------------------
LEAD_TITLE_PLACEHOLDERS = ("name", "organization", "organization_or_name", "email", "score", "country",
                           "channel", "visits")
DEFAULT_LEAD_TITLE = "{organization_or_name} – LeadBoxer lead (score {score})"
# Pipedrive's default lead labels, by minimum LeadBoxer lead score.
DEFAULT_SCORE_LABELS = {"Hot": 70, "Warm": 40, "Cold": 0}

LEAD_COLUMNS = [
    "use_id", "dataset_id", "email", "person_name", "phone", "org_key", "org_name", "org_domain",
    "org_address", "org_linkedin", "title", "score_label", "lead_score", "leadcard_url", "first_channel",
    "last_channel", "visits", "country",
]


def check_title_template(template: str) -> list[str]:
    """The template's placeholders; a clear error for an unknown one or a format spec."""
    import string

    names = []
    for _, field_name, format_spec, conversion in string.Formatter().parse(template):
        if field_name is None:
            continue
        if field_name not in LEAD_TITLE_PLACEHOLDERS or format_spec or conversion:
            raise ValueError(f"lead title template {template!r}: unknown placeholder {{{field_name}}}; "
                             f"use {', '.join('{' + n + '}' for n in LEAD_TITLE_PLACEHOLDERS)}")
        names.append(field_name)
    return names


def lead_titles(values: dict[str, pd.Series], template: str, index: pd.Index) -> pd.Series:
    """Fill ``template`` row by row, vectorised: literal pieces and columns are concatenated."""
    import string

    check_title_template(template)
    title = pd.Series("", index=index, dtype="string")
    for literal, field_name, _, _ in string.Formatter().parse(template):
        title = title + literal
        if field_name is not None:
            title = title + values[field_name].fillna("?").astype("string")
    return clip(_single_line(title))


def score_labels(scores: pd.Series, bands: dict[str, float]) -> pd.Series:
    """The label of the highest band whose minimum the score reaches; missing for unknown scores."""
    label = pd.Series(pd.NA, index=scores.index, dtype="string")
    for name, minimum in sorted(bands.items(), key=lambda item: item[1]):
        label = label.mask((scores >= float(minimum)).fillna(False).astype(bool), name)
    return label


def lead_payloads(valid_leads: pd.DataFrame, link_to: str, title_template: str = DEFAULT_LEAD_TITLE,
                  score_bands: dict[str, float] | None = None) -> pd.DataFrame:
    """One Pipedrive lead row per valid LeadBoxer lead. ``link_to``: organization, person or both."""
    frame = valid_leads.reset_index(drop=True)
    out = pd.DataFrame(index=frame.index)
    out["use_id"] = frame["use_id"]
    out["dataset_id"] = frame["dataset_id"] if "dataset_id" in frame else pd.NA
    link_person = link_to in ("person", "both")
    link_org = link_to in ("organization", "both")
    out["email"] = frame["email"] if link_person else pd.Series(pd.NA, index=frame.index, dtype="string")
    out["person_name"] = person_names(frame)
    out["phone"] = clip(_single_line(frame["phone"].astype("string")))
    keys = organization_keys(frame)
    out["org_key"] = keys if link_org else pd.Series(pd.NA, index=frame.index, dtype="string")
    out["org_name"] = organization_names(frame).where(keys.notna())
    out["org_domain"] = host_names(frame["org_domain"])
    out["org_address"] = organization_addresses(frame)
    out["org_linkedin"] = safe_url(frame["org_linkedin"])
    score = numbers(frame["lead_score"])
    out["lead_score"] = score
    out["score_label"] = score_labels(score, DEFAULT_SCORE_LABELS if score_bands is None else score_bands)
    out["leadcard_url"] = safe_url(frame["leadcard_url"])
    for column in ("first_channel", "last_channel", "country"):
        out[column] = frame[column]
    out["visits"] = numbers(frame["visits"])
    values = {
        "name": out["person_name"],
        "organization": out["org_name"],
        "organization_or_name": out["org_name"].fillna(out["person_name"]),
        "email": frame["email"],
        "score": score.round().astype("Int64").astype("string"),
        "country": frame["country"],
        "channel": frame["last_channel"],
        "visits": out["visits"].round().astype("Int64").astype("string"),
    }
    out["title"] = lead_titles(values, title_template, frame.index)
    return out[LEAD_COLUMNS]
