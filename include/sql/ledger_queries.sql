-- Named queries of the sync ledger (see ledger_schema.sql). Each block starts with "-- name: NAME".
-- Parameters use SQLAlchemy's ":name" style, so the same text runs on SQLite and PostgreSQL.

-- name: person_by_email
SELECT email, person_id, org_id FROM lbpd_person WHERE email IN :emails;

-- name: upsert_person
INSERT INTO lbpd_person (email, person_id, org_id, updated_at)
VALUES (:email, :person_id, :org_id, :now)
ON CONFLICT (email) DO UPDATE SET person_id = excluded.person_id, org_id = excluded.org_id,
                                  updated_at = excluded.updated_at;

-- name: organization_by_key
SELECT org_key, org_id, name FROM lbpd_organization WHERE org_key IN :org_keys;

-- name: upsert_organization
INSERT INTO lbpd_organization (org_key, org_id, name, updated_at)
VALUES (:org_key, :org_id, :name, :now)
ON CONFLICT (org_key) DO UPDATE SET org_id = excluded.org_id, name = excluded.name,
                                    updated_at = excluded.updated_at;

-- name: deal_by_person
SELECT person_id, deal_id, pipeline_id FROM lbpd_deal WHERE person_id IN :person_ids;

-- name: upsert_deal
INSERT INTO lbpd_deal (person_id, deal_id, pipeline_id, updated_at)
VALUES (:person_id, :deal_id, :pipeline_id, :now)
ON CONFLICT (person_id) DO UPDATE SET deal_id = excluded.deal_id, pipeline_id = excluded.pipeline_id,
                                      updated_at = excluded.updated_at;

-- name: pushed_event_ids
SELECT event_id FROM lbpd_pushed_event WHERE dataset_id = :dataset_id AND event_id IN :event_ids;

-- name: insert_pushed_event
INSERT INTO lbpd_pushed_event (dataset_id, event_id, use_id, activity_id, person_id, org_id, deal_id,
                               event_time, run_id, pushed_at)
VALUES (:dataset_id, :event_id, :use_id, :activity_id, :person_id, :org_id, :deal_id,
        :event_time, :run_id, :now)
ON CONFLICT (dataset_id, event_id) DO NOTHING;

-- name: insert_rejected_row
INSERT INTO lbpd_rejected_row (dag_id, run_id, entity, record_id, use_id, email, outcome, reason, record,
                               rejected_at)
VALUES (:dag_id, :run_id, :entity, :record_id, :use_id, :email, :outcome, :reason, :record, :now)
ON CONFLICT (dag_id, run_id, entity, record_id, reason) DO NOTHING;

-- name: rejected_rows_of_run
SELECT entity, record_id, use_id, outcome, reason FROM lbpd_rejected_row
WHERE dag_id = :dag_id AND run_id = :run_id ORDER BY entity, record_id, reason;

-- name: upsert_run
INSERT INTO lbpd_run (dag_id, run_id, interval_start, interval_end, extracted, pushed, already_pushed,
                      rejected, tokens_spent, rate_limited, summary, finished_at)
VALUES (:dag_id, :run_id, :interval_start, :interval_end, :extracted, :pushed, :already_pushed,
        :rejected, :tokens_spent, :rate_limited, :summary, :now)
ON CONFLICT (dag_id, run_id) DO UPDATE SET
    extracted = excluded.extracted, pushed = excluded.pushed, already_pushed = excluded.already_pushed,
    rejected = excluded.rejected, tokens_spent = excluded.tokens_spent,
    rate_limited = excluded.rate_limited, summary = excluded.summary, finished_at = excluded.finished_at;

-- name: runs_of_dag
SELECT run_id, interval_start, interval_end, extracted, pushed, already_pushed, rejected, tokens_spent,
       rate_limited, summary, finished_at
FROM lbpd_run WHERE dag_id = :dag_id ORDER BY finished_at DESC, interval_end DESC LIMIT :limit;

-- name: rejected_rows_of_dag
-- The dashboard's rejected rows: each filter applies when given (NULL: any; the CAST tells PostgreSQL its type).
SELECT run_id, entity, record_id, use_id, email, outcome, reason, rejected_at FROM lbpd_rejected_row
WHERE dag_id = :dag_id AND (CAST(:run_id AS TEXT) IS NULL OR run_id = :run_id) AND (CAST(:reason AS TEXT) IS NULL OR reason = :reason)
    AND (CAST(:entity AS TEXT) IS NULL OR entity = :entity) AND (CAST(:email AS TEXT) IS NULL OR email = :email)
