"""
### Example: the hooks on their own — rows from a CSV become Pipedrive activities

Reuse of the package outside the LeadBoxer sync: one `@task` reads rows from another source (here
`include/examples/activities.csv`; a SQL query would do as well) and, with `PipedriveHook` alone,
finds each row's person by email (creating it when missing) and adds the row as an activity with the
person as its participant. `LedgerHook` makes it idempotent: every pushed row is remembered under its
`row_id`, so a re-run pushes nothing twice, and persons already known by email cost no search.

This Airflow DAG has no schedule; trigger it, optionally with another `csv_path` or `source` Param.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from airflow.sdk import Param, dag, task

DEFAULT_CSV = str(Path(__file__).resolve().parents[2] / "include" / "examples" / "activities.csv")


@dag(
    dag_id="leadboxer_pipedrive_example_push_rows",
    description="Example: CSV rows → Pipedrive activities with PipedriveHook and LedgerHook",
    doc_md=__doc__,
    schedule=None,
    start_date=datetime(2026, 11, 1),
    catchup=False,
    max_active_runs=1,
    params={
        "csv_path": Param(DEFAULT_CSV, type="string", description="CSV with row_id, email, name, subject, "
                                                                   "type, due_date, note."),
        "source": Param("example_csv", type="string", minLength=1,
                        description="Name under which pushed rows are remembered in the ledger."),
    },
    tags=["leadboxer", "pipedrive", "example"],
)
def push_rows_as_activities():
    @task
    def push_rows(params=None, run_id=None) -> dict[str, int]:
        import csv

        from leadboxer_pipedrive.hooks.ledger import LedgerHook
        from leadboxer_pipedrive.hooks.pipedrive import PipedriveHook

        pipedrive = PipedriveHook("pipedrive_default")
        ledger = LedgerHook("leadboxer_pipedrive_ledger")
        source = params["source"]
        with open(params["csv_path"], newline="", encoding="utf-8") as handle:
            rows = [row for row in csv.DictReader(handle) if row.get("row_id") and row.get("email")]

        done = ledger.pushed_event_ids(source, [row["row_id"] for row in rows])
        persons = {email: row["person_id"] for email, row in
                   ledger.persons_by_email({r["email"].strip().lower() for r in rows}).items()}
        counts = {"rows": len(rows), "pushed": 0, "already_pushed": 0, "persons_found": 0, "persons_created": 0}
        for row in rows:
            if row["row_id"] in done:
                counts["already_pushed"] += 1
                continue
            email = row["email"].strip().lower()
            if email not in persons:
                person = pipedrive.find_person_by_email(email)
                if person is None:
                    person = pipedrive.create_person({
                        "name": row.get("name") or email,
                        "emails": [{"value": email, "primary": True, "label": "work"}]})
                    counts["persons_created"] += 1
                else:
                    counts["persons_found"] += 1
                persons[email] = person["id"]
                ledger.remember_person(email, person["id"], None)
            activity = pipedrive.create_activity({
                "subject": row["subject"], "type": row.get("type") or "task", "due_date": row["due_date"],
                "done": False, "note": row.get("note") or "",
                "participants": [{"person_id": int(persons[email]), "primary": True}]})
            ledger.record_pushed_event(dataset_id=source, event_id=row["row_id"], use_id=None,
                                       activity_id=activity["id"], person_id=persons[email], org_id=None,
                                       deal_id=None, event_time=row["due_date"], run_id=run_id)
            counts["pushed"] += 1
        counts.update({f"pipedrive_{k}": v for k, v in pipedrive.usage().items()})
        print(f"Pushed {counts['pushed']} of {counts['rows']} rows ({counts['already_pushed']} already pushed)")
        return counts

    push_rows()


push_rows_as_activities()
