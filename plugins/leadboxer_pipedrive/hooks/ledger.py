"""The sync ledger: Pipedrive ids known for LeadBoxer records, events pushed, rows set aside, runs."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.providers.common.sql.hooks.sql import DbApiHook
from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException
from sqlalchemy import bindparam, create_engine, event, text
from sqlalchemy.engine import Engine

from leadboxer_pipedrive.sql import load_named_queries, load_script

if TYPE_CHECKING:
    from leadboxer_pipedrive.loading.claims import ClaimOwner

# IN-lists are sent in chunks: SQLite allows 32,766 parameters, and shorter lists plan faster anyway.
_CHUNK = 900


class LedgerHook(BaseHook):
    """The ledger tables in the SQL database of an Airflow connection, reached through that connection's
    own hook (``Connection.get_hook()``: ``SqliteHook``, ``PostgresHook``, both ``DbApiHook``).

    Supported: ``conn_type`` ``sqlite`` (``host`` = the file path) and ``postgres``; any other type fails
    at the first use naming the two. When the connection ``leadboxer_pipedrive_ledger`` is not defined,
    the ledger is a SQLite file in ``$AIRFLOW_HOME`` (fine for one machine; give every worker the same
    PostgreSQL connection in production).
    """

    conn_name_attr = "ledger_conn_id"
    default_conn_name = "leadboxer_pipedrive_ledger"
    conn_type = "sqlite"
    hook_name = "LeadBoxer-Pipedrive ledger"

    schema_file = "ledger_schema.sql"
    queries_file = "ledger_queries.sql"
    default_sqlite_name = "leadboxer_pipedrive_ledger.sqlite"
    supported_dialects = ("sqlite", "postgresql")
    # Columns added to tables after their first release: (table, column, SQL type), added where missing.
    added_columns = (("lbpd_rejected_row", "email", "TEXT"),)

    def __init__(self, ledger_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ledger_conn_id = ledger_conn_id
        self._engine: Engine | None = None
        self._schema_ready = False
        # Threads of one task share the hook: one engine, one schema check.
        self._lock = threading.Lock()
        self._schema_lock = threading.Lock()

    # -- connection -------------------------------------------------------------------------------
    def get_conn(self) -> Engine:
        with self._lock:
            if self._engine is None:
                self._engine = self._new_engine()
            return self._engine

    def _new_engine(self) -> Engine:
        try:
            conn = self.get_connection(self.ledger_conn_id)
        except AirflowNotFoundException:
            path = Path(os.environ.get("AIRFLOW_HOME", Path.home() / "airflow")) / self.default_sqlite_name
            self.log.info("Connection %r is not defined: using the SQLite ledger %s", self.ledger_conn_id, path)
            return _sqlite_engine(f"sqlite:///{path}")
        unsupported = (f"ledger connection {self.ledger_conn_id!r}: conn_type {conn.conn_type!r} is not supported "
                       "(use sqlite or postgres)")
        try:
            db_hook = conn.get_hook()
        except Exception as exc:  # noqa: BLE001 - an unknown type, or its provider is not installed
            raise ValueError(f"{unsupported}: {exc}") from None
        dialect = db_hook.dialect_name if isinstance(db_hook, DbApiHook) else None
        if dialect not in self.supported_dialects:
            raise ValueError(unsupported)
        if dialect == "sqlite":
            return _sqlite_engine(db_hook.get_uri())
        return db_hook.get_sqlalchemy_engine(engine_kwargs={"pool_pre_ping": True})

    def ensure_schema(self) -> None:
        if self._schema_ready:
            return
        with self._schema_lock:
            if self._schema_ready:
                return
            engine = self.get_conn()
            with engine.begin() as connection:
                if engine.dialect.name == "postgresql":
                    # Concurrent CREATE TABLE IF NOT EXISTS can still collide in PostgreSQL's catalog:
                    # let one creator at a time in (the lock ends with the transaction).
                    connection.execute(text("SELECT pg_advisory_xact_lock(7201962)"))
                for statement in load_script(self.schema_file):
                    connection.execute(text(statement))
                self._add_missing_columns(connection)
            self._schema_ready = True

    def _add_missing_columns(self, connection) -> None:
        """A ledger created by an earlier version gets the columns added since (``added_columns``)."""
        from sqlalchemy import inspect

        inspector = inspect(connection)
        for table, column, sql_type in self.added_columns:
            if column not in {c["name"] for c in inspector.get_columns(table)}:
                connection.execute(text(f"ALTER TABLE {table} ADD COLUMN {column} {sql_type}"))

    def test_connection(self) -> tuple[bool, str]:
        try:
            self.ensure_schema()
        except Exception as exc:  # noqa: BLE001 - the UI shows the message
            return False, str(exc)
        return True, "Ledger reachable and its tables exist"

    # -- generic access ---------------------------------------------------------------------------
    def _statement(self, name: str, expanding: Sequence[str] = ()):
        statement = text(load_named_queries(self.queries_file)[name])
        if expanding:
            statement = statement.bindparams(*(bindparam(key, expanding=True) for key in expanding))
        return statement

    def fetch(self, name: str, **params: Any) -> list[dict[str, Any]]:
        self.ensure_schema()
        with self.get_conn().connect() as connection:
            return [dict(row._mapping) for row in connection.execute(self._statement(name), params)]

    def fetch_in(self, name: str, key: str, values: Iterable[Any], **params: Any) -> list[dict[str, Any]]:
        """Run a query with ``IN :key``, chunking the values."""
        self.ensure_schema()
        values = list(dict.fromkeys(values))
        statement = self._statement(name, expanding=[key])
        rows: list[dict[str, Any]] = []
        with self.get_conn().connect() as connection:
            for start in range(0, len(values), _CHUNK):
                chunk = values[start:start + _CHUNK]
                rows.extend(dict(r._mapping) for r in connection.execute(statement, {**params, key: chunk}))
        return rows

    def write(self, name: str, rows: dict[str, Any] | list[dict[str, Any]]) -> int:
        """Run a named write for one row or many; return how many rows it changed."""
        self.ensure_schema()
        rows = [rows] if isinstance(rows, dict) else rows
        if not rows:
            return 0
        now = _now()
        with self.get_conn().begin() as connection:
            result = connection.execute(self._statement(name), [{"now": now, **row} for row in rows])
            return result.rowcount

    # -- typed access -----------------------------------------------------------------------------
    def persons_by_email(self, emails: Iterable[str]) -> dict[str, dict[str, Any]]:
        return {row["email"]: row for row in self.fetch_in("person_by_email", "emails", emails)}

    def remember_person(self, email: str, person_id: int, org_id: int | None) -> None:
        self.write("upsert_person", {"email": email, "person_id": person_id, "org_id": org_id})

    def organizations_by_key(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        return {row["org_key"]: row for row in self.fetch_in("organization_by_key", "org_keys", keys)}

    def remember_organization(self, org_key: str, org_id: int, name: str | None) -> None:
        self.write("upsert_organization", {"org_key": org_key, "org_id": org_id, "name": name})

    def deals_by_person(self, person_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        return {row["person_id"]: row for row in self.fetch_in("deal_by_person", "person_ids", person_ids)}

    def remember_deal(self, person_id: int, deal_id: int, pipeline_id: int | None) -> None:
        self.write("upsert_deal", {"person_id": person_id, "deal_id": deal_id, "pipeline_id": pipeline_id})

    def pushed_event_ids(self, dataset_id: str, event_ids: Iterable[str]) -> set[str]:
        rows = self.fetch_in("pushed_event_ids", "event_ids", event_ids, dataset_id=dataset_id)
        return {row["event_id"] for row in rows}

    def record_pushed_event(self, **row: Any) -> None:
        self.write("insert_pushed_event", row)

    def record_pushed_events(self, rows: list[dict[str, Any]]) -> None:
        """Several events at once, in one transaction (a digest activity covers many)."""
        self.write("insert_pushed_event", rows)

    def record_fields(self, entity: str, record_ids: Iterable[int]) -> dict[int, dict[str, dict[str, Any]]]:
        """What the sync last wrote (or found kept) in each field of these records: id → field → row."""
        fields: dict[int, dict[str, dict[str, Any]]] = {}
        for row in self.fetch_in("record_fields_by_ids", "record_ids", record_ids, entity=entity):
            fields.setdefault(int(row["record_id"]), {})[row["field_key"]] = row
        return fields

    def remember_record_fields(self, rows: list[dict[str, Any]]) -> None:
        """Rows of entity, record_id, field_key, value (JSON) and outcome (written or kept)."""
        self.write("upsert_record_field", rows)

    def leads_by_use_id(self, dataset_id: str, use_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        rows = self.fetch_in("leads_by_use_id", "use_ids", use_ids, dataset_id=dataset_id)
        return {row["use_id"]: row for row in rows}

    def remember_lead(self, **row: Any) -> None:
        self.write("upsert_lead", row)

    def record_rejections(self, rows: list[dict[str, Any]]) -> None:
        """Rows of dag_id, run_id, entity, record_id, use_id, outcome, reason, record and, where the row has
        one, email (by the extract's email rule, ``frames.clean_email``: the dashboard filters by it)."""
        from leadboxer_pipedrive.frames import clean_email

        self.write("insert_rejected_row", [{**row, "email": clean_email(row.get("email"))} for row in rows])

    # -- retries of rows Pipedrive refused ----------------------------------------------------------
    def retries(self, dataset_id: str, entity: str, status: str = "pending") -> list[dict[str, Any]]:
        return self.fetch("retries_by_status", dataset_id=dataset_id, entity=entity, status=status)

    def retry_attempts(self, dataset_id: str, entity: str, record_ids: Iterable[str]) -> dict[str, int]:
        rows = self.fetch_in("retry_attempts", "record_ids", record_ids, dataset_id=dataset_id, entity=entity)
        return {row["record_id"]: int(row["attempts"]) for row in rows}

    def queue_retries(self, rows: list[dict[str, Any]]) -> None:
        self.write("upsert_retry", rows)

    def clear_retries(self, dataset_id: str, entity: str, record_ids: Iterable[str]) -> None:
        record_ids = list(dict.fromkeys(record_ids))
        if not record_ids:
            return
        self.ensure_schema()
        statement = self._statement("delete_retries", expanding=["record_ids"])
        with self.get_conn().begin() as connection:
            for start in range(0, len(record_ids), _CHUNK):
                connection.execute(statement, {"dataset_id": dataset_id, "entity": entity,
                                               "record_ids": record_ids[start:start + _CHUNK]})

    def rejected_rows(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return self.fetch("rejected_rows_of_run", dag_id=dag_id, run_id=run_id)

    # -- the dashboard ------------------------------------------------------------------------------
    def rejected_rows_of_dag(self, dag_id: str, *, run_id: str | None = None, reason: str | None = None,
                             entity: str | None = None, email: str | None = None, limit: int = 50,
                             offset: int = 0) -> tuple[int, list[dict[str, Any]]]:
        """(how many of the DAG's rejected rows match the filters, the page of them from ``offset``),
        newest first; a filter left None matches anything."""
        filters = {"dag_id": dag_id, "run_id": run_id, "reason": reason, "entity": entity, "email": email}
        matching = int(self.fetch("count_rejected_rows_of_dag", **filters)[0]["matching"])
        return matching, self.fetch("rejected_rows_of_dag", **filters, limit=limit, offset=offset)

    def rejection_kinds(self, dag_id: str) -> list[dict[str, Any]]:
        """The DAG's rejected rows counted by entity and reason (``row_count``), most first."""
        return self.fetch("rejection_kinds_of_dag", dag_id=dag_id)

    def retries_of(self, dataset_ids: Iterable[str], entities: Iterable[str], limit: int = 200) -> list[dict[str, Any]]:
        """Queued and quarantined rows of these datasets and entities, pending first, newest first."""
        dataset_ids, entities = list(dataset_ids), list(entities)
        if not dataset_ids or not entities:
            return []
        self.ensure_schema()
        statement = self._statement("retries_of_datasets", expanding=["dataset_ids", "entities"])
        with self.get_conn().connect() as connection:
            return [dict(row._mapping) for row in connection.execute(
                statement, {"dataset_ids": dataset_ids, "entities": entities, "limit": limit})]

    def redrive(self, rows: list[dict[str, Any]], dag_id: str, user: str) -> int:
        """Put quarantined rows (``dataset_id``, ``entity``, ``record_id``) back in the retry queue, recording
        who and when in ``lbpd_redrive``, in one transaction; rows not quarantined are left as they are.
        Returns how many were put back."""
        self.ensure_schema()
        now = _now()
        redriven = 0
        with self.get_conn().begin() as connection:
            for row in rows:
                key = {"dataset_id": row["dataset_id"], "entity": row["entity"], "record_id": row["record_id"]}
                connection.execute(self._statement("insert_redrive"),
                                   {**key, "dag_id": dag_id, "redriven_by": user, "now": now})
                redriven += connection.execute(self._statement("redrive_retry"), {**key, "now": now}).rowcount
        return redriven

    def redrives(self, dag_id: str, limit: int = 50) -> list[dict[str, Any]]:
        return self.fetch("redrives_of_dag", dag_id=dag_id, limit=limit)

    def tokens_by_day(self, since_iso: str) -> dict[str, int]:
        """Tokens the ledger's runs spent per UTC day (YYYY-MM-DD) since ``since_iso``."""
        return {row["day"]: int(row["tokens"]) for row in self.fetch("tokens_by_day", since=since_iso)}

    def identities_by_use_id(self, dataset_id: str, use_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        rows = self.fetch_in("identities_by_use_id", "use_ids", use_ids, dataset_id=dataset_id)
        return {row["use_id"]: row for row in rows}

    def remember_identity(self, dataset_id: str, use_id: str, email: str, person_id: int) -> None:
        self.write("upsert_identity", {"dataset_id": dataset_id, "use_id": use_id, "email": email,
                                       "person_id": person_id})

    def fresh_fact(self, key: str, max_age_seconds: float) -> str | None:
        """A remembered fact's value, if it was written less than ``max_age_seconds`` ago."""
        rows = self.fetch("fact_by_key", fact_key=key)
        if not rows:
            return None
        age = (datetime.now(timezone.utc) - datetime.fromisoformat(rows[0]["updated_at"])).total_seconds()
        return rows[0]["fact_value"] if age < max_age_seconds else None

    def remember_fact(self, key: str, value: str) -> None:
        self.write("upsert_fact", {"fact_key": key, "fact_value": value})

    # -- LeadBoxer reads kept between runs (the extract's ReadCache) -------------------------------
    def leadboxer_reads(self, dataset_id: str, read_keys: Iterable[str], since_iso: str) -> dict[str, str]:
        """The bodies of those reads kept since ``since_iso``, by key."""
        rows = self.fetch_in("leadboxer_reads", "read_keys", read_keys, dataset_id=dataset_id, since=since_iso)
        return {row["read_key"]: row["body"] for row in rows}

    def remember_leadboxer_reads(self, dataset_id: str, bodies: dict[str, str]) -> None:
        self.write("insert_leadboxer_read", [{"dataset_id": dataset_id, "read_key": key, "body": body}
                                             for key, body in bodies.items()])

    def forget_leadboxer_reads(self, dataset_id: str, before_iso: str) -> None:
        """Delete the dataset's kept reads older than ``before_iso``."""
        self.write("delete_leadboxer_reads_before", {"dataset_id": dataset_id, "before": before_iso})

    # -- claims -----------------------------------------------------------------------------------
    def insert_claim(self, claim_key: str, owner: ClaimOwner, claimed_ms: int) -> bool:
        return self.write("insert_claim", {"claim_key": claim_key, **owner.as_row(), "claimed_ms": claimed_ms}) == 1

    def get_claim(self, claim_key: str) -> tuple[ClaimOwner, int] | None:
        """The claim's holder and when it was taken (epoch ms), or None when nobody holds it."""
        from leadboxer_pipedrive.loading.claims import ClaimOwner

        rows = self.fetch("claim_by_key", claim_key=claim_key)
        return (ClaimOwner.from_row(rows[0]), int(rows[0]["claimed_ms"])) if rows else None

    def take_over_claim(self, claim_key: str, owner: ClaimOwner, previous: ClaimOwner, previous_claimed_ms: int,
                        claimed_ms: int) -> bool:
        return self.write("take_over_claim", {
            "claim_key": claim_key, **owner.as_row(), "claimed_ms": claimed_ms,
            "previous_claimed_ms": previous_claimed_ms, "previous_hostname": previous.hostname,
            "previous_pid": previous.pid, "previous_thread_id": previous.thread_id}) == 1

    def release_claim(self, claim_key: str, owner: ClaimOwner) -> None:
        self.write("release_claim", {"claim_key": claim_key, "hostname": owner.hostname, "pid": owner.pid,
                                     "thread_id": owner.thread_id})

    # -- the account index (loading.account_index) ---------------------------------------------------
    def indexed(self, entity: str, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The lowest-id ``entity`` ("person" or "organization") of the account index under each key
        found: ``{key: {"index_key", "record_id", "org_id" (persons)}}``."""
        found: dict[str, dict[str, Any]] = {}
        for row in self.fetch_in(f"indexed_{entity}s", "index_keys", keys):
            found.setdefault(row["index_key"], row)
        return found

    def index_records(self, entity: str, record_ids: Iterable[int], rows: list[dict[str, Any]]) -> None:
        """Replace what the index holds of these records by ``rows`` (``index_key``, ``record_id``, and
        ``org_id`` for persons), in one transaction."""
        self.ensure_schema()
        with self.get_conn().begin() as connection:
            ids = [{"record_id": int(record_id)} for record_id in record_ids]
            if ids:
                connection.execute(self._statement(f"unindex_{entity}"), ids)
            if rows:
                connection.execute(self._statement(f"index_{entity}"), rows)

    def unindex(self, entity: str, record_id: int) -> None:
        """Drop a record Pipedrive no longer has (deleted or merged) from the account index."""
        self.write(f"unindex_{entity}", {"record_id": int(record_id)})

    def forget(self, what: str, **key: Any) -> None:
        """Drop a mapping found stale (the record was deleted or merged in Pipedrive)."""
        self.write(f"forget_{what}", key)

    def record_run(self, **row: Any) -> None:
        self.write("upsert_run", row)

    def tokens_spent_since(self, since_iso: str) -> int:
        return int(self.fetch("tokens_spent_since", since=since_iso)[0]["tokens"])

    def runs_of_dag(self, dag_id: str, limit: int = 48) -> list[dict[str, Any]]:
        """The DAG's last ``limit`` runs, newest first, with their summaries (JSON text)."""
        return self.fetch("runs_of_dag", dag_id=dag_id, limit=limit)

    def recent_runs(self, limit: int = 20) -> list[dict[str, Any]]:
        return self.fetch("recent_runs", limit=limit)


def _sqlite_engine(url: str) -> Engine:
    """Loads write from several threads, and runs from several processes: wait for locks instead of
    failing, and let readers work while one writer writes (WAL). The write lock is taken when a
    transaction starts: a read that later upgrades to a write fails at once under WAL ("database is
    locked") instead of waiting its turn."""
    engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})
    event.listen(engine, "connect", _sqlite_pragmas)
    event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
    return engine


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    import sqlite3

    dbapi_connection.isolation_level = None  # transactions are begun by the "begin" listener
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=60000")
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
    except sqlite3.OperationalError:
        pass  # another connection is switching it right now; it stays WAL once switched
    cursor.close()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
