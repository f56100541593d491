"""The Pipedrive sandbox's existing records: ``PipedriveSandbox(existing_persons=N, existing_emails=[...])``
and ``python -m sandbox.pipedrive --existing-persons N --existing-emails FILE``."""

from __future__ import annotations

import math
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from sandbox.pipedrive import DEFAULT_DAILY_BUDGET, PipedriveSandbox
from sandbox.pipedrive.checks import rfc3339

ROOT = Path(__file__).resolve().parents[2]
H = {"x-api-token": "sandbox-token"}
EMAILS = [f"lead{n}@company{n % 7}.example" for n in range(1, 26)] + ["Jane.Doe@Acme.NL"]
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
LIMITS = {"burst_limit": 10_000, "search_burst_limit": 10_000}


def sandbox(**options) -> PipedriveSandbox:
    return PipedriveSandbox(**{**LIMITS, **options})


def get(sb, path, session=requests, **params):
    resp = session.get(sb.url + path, params=params, headers=H, timeout=30)
    assert resp.status_code == 200, resp.text
    return resp.json()


def send(sb, method, path, body):
    resp = requests.request(method, sb.url + path, json=body, headers=H, timeout=5)
    assert resp.status_code == 200, resp.text
    return resp.json()["data"]


def read_all(sb, path, **params):
    """Every row of a v2 list, following ``next_cursor`` with ``limit=500``; and the number of pages."""
    rows, pages, cursor = [], 0, None
    with requests.Session() as session:
        while True:
            body = get(sb, path, session, limit=500, **params, **({"cursor": cursor} if cursor else {}))
            rows += body["data"]
            pages += 1
            cursor = body["additional_data"].get("next_cursor")
            if cursor is None:
                return rows, pages


def search_email(sb, term):
    body = get(sb, "/api/v2/persons/search", term=term, fields="email", exact_match="true")
    return [item["item"] for item in body["data"]["items"]]


