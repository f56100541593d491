"""Pushes activity rows: per email, the person, organization and deal are resolved once, then one
activity per event (or, in digest mode, one per lead and hour), each recorded in the ledger as soon as
Pipedrive has created it.

Exactly once: each email's events are pushed under a ledger claim, re-checked against the ledger once
the claim is held, and, when the claim was taken over from a killed task, reconciled with the
activities that task may have created (found by the event-id marker in their notes).
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pandas as pd

from leadboxer_pipedrive.exceptions import ApiRequestError, SyncConfigurationError
from leadboxer_pipedrive.loading.account_index import AccountIndex, searches_needed
from leadboxer_pipedrive.loading.claims import ClaimManager, ClaimOwner
from leadboxer_pipedrive.loading.common import (
    LoadResult,
    LoadSettings,
    defer_rows,
    pending_retries,
    refuse_rows,
    stale_reference,
)
from leadboxer_pipedrive.loading.fields import ENTITIES, mapping_by_entity, sync_fields
from leadboxer_pipedrive.loading.resolver import (
    Person,
    PipedriveResolver,
    in_flight_seconds,
    since_iso,
    update_entity,
)
from leadboxer_pipedrive.loading.updates import ACTIVITY_FACTS, organization_rows, with_last_visit
from leadboxer_pipedrive.transforms import activity_fields, event_ids_in_note

log = logging.getLogger(__name__)

ACTIVITY_MODES = ("per_event", "digest")


class ActivityLoader:
    """Loads the activity rows of one run. ``pipedrive`` is a PipedriveHook, ``ledger`` a LedgerHook."""

    def __init__(self, pipedrive, ledger, settings: LoadSettings, claims: ClaimManager | None = None) -> None:
        if settings.activity_mode not in ACTIVITY_MODES:
            raise SyncConfigurationError(f"activity_mode must be one of {ACTIVITY_MODES}, "
                                         f"not {settings.activity_mode!r}")
        self.pipedrive = pipedrive
        self.ledger = ledger
        self.settings = settings
        self.claims = claims or ClaimManager(ledger, ClaimOwner(settings.dag_id, settings.run_id,
                                                                settings.task_id, settings.try_number),
                                                     settle_seconds=in_flight_seconds(pipedrive))

    def load(self, activities: pd.DataFrame) -> LoadResult:
        """Push this window's rows, retry rows Pipedrive refused in earlier runs, and send again the record
        updates it refused."""
        result = LoadResult(received=len(activities))
        dataset = self.settings.dataset_id
        todo = self._rows_to_push(activities, result)
        queued_updates = any(self.ledger.retries(dataset, update_entity(entity)) for entity in ENTITIES)
        if todo.empty and not queued_updates:
            return result
        # Every field name resolves before anything is written: an unknown one fails the run here.
        fields = sync_fields(self.pipedrive, self.ledger, todo, mapping_by_entity(self.settings.custom_fields),
                             ACTIVITY_FACTS, self.settings.organization_domain_field)
        index = AccountIndex(self.pipedrive, self.ledger, fields.domain_field_code) \
            if self.settings.account_index else None
        resolver = PipedriveResolver(self.pipedrive, self.ledger, result, self.claims, dataset, fields=fields,
                                     max_attempts=self.settings.max_attempts, account_index=index)
        if not todo.empty:
            self._check_activity_types(set(todo["type"].unique()))
            self._load_todo(with_last_visit(todo), result, resolver)
            self.ledger.clear_retries(dataset, "event", result.pushed_ids)
        resolver.retry_refused_updates()
        if index is not None and index.pages_read:
            result.count("account_index_pages", index.pages_read)
        return result

    def _rows_to_push(self, activities: pd.DataFrame, result: LoadResult) -> pd.DataFrame:
        """This window's rows and the refused rows of earlier runs, less those already pushed (counted)."""
        dataset = self.settings.dataset_id
        window = activities.assign(_retry=False)
        retried = pending_retries(self.ledger, self.settings, "event", set(window["event_id"]))
        if not retried.empty:
            result.count("retries_pending", len(retried))
        rows = pd.concat([window, retried], ignore_index=True) if not retried.empty else window
        if rows.empty:
            return rows
        done = self.ledger.pushed_event_ids(dataset, rows["event_id"].tolist())
        already = rows["event_id"].isin(done)
        result.already_pushed = int((already & ~rows["_retry"]).sum())
        self.ledger.clear_retries(dataset, "event", rows.loc[already & rows["_retry"], "event_id"])
        return rows[~already]

    def _load_todo(self, todo: pd.DataFrame, result: LoadResult, resolver: PipedriveResolver) -> None:
        resolver.preload(todo["email"].unique().tolist(), todo["org_key"].dropna().unique().tolist(),
                         todo["use_id"].dropna().unique().tolist())
        if resolver.account_index is not None:
            todo = self._find_in_account(todo, result, resolver)
        # Organizations first, each from its first row by email, so who creates it (and with which
        # spelling of its name) does not depend on thread timing; then the persons the ledger does not
        # know, together, right after the account index was read; then each person's events.
        self._run_concurrently([(self._prefetch_organization, (resolver, facts))
                                for facts in resolver.organizations_needed(todo)])
        new_persons = set(resolver.emails_needed(todo))
        self._run_concurrently([(self._prefetch_person, (resolver, email, rows.iloc[0]))
                                for email, rows in todo.groupby("email", sort=True) if email in new_persons])
        # An organization is kept current from its first row by email, whichever person reaches it first.
        org_facts = {row["org_key"]: row for row in organization_rows(todo)}
        self._run_concurrently([(self._load_person_events, (email, rows, resolver, result, org_facts))
                                for email, rows in todo.groupby("email", sort=True)])

    def _find_in_account(self, todo: pd.DataFrame, result: LoadResult, resolver: PipedriveResolver) -> pd.DataFrame:
        """Read the account index for each entity where that is cheaper than searching this run's keys
        (``account_index``); return the rows to load now: those whose keys a read stopped short of the
        present cannot vouch for wait for a later run."""
        index = resolver.account_index
        emails, organizations = resolver.emails_needed(todo), resolver.organizations_needed(todo)
        unfinished = set()
        for entity, searches in searches_needed(emails, organizations, resolver.domain_field_code).items():
            way = index.way(entity, searches)
            log.info("Finding %ss: %s (%s)", entity, way.kind, way.why)
            if way.kind == "index":
                resolver.use_index(entity)
                if not index.read(entity, way.max_pages):
                    unfinished.add(entity)
        if not unfinished:
            return todo
        persons = index.persons(emails)
        unknown = set(emails) - set(persons) if "person" in unfinished else set()
        if "organization" in unfinished:
            found = index.organization_ids(organizations)
            missing = {facts["org_key"] for facts in organizations if facts["org_key"] not in found}
            firsts = todo.drop_duplicates("email")
            unknown |= {row.email for row in firsts.itertuples(index=False)
                        if row.org_key in missing and (persons.get(row.email) or {}).get("org_id") is None}
        waiting = todo["email"].isin(unknown)
        if waiting.any():
            defer_rows(self.ledger, self.settings, result, todo[waiting], "event", "event_id",
                       "waiting for the account index: its first read (or a catch-up after a pause) has not "
                       "reached this person or organization yet; a later run goes on from where it stopped")
        return todo[~waiting]

    @staticmethod
    def _prefetch_organization(resolver: PipedriveResolver, facts: pd.Series) -> None:
        try:
            resolver.organization(facts)
        except ApiRequestError:
            pass  # refused: the persons needing it meet the refusal again and record it with their rows

    @staticmethod
    def _prefetch_person(resolver: PipedriveResolver, email: str, facts: pd.Series) -> None:
        try:
            resolver.person(email, facts)
        except ApiRequestError:
            pass  # refused: its events meet the refusal again and record it with their rows

    def _run_concurrently(self, calls: list[tuple[Any, tuple]]) -> None:
        workers = max(1, min(int(self.settings.workers), len(calls)))
        if workers == 1:
            for function, args in calls:
                function(*args)
            return
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pipedrive-load") as pool:
            futures = [pool.submit(function, *args) for function, args in calls]
            errors = [f.exception() for f in futures]
        first_error = next((e for e in errors if e is not None), None)
        if first_error is not None:
            raise first_error

    # -- one person's events ----------------------------------------------------------------------
    def _load_person_events(self, email: str, rows: pd.DataFrame, resolver: PipedriveResolver,
                            result: LoadResult, org_facts: dict[str, pd.Series]) -> None:
        dataset = self.settings.dataset_id
        with self.claims.claim(f"activities:{dataset}:{email}") as takeover:
            done = self.ledger.pushed_event_ids(dataset, rows["event_id"].tolist())
            if done:  # another run pushed them while we waited for the claim
                result.count_rows(rows[rows["event_id"].isin(done)], "already_pushed", "retries_already_pushed")
                rows = rows[~rows["event_id"].isin(done)]
            if rows.empty:
                return
            facts = rows.iloc[0]
            try:
                person = resolver.person(email, facts)
                person = resolver.keep_person_current(person, email, facts)
                if facts["org_key"] in org_facts:
                    person = resolver.keep_organization_current(person, email, org_facts[facts["org_key"]])
                deal_id = resolver.open_deal(person, facts, self.settings.pipeline_id)
                deal_id = resolver.keep_deal_current(person, deal_id, facts, self.settings.pipeline_id)
            except ApiRequestError as exc:
                refuse_rows(self.ledger, self.settings, result, rows, "event", "event_id",
                            f"Pipedrive refused the person/organization/deal: {exc.detail}")
                return
            if takeover is not None:
                rows = self._reconcile(rows, person, deal_id, takeover, result)
            for unit in self._units(rows):
                self._push(unit, email, facts, person, deal_id, resolver, result)

    def _units(self, rows: pd.DataFrame) -> list[pd.DataFrame]:
        """What becomes one activity: each event, or each lead's events together (digest)."""
        if self.settings.activity_mode == "digest":
            return [group for _, group in rows.groupby("use_id", sort=False)]
        return [rows.iloc[[i]] for i in range(len(rows))]

    def _reconcile(self, rows: pd.DataFrame, person: Person, deal_id: int | None, since_ms: int,
                   result: LoadResult) -> pd.DataFrame:
        """Record the activities an earlier, killed try created; return the rows still to push."""
        created = {}
        for activity in self.pipedrive.list_activities(person_id=person.person_id,
                                                       updated_since=since_iso(since_ms)):
            for event_id in event_ids_in_note(activity.get("note")):
                created[event_id] = activity["id"]
        found = rows[rows["event_id"].isin(created)]
        if not found.empty:
            self._record(found, None, person, deal_id, activity_ids=[created[e] for e in found["event_id"]])
            result.count_rows(found, "pushed", "retries_pushed")
            result.count("reconciled_activities", len(found))
            result.mark_pushed(found["event_id"])
        return rows[~rows["event_id"].isin(created)]

    def _create_activity(self, unit: pd.DataFrame, person: Person, deal_id: int | None,
                         resolver: PipedriveResolver) -> dict[str, Any]:
        marker = str(unit["event_id"].iloc[0])

        def find(since_ms: int) -> dict[str, Any] | None:
            return next((a for a in self.pipedrive.list_activities(person_id=person.person_id,
                                                                   updated_since=since_iso(since_ms))
                         if marker in event_ids_in_note(a.get("note"))), None)
        return resolver.create_or_reconcile(
            lambda: self.pipedrive.create_activity(activity_payload(unit, person, deal_id)), find)

    def _push(self, unit: pd.DataFrame, email: str, facts: pd.Series, person: Person, deal_id: int | None,
              resolver: PipedriveResolver, result: LoadResult) -> None:
        try:
            activity = self._create_activity(unit, person, deal_id, resolver)
        except ApiRequestError as exc:
            stale = stale_reference(exc.detail)
            if stale is None:
                refuse_rows(self.ledger, self.settings, result, unit, "event", "event_id",
                            f"Pipedrive refused the activity: {exc.detail}")
                return
            # A cached id went stale (deleted or merged in Pipedrive): re-resolve it now, once.
            kind, stale_id = stale
            if kind == "person":
                resolver.forget_person(email, stale_id)
            elif kind == "organization":
                resolver.forget_organization(stale_id)
            if kind in ("person", "deal") and deal_id:
                resolver.forget_deal(person.person_id, deal_id)
            person = resolver.person(email, facts)
            deal_id = resolver.open_deal(person, facts, self.settings.pipeline_id)
            try:
                activity = self._create_activity(unit, person, deal_id, resolver)
            except ApiRequestError as retry_exc:
                refuse_rows(self.ledger, self.settings, result, unit, "event", "event_id",
                            f"Pipedrive refused the activity: {retry_exc.detail}")
                return
        self._record(unit, activity["id"], person, deal_id)
        result.count_rows(unit, "pushed", "retries_pushed")
        result.count("activities_created")
        result.mark_pushed(unit["event_id"])

    def _record(self, unit: pd.DataFrame, activity_id: int | None, person: Person, deal_id: int | None, *,
                activity_ids: list[int] | None = None) -> None:
        ids = activity_ids or [activity_id] * len(unit)
        self.ledger.record_pushed_events([
            {"dataset_id": self.settings.dataset_id, "event_id": row.event_id, "use_id": row.use_id,
             "activity_id": int(act_id), "person_id": person.person_id, "org_id": person.org_id,
             "deal_id": deal_id, "event_time": f"{row.due_date}T{row.due_time}", "run_id": self.settings.run_id}
            for row, act_id in zip(unit.itertuples(index=False), ids)])

    def _check_activity_types(self, wanted: set[str]) -> None:
        check_activity_types(self.pipedrive, self.ledger, wanted)


