"""Reads the SQL files of ``include/sql``: whole scripts, or "-- name: X" blocks of named queries."""

from __future__ import annotations

import os
import re
from functools import cache
from pathlib import Path

_NAME_RE = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


def sql_dir() -> Path:
    """Where the SQL files are: ``LEADBOXER_PIPEDRIVE_SQL_DIR`` if set; else ``include/sql`` beside
    ``plugins/`` (the repository, or an Airflow home with ``plugins/`` and ``include/``); else the copy
    an installed distribution carries in ``leadboxer_pipedrive/include/sql`` (put there at build time
    from the repository's ``include/sql``, the only copy kept in the repository)."""
    override = os.environ.get("LEADBOXER_PIPEDRIVE_SQL_DIR")
    if override:
        return Path(override)
    here = Path(__file__).resolve().parent
    beside_plugins = here.parents[1] / "include" / "sql"
    if (beside_plugins / "ledger_schema.sql").is_file():
        return beside_plugins
    return here / "include" / "sql"


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
