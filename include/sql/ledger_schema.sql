-- The sync ledger: what this package has pushed to Pipedrive, and why it set rows aside.
-- Portable SQL: runs unchanged on SQLite (>= 3.24) and PostgreSQL. Statements are separated by ";".

-- LeadBoxer email (trimmed, lower-case) -> Pipedrive person, and the organization it is linked to.
CREATE TABLE IF NOT EXISTS lbpd_person (
    email       TEXT PRIMARY KEY,
    person_id   BIGINT NOT NULL,
    org_id      BIGINT,
    updated_at  TEXT NOT NULL
);

-- Organization key ("domain:acme.com" or "name:acme bv") -> Pipedrive organization.
CREATE TABLE IF NOT EXISTS lbpd_organization (
    org_key     TEXT PRIMARY KEY,
    org_id      BIGINT NOT NULL,
    name        TEXT,
    updated_at  TEXT NOT NULL
);

-- Pipedrive person -> the open deal its activities are linked to.
CREATE TABLE IF NOT EXISTS lbpd_deal (
    person_id   BIGINT PRIMARY KEY,
    deal_id     BIGINT NOT NULL,
    pipeline_id BIGINT,
    updated_at  TEXT NOT NULL
);

-- Every LeadBoxer event pushed, with the activity it became: a re-run never pushes it again.
CREATE TABLE IF NOT EXISTS lbpd_pushed_event (
    dataset_id  TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    use_id      TEXT,
    activity_id BIGINT NOT NULL,
    person_id   BIGINT,
    org_id      BIGINT,
    deal_id     BIGINT,
    event_time  TEXT,
    run_id      TEXT,
    pushed_at   TEXT NOT NULL,
    PRIMARY KEY (dataset_id, event_id)
);

-- Rows set aside, with the reason, per run. outcome: "invalid" (failed our validation: never sent),
-- "rejected" (Pipedrive refused it: queued in lbpd_retry for later runs) or "quarantined" (refused
-- too often: no more retries until someone looks).
CREATE TABLE IF NOT EXISTS lbpd_rejected_row (
    dag_id      TEXT NOT NULL,
    run_id      TEXT NOT NULL,
    entity      TEXT NOT NULL,
    record_id   TEXT NOT NULL,
    use_id      TEXT,
    email       TEXT,
    outcome     TEXT NOT NULL DEFAULT 'invalid',
    reason      TEXT NOT NULL,
    record      TEXT,
    rejected_at TEXT NOT NULL,
    PRIMARY KEY (dag_id, run_id, entity, record_id, reason)
);
-- A DAG's rejected rows, newest first (the dashboard). (email was added later: the ledger hook adds it to
-- older ledgers, LedgerHook.added_columns.)
CREATE INDEX IF NOT EXISTS lbpd_rejected_row_by_dag ON lbpd_rejected_row (dag_id, rejected_at);