# Activity types rarely change: checking them once a day keeps a known lead's event at 5 tokens.
ACTIVITY_TYPE_CHECK_SECONDS = 24 * 3600


def check_activity_types(pipedrive, ledger, wanted: set[str]) -> None:
    """A clear error when one of the ``wanted`` activity types does not exist (or is inactive) in Pipedrive;
    each found is remembered in the ledger for a day."""
    unchecked = {t for t in wanted if not ledger.fresh_fact(f"activity_type:{t}", ACTIVITY_TYPE_CHECK_SECONDS)}
    if not unchecked:
        return
    available = {t.get("key_string") for t in pipedrive.list_activity_types() if t.get("active_flag", True)}
    missing = unchecked - available
    if missing:
        raise SyncConfigurationError(
            f"activity type(s) {sorted(missing)} do not exist in Pipedrive; available: "
            f"{sorted(a for a in available if a)} (set the DAG's activity_type Param)")
    for activity_type in unchecked:
        ledger.remember_fact(f"activity_type:{activity_type}", "exists")


def activity_payload(unit: pd.DataFrame, person: Person, deal_id: int | None) -> dict[str, Any]:
    """The v2 activity body for one event, or one digest of a lead's events."""
    fields = activity_fields(unit)
    payload: dict[str, Any] = {
        "subject": fields["subject"],
        "type": fields["type"],
        "due_date": fields["due_date"],
        "due_time": fields["due_time"],
        "done": bool(fields["done"]),
        "note": fields["note"],
        "participants": [{"person_id": int(person.person_id), "primary": True}],
    }
    if person.org_id:
        payload["org_id"] = int(person.org_id)
    if deal_id:
        payload["deal_id"] = int(deal_id)
    return payload
