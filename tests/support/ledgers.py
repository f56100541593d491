"""A ledger connection for tests: a SQLite file, or a fresh PostgreSQL database (dropped afterwards)
where a server answers on 127.0.0.1:5432; the PostgreSQL variant skips the test otherwise."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def ledger_connection(kind: str, tmp_path: Path) -> Iterator[dict]:
    """The ``AIRFLOW_CONN_*`` JSON of a ledger: ``kind`` is ``sqlite`` or ``postgres``."""
    if kind == "sqlite":
        yield {"conn_type": "sqlite", "host": str(tmp_path / "ledger.sqlite")}
        return
    psycopg2 = pytest.importorskip("psycopg2")
    try:
        admin = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres", connect_timeout=3)
    except psycopg2.OperationalError:
        pytest.skip("no PostgreSQL on 127.0.0.1:5432")
    admin.autocommit = True
    name = f"lbpd_test_{uuid.uuid4().hex[:8]}"
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name}")
    try:
        yield {"conn_type": "postgres", "host": "127.0.0.1", "port": 5432, "login": "postgres", "schema": name}
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE {name} WITH (FORCE)")
        admin.close()
