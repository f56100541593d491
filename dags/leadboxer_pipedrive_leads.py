"""
### LeadBoxer → Pipedrive: leads sync

Every hour, on the hour, for the data interval that just ended: each lead of the LeadBoxer segment
that was active in the interval becomes exactly one Pipedrive lead, linked as `link_to` says:

- `organization`: the lead's organization (found by exact name, else created);
- `person`: the person with the lead's email (found, else created); a lead without a known email is
  rejected with that reason, never pushed with a made-up person;
- `both`: the organization, and the person where an email is known, the person linked to the
  organization. A lead with an organization but no email becomes an organization-only lead; a lead with
  an email but no organization a person-only lead; a lead with neither is rejected.

A known lead whose facts changed (organization identified later, email learned, score changed) is
updated and re-linked, never duplicated: the ledger maps each LeadBoxer `use_id` to its Pipedrive lead.
LeadBoxer's lead score reaches the title and a score label (Hot/Warm/Cold by default); lead score,
lead-card link, first and last channel, visits and country can be mapped onto Pipedrive custom fields
(`custom_fields` Param: fact → field name; leads use the deal fields).

Tasks: **preflight** (both connections answer; the segment, labels and fields exist: a setting that
cannot work fails here, at once, naming what to fix) → **extract** → **validate** → **transform** → **load**.

**Trying it on the sandboxes** (`make airflow`): trigger it with the logical date
`2026-11-20T06:00:00+00:00`, which syncs [05:00, 06:00) of the sandbox's generated day (a manual run's
logical date is its interval's end; the form's default, now, finds nothing there). Leave "Unpause" off
when triggering: an unpaused DAG also runs every hour for the hour that just ended.

Failures alert through `LeadBoxerPipedriveFailureNotifier` (the log by default; see the README,
"Alerts"). The DAG is built by `leadboxer_pipedrive.dag_factory`, shared with the generated integration DAGs.
"""

from __future__ import annotations

from leadboxer_pipedrive.dag_factory import build_leads_dag  # an Airflow DAG (DAG discovery safe mode)

dag = build_leads_dag(
    "leadboxer_pipedrive_leads",
    description="LeadBoxer segment leads → Pipedrive leads, hourly",
    doc_md=__doc__,
)
