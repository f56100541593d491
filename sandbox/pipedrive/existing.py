"""Records a sandbox account already holds when it starts (and after every reset): ``existing_persons``
persons, the first ones carrying the ``existing_emails`` given, and organizations for about a third of them.

They are made directly in the store (no HTTP: nothing charged, nothing counted) with the same functions as
``POST /api/v2/persons`` and ``POST /api/v2/organizations``, so they are stored and answered exactly like
created records, and they take their ids from the tables' own sequences (later records get later ids).

Everything is drawn from ``random.Random(seed)``; the only clock read is the start time: add and update
times lie between a minute and 30 days before it (ids follow add time, an organization is older than its
persons, update time is never before add time), and a row counts as indexed for search at its update time.
So ``updated_since`` reads see them as old, and searches find them at once under any search lag up to a
minute (a longer lag hides the ones updated more recently than that, as it would hide created records).

- Person ``n`` (1-based, in id order) has primary email ``existing_emails[n - 1]``, or past the given
  ones ``person{n}@existing.example``; about one in five also has ``person{n}.private@existing-mail.example``
  (not primary, label ``home``); a random first and last name; no phone.
- About one in three is linked (``org_id``) to an organization ``Existing Org {k}``: one per 5 linked
  persons (rounded up), each with at most 5 of them (4 or 5 when there are many; k in id order).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterable
from pathlib import Path

from sandbox.pipedrive import people
from sandbox.pipedrive.checks import rfc3339
from sandbox.pipedrive.table import Row, Table, touch

DEFAULT_SEED = 7
SECOND_EMAIL_SHARE = 0.2
LINKED_SHARE = 1 / 3
PERSONS_PER_ORGANIZATION = 5
MIN_AGE = 60.0  # seconds before the start
MAX_AGE = 30 * 86400.0
FIRST_NAMES = ("Anna", "Bram", "Chloe", "Daan", "Emma", "Finn", "Hanna", "Jan", "Julia", "Lars", "Lotte", "Milan",
               "Noor", "Olivier", "Sara", "Sem", "Sophie", "Thomas", "Tess", "Willem")
LAST_NAMES = ("Bakker", "Bos", "de Boer", "de Groot", "de Jong", "de Vries", "Dekker", "Hendriks", "Jansen",
              "Meijer", "Mulder", "Peters", "Smit", "van Dijk", "van den Berg", "Visser", "Vos", "Willems",
              "Smith", "Müller")


def synthetic_email(number: int) -> str:
    return f"person{number}@existing.example"


def second_email(number: int) -> str:
    return f"person{number}.private@existing-mail.example"


def organization_name(number: int) -> str:
    return f"Existing Org {number}"


def check_emails(emails: Iterable[str] | None) -> list[str]:
    """The given emails, as a list (each a non-blank string, used as given)."""
    if emails is None:
        return []
    if isinstance(emails, str):
        raise ValueError("existing_emails must be a list of emails, not one string")
    out = list(emails)
    for email in out:
        if not isinstance(email, str) or not email.strip():
            raise ValueError(f"existing_emails: {email!r} is not an email")
    return out


def check_count(count: int, emails: list[str]) -> int:
    """How many persons the account holds: ``existing_persons``, at least one per given email."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError("existing_persons must be an integer >= 0")
    return max(count, len(emails))


def read_emails(path: str | Path) -> list[str]:
    """An emails file: one email per line; surrounding whitespace dropped, blank lines skipped."""
    with open(path, encoding="utf-8") as handle:
        return [line.strip() for line in handle if line.strip()]


def _stamp(row: Row, now: float, monotonic: float, added_age: float, updated_age: float) -> None:
    touch(row, now - added_age, created=True)  # created, then updated:
    row["_updated"] = now - updated_age
    row["update_time"] = rfc3339(row["_updated"])
    row["_touched"] = monotonic - updated_age  # indexed for search when last updated


def seed_existing(persons: Table, organizations: Table, count: int, emails: list[str], seed: int,
                  now: float) -> None:
    """Add ``count`` persons (the first ones with ``emails``) and their organizations to the tables."""
    if count > 0:
        _seed(persons, organizations, count, emails, random.Random(seed), now)


def _seed(persons: Table, organizations: Table, count: int, emails: list[str], rng: random.Random,
          now: float) -> None:
    monotonic = time.monotonic()
    ages = sorted((rng.uniform(MIN_AGE, MAX_AGE) for _ in range(count)), reverse=True)  # oldest first
    drafts = []  # (number, body, added age, updated age, linked)
    for number, added_age in enumerate(ages, start=1):
        entries = [{"value": emails[number - 1] if number <= len(emails) else synthetic_email(number),
                    "primary": True}]
        if rng.random() < SECOND_EMAIL_SHARE:
            entries.append({"value": second_email(number), "primary": False, "label": "home"})
        body = {"name": f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}", "emails": entries}
        linked = rng.random() < LINKED_SHARE
        drafts.append((number, body, added_age, rng.uniform(MIN_AGE, added_age), linked))

    linked = [draft for draft in drafts if draft[4]]
    slots = [k % math.ceil(len(linked) / PERSONS_PER_ORGANIZATION) for k in range(len(linked))] if linked else []
    rng.shuffle(slots)
    members: dict[int, list[tuple]] = {}
    for slot, draft in zip(slots, linked):
        members.setdefault(slot, []).append(draft)
    org_ages = {slot: min(max(draft[2] for draft in group) + rng.uniform(0, 86400), MAX_AGE)
                for slot, group in members.items()}
    for number, slot in enumerate(sorted(org_ages, key=lambda slot: (-org_ages[slot], slot)), start=1):
        org = people.new_organization(organizations.new_id(), {"name": organization_name(number)})
        _stamp(org, now, monotonic, org_ages[slot], rng.uniform(MIN_AGE, org_ages[slot]))
        organizations.add(org)
        for draft in members[slot]:
            draft[1]["org_id"] = org["id"]

    for _number, body, added_age, updated_age, _linked in drafts:
        person = people.new_person(persons.new_id())
        people.apply_person(person, body)
        _stamp(person, now, monotonic, added_age, updated_age)
        persons.add(person)
