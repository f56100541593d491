"""Fixtures for the tests against real services: PostgreSQL and Redis on 127.0.0.1 (skipped when either
does not answer), fresh databases dropped at the end, and a flushed Redis database (the sandboxes come
from tests/conftest.py)."""

from __future__ import annotations

import os
import uuid

import pytest

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
# A Redis database number of its own (Airflow's docker-compose uses 0); flushed before and after.
REDIS_DB = int(os.environ.get("LBPD_SERVICES_REDIS_DB", "7"))


@pytest.fixture
def postgres_databases():
    """A factory of fresh, uniquely named PostgreSQL databases; all of them are dropped at the end
    (WITH (FORCE): a component left behind by a failed test must not keep one alive)."""
    psycopg2 = pytest.importorskip("psycopg2")
    try:
        admin = psycopg2.connect(dbname="postgres", connect_timeout=3, **PG)
    except psycopg2.OperationalError as exc:
        pytest.skip(f"no PostgreSQL on 127.0.0.1:5432: {exc}")
    admin.autocommit = True
    created: list[str] = []

    def create(prefix: str) -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        return name

    try:
        yield create
    finally:
        try:
            with admin.cursor() as cursor:
                for name in created:
                    cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            admin.close()


@pytest.fixture
def redis_db():
    """The Redis database number the Celery broker uses, empty before and after the test."""
    redis = pytest.importorskip("redis")
    client = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB, socket_timeout=5, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"no Redis on 127.0.0.1:6379: {exc}")
    client.flushdb()
    try:
        yield REDIS_DB
    finally:
        try:
            client.flushdb()
        finally:
            client.close()