ORDER BY rejected_at DESC, run_id DESC, entity, record_id LIMIT :limit OFFSET :offset;

-- name: count_rejected_rows_of_dag
SELECT COUNT(*) AS matching FROM lbpd_rejected_row
WHERE dag_id = :dag_id AND (CAST(:run_id AS TEXT) IS NULL OR run_id = :run_id) AND (CAST(:reason AS TEXT) IS NULL OR reason = :reason)
    AND (CAST(:entity AS TEXT) IS NULL OR entity = :entity) AND (CAST(:email AS TEXT) IS NULL OR email = :email);

-- name: rejection_kinds_of_dag
SELECT entity, reason, COUNT(*) AS row_count FROM lbpd_rejected_row WHERE dag_id = :dag_id
GROUP BY entity, reason ORDER BY row_count DESC;

-- name: retries_of_datasets
SELECT dataset_id, entity, record_id, payload, attempts, last_error, status, updated_at FROM lbpd_retry
WHERE dataset_id IN :dataset_ids AND entity IN :entities ORDER BY status DESC, updated_at DESC LIMIT :limit;

-- name: redrive_retry
UPDATE lbpd_retry SET status = 'pending', updated_at = :now
WHERE dataset_id = :dataset_id AND entity = :entity AND record_id = :record_id AND status = 'quarantined';

-- name: insert_redrive
INSERT INTO lbpd_redrive (dataset_id, entity, record_id, dag_id, redriven_by, attempts, last_error, redriven_at)
SELECT dataset_id, entity, record_id, :dag_id, :redriven_by, attempts, last_error, :now FROM lbpd_retry
WHERE dataset_id = :dataset_id AND entity = :entity AND record_id = :record_id AND status = 'quarantined';

-- name: redrives_of_dag
SELECT dataset_id, entity, record_id, redriven_by, attempts, last_error, redriven_at FROM lbpd_redrive
WHERE dag_id = :dag_id ORDER BY redriven_at DESC LIMIT :limit;

-- name: tokens_by_day
SELECT SUBSTR(finished_at, 1, 10) AS day, SUM(tokens_spent) AS tokens FROM lbpd_run
WHERE finished_at >= :since GROUP BY SUBSTR(finished_at, 1, 10) ORDER BY day;

-- name: recent_runs
SELECT dag_id, run_id, interval_start, interval_end, extracted, pushed, already_pushed, rejected,
       tokens_spent, rate_limited, finished_at
FROM lbpd_run ORDER BY finished_at DESC LIMIT :limit;

-- name: leads_by_use_id
SELECT use_id, lead_id, person_id, org_id, fingerprint FROM lbpd_lead
WHERE dataset_id = :dataset_id AND use_id IN :use_ids;

-- name: upsert_lead
INSERT INTO lbpd_lead (dataset_id, use_id, lead_id, person_id, org_id, fingerprint, updated_at)
VALUES (:dataset_id, :use_id, :lead_id, :person_id, :org_id, :fingerprint, :now)
ON CONFLICT (dataset_id, use_id) DO UPDATE SET lead_id = excluded.lead_id, person_id = excluded.person_id,
    org_id = excluded.org_id, fingerprint = excluded.fingerprint, updated_at = excluded.updated_at;

-- name: insert_claim
INSERT INTO lbpd_create_claim (claim_key, dag_id, run_id, task_id, try_number, hostname, pid, thread_id, claimed_ms)
VALUES (:claim_key, :dag_id, :run_id, :task_id, :try_number, :hostname, :pid, :thread_id, :claimed_ms)
ON CONFLICT (claim_key) DO NOTHING;

-- name: claim_by_key
SELECT claim_key, dag_id, run_id, task_id, try_number, hostname, pid, thread_id, claimed_ms
FROM lbpd_create_claim WHERE claim_key = :claim_key;

-- name: take_over_claim
UPDATE lbpd_create_claim SET dag_id = :dag_id, run_id = :run_id, task_id = :task_id, try_number = :try_number,
    hostname = :hostname, pid = :pid, thread_id = :thread_id, claimed_ms = :claimed_ms
WHERE claim_key = :claim_key AND claimed_ms = :previous_claimed_ms AND hostname = :previous_hostname
    AND pid = :previous_pid AND thread_id = :previous_thread_id;

-- name: release_claim
DELETE FROM lbpd_create_claim WHERE claim_key = :claim_key AND hostname = :hostname AND pid = :pid
    AND thread_id = :thread_id;

-- name: forget_person
DELETE FROM lbpd_person WHERE email = :email AND person_id = :person_id;