def shape(value):
    """A JSON value's structure: dicts by key, lists by their items' shapes, scalars by type."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return sorted({repr(shape(item)) for item in value})
    return type(value).__name__


def test_given_emails_are_the_first_persons_and_found_by_list_and_search():
    with sandbox(existing_persons=2000, existing_emails=EMAILS) as pd:
        persons, _ = read_all(pd, "/api/v2/persons")
        assert [p["id"] for p in persons] == list(range(1, 2001))
        for number, person in enumerate(persons, start=1):
            primary = EMAILS[number - 1] if number <= len(EMAILS) else f"person{number}@existing.example"
            assert person["emails"][0] == {"value": primary, "primary": True, "label": "work"}
            assert [e["primary"] for e in person["emails"]] == [True] + [False] * (len(person["emails"]) - 1)
        for number, email in enumerate(EMAILS, start=1):  # exact match is case-insensitive
            found = search_email(pd, email.upper())
            assert [item["id"] for item in found] == [number] and found[0]["emails"][0] == email
        for person in [p for p in persons if len(p["emails"]) == 2][:20]:  # found by the second email too
            second = person["emails"][1]
            assert second == {"value": f"person{person['id']}.private@existing-mail.example", "primary": False,
                              "label": "home"}
            assert [item["id"] for item in search_email(pd, second["value"])] == [person["id"]]
        assert search_email(pd, "nobody@existing.example") == []


def test_counts_and_organizations():
    count = 3000
    with sandbox(existing_persons=count) as pd:
        persons, _ = read_all(pd, "/api/v2/persons")
        organizations, _ = read_all(pd, "/api/v2/organizations")
        assert len(persons) == count
        assert 0.15 < sum(len(p["emails"]) == 2 for p in persons) / count < 0.25
        assert all(1 <= len(p["emails"]) <= 2 for p in persons)
        linked = [p for p in persons if "org_id" in p]
        assert 0.28 < len(linked) / count < 0.38
        assert len(organizations) == math.ceil(len(linked) / 5)
        assert [o["name"] for o in organizations] == [f"Existing Org {k}" for k in range(1, len(organizations) + 1)]
        members: dict[int, list[dict]] = {}
        for person in linked:
            members.setdefault(person["org_id"], []).append(person)
        assert set(members) == {o["id"] for o in organizations}  # every organization has persons, all exist
        assert {len(group) for group in members.values()} <= {4, 5}
        by_id = {o["id"]: o for o in organizations}
        for person in linked[:10]:  # an organization is older than its persons
            assert by_id[person["org_id"]]["add_time"] <= person["add_time"]
            item = search_email(pd, person["emails"][0]["value"])[0]
            assert item["organization"] == {"id": person["org_id"], "name": by_id[person["org_id"]]["name"],
                                            "address": None}
        found = get(pd, "/api/v2/organizations/search", term="existing org 7", exact_match="true")["data"]["items"]
        assert [item["item"]["id"] for item in found] == [7]


def test_existing_records_look_like_created_ones():
    with sandbox(existing_persons=100) as pd:
        store = pd.app.store
        old = next(p for p in store.persons.values() if p["org_id"] and len(p["emails"]) == 2)
        org = send(pd, "POST", "/api/v2/organizations", {"name": "Acme BV"})
        new = send(pd, "POST", "/api/v2/persons", {"name": "Jane Doe", "org_id": org["id"], "emails": [
            {"value": "jane@acme.example", "primary": True}, {"value": "jane@home.example", "label": "home"}]})
        assert shape(store.persons.get(new["id"])) == shape(old)  # the stored rows, internal keys included
        assert shape(store.organizations.get(org["id"])) == shape(store.organizations.get(old["org_id"]))
        for kind, old_id, new_id in (("persons", old["id"], new["id"]), ("organizations", old["org_id"], org["id"])):
            old_one = get(pd, f"/api/v2/{kind}/{old_id}")["data"]
            assert shape(old_one) == shape(get(pd, f"/api/v2/{kind}/{new_id}")["data"])
            assert RFC3339.match(old_one["add_time"]) and RFC3339.match(old_one["update_time"])
            listed = read_all(pd, f"/api/v2/{kind}")[0]
            assert next(row for row in listed if row["id"] == old_id) == old_one
        old_hit = search_email(pd, old["emails"][0]["value"])
        assert shape(old_hit) == shape(search_email(pd, "jane@home.example"))
        org_hits = [get(pd, "/api/v2/organizations/search", term=name, exact_match="true")["data"]["items"]
                    for name in (store.organizations.get(old["org_id"])["name"], "Acme BV")]
        assert shape(org_hits[0]) == shape(org_hits[1]) and len(org_hits[0]) == 1


def test_seeding_is_not_charged_nor_counted():
    with sandbox(existing_persons=500, existing_emails=EMAILS) as pd:
        state = pd.state()
        assert len(state["persons"]) == 500 and len(state["organizations"]) > 0
        counters = state["counters"]
        assert counters["tokens_spent"] == 0 and counters["tokens_remaining"] == DEFAULT_DAILY_BUDGET
        assert counters["requests"] == 0 and counters["by_endpoint"] == {} and counters["searches"] == 0


def test_records_created_later_get_new_ids_and_reset_makes_them_again():
    with sandbox(existing_persons=200, existing_emails=EMAILS) as pd:
        org_ids = set(pd.app.store.organizations.rows)
        person = send(pd, "POST", "/api/v2/persons", {"name": "New One", "emails": [{"value": EMAILS[0]}]})
        org = send(pd, "POST", "/api/v2/organizations", {"name": "Existing Org 1"})
        assert person["id"] == 201 and org["id"] == max(org_ids) + 1
        assert [item["id"] for item in search_email(pd, EMAILS[0])] == [1, 201]  # a duplicate, as in Pipedrive
        before, _ = read_all(pd, "/api/v2/persons")
        pd.reset()
        after, _ = read_all(pd, "/api/v2/persons")
        assert [p["id"] for p in after] == list(range(202, 402))  # new ids, after every earlier one
        assert [p["emails"] for p in after] == [p["emails"] for p in before[:200]]
        assert [p["name"] for p in after] == [p["name"] for p in before[:200]]
        assert min(pd.app.store.organizations.rows) > org["id"]


def test_updated_since_after_the_start_lists_none_of_them():
    start = time.time()
    with sandbox(existing_persons=1000) as pd:
        assert get(pd, "/api/v2/persons", updated_since=rfc3339(start))["data"] == []
        old, _ = read_all(pd, "/api/v2/persons", updated_since=rfc3339(start - 31 * 86400), sort_by="update_time")
        assert len(old) == 1000
        updates = [p["update_time"] for p in old]
        assert updates == sorted(updates)
        assert all(rfc3339(start - 30 * 86400 - 1) <= p["add_time"] <= p["update_time"] <= rfc3339(start - 59)
                   for p in old)
        assert len({p["add_time"][:10] for p in old}) >= 28  # spread over the 30 days
        send(pd, "PATCH", "/api/v2/persons/5", {"name": "Changed Now"})
        assert [p["id"] for p in get(pd, "/api/v2/persons", updated_since=rfc3339(start))["data"]] == [5]


def test_existing_records_are_searchable_at_once_under_search_lag():
    with sandbox(existing_persons=50, existing_emails=EMAILS[:3], search_lag=30) as pd:
        assert [item["id"] for item in search_email(pd, EMAILS[2])] == [3]
        send(pd, "POST", "/api/v2/persons", {"name": "Fresh", "emails": [{"value": "fresh@new.example"}]})
        assert search_email(pd, "fresh@new.example") == []


def test_existing_records_are_deterministic():
    def content(sb):
        return [{k: v for k, v in p.items() if k not in ("add_time", "update_time")}
                for p in read_all(sb, "/api/v2/persons")[0]]

    with sandbox(existing_persons=300) as one, sandbox(existing_persons=300) as two, \
            sandbox(existing_persons=300, seed=8) as other:
        assert content(one) == content(two)
        assert content(one) != content(other)


def test_lists_and_searches_follow_writes_between_pages():
    with sandbox(existing_persons=1200) as pd:
        first = get(pd, "/api/v2/persons", limit=500, sort_by="update_time", sort_direction="desc")["data"]
        moved = next(n for n in range(1000, 1200) if n not in {p["id"] for p in first})
        send(pd, "PATCH", f"/api/v2/persons/{moved}", {"emails": [{"value": "moved@new.example"}]})
        again = get(pd, "/api/v2/persons", limit=500, sort_by="update_time", sort_direction="desc")["data"]
        assert [p["id"] for p in again] == [moved] + [p["id"] for p in first[:499]]
        assert search_email(pd, f"person{moved}@existing.example") == []
        assert [item["id"] for item in search_email(pd, "MOVED@new.example")] == [moved]
        page = get(pd, "/api/v2/persons", limit=500)
        send(pd, "POST", "/api/v2/persons", {"name": "Late", "emails": [{"value": "late@new.example"}]})
        rest = get(pd, "/api/v2/persons", limit=500, cursor=page["additional_data"]["next_cursor"])
        last = get(pd, "/api/v2/persons", limit=500, cursor=rest["additional_data"]["next_cursor"])
        assert [p["id"] for p in page["data"] + rest["data"] + last["data"]] == list(range(1, 1202))


@pytest.fixture(scope="module")
def big():
    """50,000 existing persons."""
    with sandbox(existing_persons=50_000, existing_emails=EMAILS) as pd:
        yield pd


def test_fifty_thousand_persons_page_through_completely(big):
    persons, pages = read_all(big, "/api/v2/persons")
    assert pages == 100 and [p["id"] for p in persons] == list(range(1, 50_001))  # each id exactly once
    assert [item["id"] for item in search_email(big, EMAILS[-1])] == [len(EMAILS)]
    assert big.app.counters()["tokens_spent"] == 100 * 10 + 20


def test_fifty_thousand_persons_page_by_update_time(big):
    persons, pages = read_all(big, "/api/v2/persons", updated_since=rfc3339(time.time() - 31 * 86400),
                              sort_by="update_time", sort_direction="asc")
    assert pages == 100 and sorted(p["id"] for p in persons) == list(range(1, 50_001))
    assert [p["update_time"] for p in persons] == sorted(p["update_time"] for p in persons)


def test_command_line_flags(tmp_path):
    emails = tmp_path / "emails.txt"
    emails.write_text("first@given.example\n\n  second@given.example  \n", encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-m", "sandbox.pipedrive", "--port", "0", "--existing-persons", "30",
                             "--existing-emails", str(emails)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("Pipedrive sandbox listening on http://127.0.0.1:")
        url = line.rsplit(" ", 1)[1]
        persons = requests.get(url + "/api/v2/persons", headers=H, timeout=5).json()["data"]
        assert len(persons) == 30
        assert [p["emails"][0]["value"] for p in persons[:3]] == ["first@given.example", "second@given.example",
                                                                  "person3@existing.example"]
    finally:
        proc.terminate()
        proc.wait(timeout=5)
    missing = subprocess.run([sys.executable, "-m", "sandbox.pipedrive", "--existing-emails",
                              str(tmp_path / "missing.txt")], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert missing.returncode == 2 and "--existing-emails" in missing.stderr
    negative = subprocess.run([sys.executable, "-m", "sandbox.pipedrive", "--existing-persons", "-1"], cwd=ROOT,
                              capture_output=True, text=True, timeout=30)
    assert negative.returncode == 2 and "existing_persons" in negative.stderr


@pytest.mark.parametrize("options", [{"existing_persons": -1}, {"existing_persons": 1.5},
                                     {"existing_emails": "one@example.com"}, {"existing_emails": ["ok@x.example", ""]}])
def test_bad_options_are_refused(options):
    with pytest.raises(ValueError):
        PipedriveSandbox(**options)


def test_more_emails_than_persons_makes_one_person_per_email():
    with sandbox(existing_persons=2, existing_emails=EMAILS[:5]) as pd:
        persons = get(pd, "/api/v2/persons")["data"]
        assert [p["emails"][0]["value"] for p in persons] == EMAILS[:5]



def test_the_account_clock_can_be_moved_forward_for_replayed_hours():
    with sandbox() as sb:
        sb.app.store.clock_offset = 3600
        created = send(sb, "POST", "/api/v2/persons", {"name": "Later"})
        assert created["update_time"] >= rfc3339(time.time() + 3590)
        listed = get(sb, "/api/v2/persons", updated_since=rfc3339(time.time() + 1800))["data"]
        assert [p["id"] for p in listed] == [created["id"]]