-- One row per DAG run: the counts its summary printed.
CREATE TABLE IF NOT EXISTS lbpd_run (
    dag_id          TEXT NOT NULL,
    run_id          TEXT NOT NULL,
    interval_start  TEXT,
    interval_end    TEXT,
    extracted       BIGINT,
    pushed          BIGINT,
    already_pushed  BIGINT,
    rejected        BIGINT,
    tokens_spent    BIGINT,
    rate_limited    BIGINT,
    summary         TEXT,
    finished_at     TEXT NOT NULL,
    PRIMARY KEY (dag_id, run_id)
);
-- A DAG's runs, newest first (the dashboard API).
CREATE INDEX IF NOT EXISTS lbpd_run_by_dag ON lbpd_run (dag_id, finished_at);
-- Tokens spent per day (the budget check and the dashboard's budget chart).
CREATE INDEX IF NOT EXISTS lbpd_run_by_time ON lbpd_run (finished_at);

-- LeadBoxer lead -> the Pipedrive lead it became, with a fingerprint of what was last sent, so an
-- unchanged lead costs nothing and a changed one is updated, never duplicated.
CREATE TABLE IF NOT EXISTS lbpd_lead (
    dataset_id  TEXT NOT NULL,
    use_id      TEXT NOT NULL,
    lead_id     TEXT NOT NULL,
    person_id   BIGINT,
    org_id      BIGINT,
    fingerprint TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (dataset_id, use_id)
);

-- Claims: who is creating which Pipedrive record right now. A run claims a key ("person:jane@acme.com",
-- "org:domain:acme.com", "deal:42", "event:ds:e1", "lead:ds:u1") before it searches or creates, and
-- releases it once the id is in the ledger, so two runs never create the same record. A claim left by
-- a killed task marks a create that may have happened: whoever takes it over reconciles first. The
-- holder is one thread of one try of a task instance, on one machine and process.
-- (lbpd_claim, which held the holder as one text, is no longer used.)
CREATE TABLE IF NOT EXISTS lbpd_create_claim (
    claim_key   TEXT PRIMARY KEY,
    dag_id      TEXT NOT NULL,
    run_id      TEXT NOT NULL,
    task_id     TEXT NOT NULL,
    try_number  INTEGER NOT NULL,
    hostname    TEXT NOT NULL,
    pid         INTEGER NOT NULL,
    thread_id   BIGINT NOT NULL,
    claimed_ms  BIGINT NOT NULL
);

-- LeadBoxer lead -> the email it last had and the person it resolved to: when a lead's email changes,
-- the new email is added to that person instead of creating a second one.
CREATE TABLE IF NOT EXISTS lbpd_identity (
    dataset_id  TEXT NOT NULL,
    use_id      TEXT NOT NULL,
    email       TEXT NOT NULL,
    person_id   BIGINT NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (dataset_id, use_id)
);

-- Rows Pipedrive refused, kept whole so later runs retry them; quarantined after too many refusals.
CREATE TABLE IF NOT EXISTS lbpd_retry (
    dataset_id  TEXT NOT NULL,
    entity      TEXT NOT NULL,
    record_id   TEXT NOT NULL,
    payload     TEXT NOT NULL,
    attempts    BIGINT NOT NULL,
    last_error  TEXT NOT NULL,
    status      TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (dataset_id, entity, record_id)
);

-- Quarantined rows put back in the retry queue from the dashboard: who did it and when (the row's
-- attempts and Pipedrive's last message at that moment are kept with it). Never deleted.
CREATE TABLE IF NOT EXISTS lbpd_redrive (
    dataset_id  TEXT NOT NULL,
    entity      TEXT NOT NULL,
    record_id   TEXT NOT NULL,
    dag_id      TEXT NOT NULL,
    redriven_by TEXT NOT NULL,
    attempts    BIGINT NOT NULL,
    last_error  TEXT NOT NULL,
    redriven_at TEXT NOT NULL,
    PRIMARY KEY (dataset_id, entity, record_id, redriven_at)
);

-- Small facts worth remembering between runs (e.g. "activity type task exists, checked at ...").
CREATE TABLE IF NOT EXISTS lbpd_fact (
    fact_key    TEXT PRIMARY KEY,
    fact_value  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

-- What the extract read from LeadBoxer that can no longer change (a lead's sessions once the lead has
-- been quiet past LeadBoxer's session timeout, a session's events once it ended), so a backfill reads
-- each only once. read_key: "sessions/<use_id>/<last seen ms>" or "events/<session_id>/<ended ms>";
-- body: the records as JSON. Entries older than the extract's read_cache_hours are ignored and deleted.
CREATE TABLE IF NOT EXISTS lbpd_leadboxer_read (
    dataset_id  TEXT NOT NULL,
    read_key    TEXT NOT NULL,
    body        TEXT NOT NULL,
    read_at     TEXT NOT NULL,
    PRIMARY KEY (dataset_id, read_key)
);

CREATE INDEX IF NOT EXISTS lbpd_leadboxer_read_age ON lbpd_leadboxer_read (dataset_id, read_at);

-- What the sync last wrote to (or found kept by someone in) each field of a Pipedrive record it keeps
-- current: a field is written again only when LeadBoxer's fact changes, and a value someone typed in
-- Pipedrive is never overwritten. value: the JSON of the value considered; outcome: written or kept.
CREATE TABLE IF NOT EXISTS lbpd_record_field (
    entity      TEXT NOT NULL,
    record_id   BIGINT NOT NULL,
    field_key   TEXT NOT NULL,
    value       TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (entity, record_id, field_key)
);

-- The account index (loading.account_index): what the Pipedrive account holds, read from its v2 lists by
-- update time, so a run finds persons and organizations without searching. A person under every email it
-- holds (lower-cased), with its organization; an organization under "name:<trimmed, case-folded name>"
-- and, when a domain field is mapped, "domain:<field code>:<value>". A key may name several records: the lowest id
-- wins, as in the search path. How far each list has been read is a fact ("account_index:<entity>").
CREATE TABLE IF NOT EXISTS lbpd_index_person (
    email       TEXT NOT NULL,
    person_id   BIGINT NOT NULL,
    org_id      BIGINT,
    PRIMARY KEY (email, person_id)
);

CREATE INDEX IF NOT EXISTS lbpd_index_person_by_id ON lbpd_index_person (person_id);

CREATE TABLE IF NOT EXISTS lbpd_index_organization (
    org_key     TEXT NOT NULL,
    org_id      BIGINT NOT NULL,
    PRIMARY KEY (org_key, org_id)
);

CREATE INDEX IF NOT EXISTS lbpd_index_organization_by_id ON lbpd_index_organization (org_id);