-- name: forget_organization
DELETE FROM lbpd_organization WHERE org_key = :org_key AND org_id = :org_id;

-- name: forget_deal
DELETE FROM lbpd_deal WHERE person_id = :person_id AND deal_id = :deal_id;

-- name: identities_by_use_id
SELECT use_id, email, person_id FROM lbpd_identity WHERE dataset_id = :dataset_id AND use_id IN :use_ids;

-- name: upsert_identity
INSERT INTO lbpd_identity (dataset_id, use_id, email, person_id, updated_at)
VALUES (:dataset_id, :use_id, :email, :person_id, :now)
ON CONFLICT (dataset_id, use_id) DO UPDATE SET email = excluded.email, person_id = excluded.person_id,
                                              updated_at = excluded.updated_at;

-- name: tokens_spent_since
SELECT COALESCE(SUM(tokens_spent), 0) AS tokens FROM lbpd_run WHERE finished_at >= :since;

-- name: retries_by_status
SELECT record_id, payload, attempts, last_error FROM lbpd_retry
WHERE dataset_id = :dataset_id AND entity = :entity AND status = :status ORDER BY record_id;

-- name: retry_attempts
SELECT record_id, attempts FROM lbpd_retry
WHERE dataset_id = :dataset_id AND entity = :entity AND record_id IN :record_ids;

-- name: upsert_retry
INSERT INTO lbpd_retry (dataset_id, entity, record_id, payload, attempts, last_error, status, updated_at)
VALUES (:dataset_id, :entity, :record_id, :payload, :attempts, :last_error, :status, :now)
ON CONFLICT (dataset_id, entity, record_id) DO UPDATE SET payload = excluded.payload,
    attempts = excluded.attempts, last_error = excluded.last_error, status = excluded.status,
    updated_at = excluded.updated_at;

-- name: delete_retries
DELETE FROM lbpd_retry WHERE dataset_id = :dataset_id AND entity = :entity AND record_id IN :record_ids;

-- name: fact_by_key
SELECT fact_key, fact_value, updated_at FROM lbpd_fact WHERE fact_key = :fact_key;

-- name: upsert_fact
INSERT INTO lbpd_fact (fact_key, fact_value, updated_at) VALUES (:fact_key, :fact_value, :now)
ON CONFLICT (fact_key) DO UPDATE SET fact_value = excluded.fact_value, updated_at = excluded.updated_at;

-- name: leadboxer_reads
SELECT read_key, body FROM lbpd_leadboxer_read
WHERE dataset_id = :dataset_id AND read_at >= :since AND read_key IN :read_keys;

-- name: insert_leadboxer_read
INSERT INTO lbpd_leadboxer_read (dataset_id, read_key, body, read_at)
VALUES (:dataset_id, :read_key, :body, :now)
ON CONFLICT (dataset_id, read_key) DO UPDATE SET body = excluded.body, read_at = excluded.read_at;

-- name: delete_leadboxer_reads_before
DELETE FROM lbpd_leadboxer_read WHERE dataset_id = :dataset_id AND read_at < :before;

-- name: record_fields_by_ids
SELECT entity, record_id, field_key, value, outcome FROM lbpd_record_field
WHERE entity = :entity AND record_id IN :record_ids;

-- name: upsert_record_field
INSERT INTO lbpd_record_field (entity, record_id, field_key, value, outcome, updated_at)
VALUES (:entity, :record_id, :field_key, :value, :outcome, :now)
ON CONFLICT (entity, record_id, field_key) DO UPDATE SET value = excluded.value, outcome = excluded.outcome,
    updated_at = excluded.updated_at;

-- name: indexed_persons
SELECT email AS index_key, person_id AS record_id, org_id FROM lbpd_index_person WHERE email IN :index_keys
ORDER BY person_id;

-- name: indexed_organizations
SELECT org_key AS index_key, org_id AS record_id FROM lbpd_index_organization WHERE org_key IN :index_keys
ORDER BY org_id;

-- name: unindex_person
DELETE FROM lbpd_index_person WHERE person_id = :record_id;

-- name: unindex_organization
DELETE FROM lbpd_index_organization WHERE org_id = :record_id;

-- name: index_person
INSERT INTO lbpd_index_person (email, person_id, org_id) VALUES (:index_key, :record_id, :org_id)
ON CONFLICT (email, person_id) DO UPDATE SET org_id = excluded.org_id;

-- name: index_organization
INSERT INTO lbpd_index_organization (org_key, org_id) VALUES (:index_key, :record_id)
ON CONFLICT (org_key, org_id) DO NOTHING;
