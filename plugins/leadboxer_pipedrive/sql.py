"""Reads the SQL files of ``include/sql``: whole scripts, or "-- name: X" blocks of named queries."""

from __future__ import annotations

import os
import re
from functools import cache
from pathlib import Path

_NAME_RE = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


def sql_dir() -> Path:
    """``include/sql`` beside ``plugins/`` (override with ``LEADBOXER_PIPEDRIVE_SQL_DIR``)."""
    override = os.environ.get("LEADBOXER_PIPEDRIVE_SQL_DIR")
    return Path(override) if override else Path(__file__).resolve().parents[2] / "include" / "sql"


def split_statements(script: str) -> list[str]:
    """Statements of a script, comments dropped (the DDL holds no ';' inside literals)."""
    lines = [line for line in script.splitlines() if not line.lstrip().startswith("--")]
    return [stmt.strip() for stmt in "\n".join(lines).split(";") if stmt.strip()]


@cache
def load_script(filename: str) -> tuple[str, ...]:
    return tuple(split_statements((sql_dir() / filename).read_text()))


@cache
def load_named_queries(filename: str) -> dict[str, str]:
    text = (sql_dir() / filename).read_text()
    parts = _NAME_RE.split(text)
    queries = {}
    for name, body in zip(parts[1::2], parts[2::2]):
        statements = split_statements(body)
        if len(statements) != 1:
            raise ValueError(f"{filename}: query {name!r} must hold exactly one statement")
        queries[name] = statements[0]
    return queries
