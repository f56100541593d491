"""Pushes activity rows: person, organization and deal resolved once per email, then one activity per
event, each recorded in the ledger as soon as Pipedrive has created it."""

from __future__ import annotations

from typing import Any

import pandas as pd

from leadboxer_pipedrive.exceptions import ApiRequestError, SyncConfigurationError
from leadboxer_pipedrive.loading.common import LoadResult, LoadSettings, refuse_rows
from leadboxer_pipedrive.loading.resolver import Person, PipedriveResolver


class ActivityLoader:
    """Loads the activity rows of one run. ``pipedrive`` is a PipedriveHook, ``ledger`` a LedgerHook."""

    def __init__(self, pipedrive, ledger, settings: LoadSettings) -> None:
        self.pipedrive = pipedrive
        self.ledger = ledger
        self.settings = settings

    def load(self, activities: pd.DataFrame) -> LoadResult:
        result = LoadResult(received=len(activities))
        if activities.empty:
            return result
        done = self.ledger.pushed_event_ids(self.settings.dataset_id, activities["event_id"].tolist())
        result.already_pushed = int(activities["event_id"].isin(done).sum())
        todo = activities[~activities["event_id"].isin(done)]
        if todo.empty:
            return result
        self._check_activity_types(set(todo["type"].unique()))
        resolver = PipedriveResolver(self.pipedrive, self.ledger, result.counts)
        resolver.preload(todo["email"].unique().tolist(), todo["org_key"].dropna().unique().tolist())

        for email, rows in todo.groupby("email", sort=True):
            facts = rows.iloc[0]
            try:
                person = resolver.person(email, facts)
                deal_id = resolver.open_deal(person, facts, self.settings.pipeline_id)
            except ApiRequestError as exc:
                refuse_rows(self.ledger, self.settings, result, rows, "event", "event_id",
                            f"Pipedrive refused the person/organization/deal: {exc.detail}")
                continue
            for row in rows.itertuples(index=False):
                self._push_activity(row, person, deal_id, result)
        return result

    def _push_activity(self, row: Any, person: Person, deal_id: int | None, result: LoadResult) -> None:
        try:
            activity = self.pipedrive.create_activity(activity_payload(row, person, deal_id))
        except ApiRequestError as exc:
            refuse_rows(self.ledger, self.settings, result, pd.DataFrame([row._asdict()]), "event", "event_id",
                        f"Pipedrive refused the activity: {exc.detail}")
            return
        self.ledger.record_pushed_event(
            dataset_id=self.settings.dataset_id, event_id=row.event_id, use_id=row.use_id,
            activity_id=activity["id"], person_id=person.person_id, org_id=person.org_id, deal_id=deal_id,
            event_time=f"{row.due_date}T{row.due_time}", run_id=self.settings.run_id)
        result.pushed += 1

    def _check_activity_types(self, wanted: set[str]) -> None:
        available = {t.get("key_string") for t in self.pipedrive.list_activity_types() if t.get("active_flag", True)}
        missing = wanted - available
        if missing:
            raise SyncConfigurationError(
                f"activity type(s) {sorted(missing)} do not exist in Pipedrive; available: "
                f"{sorted(a for a in available if a)} (set the DAG's activity_type Param)")


def activity_payload(row: Any, person: Person, deal_id: int | None) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "subject": row.subject,
        "type": row.type,
        "due_date": row.due_date,
        "due_time": row.due_time,
        "done": bool(row.done),
        "note": row.note,
        "participants": [{"person_id": int(person.person_id), "primary": True}],
    }
    if person.org_id:
        payload["org_id"] = int(person.org_id)
    if deal_id:
        payload["deal_id"] = int(deal_id)
    return payload
