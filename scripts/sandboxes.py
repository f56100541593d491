"""Starts the two sandbox servers as child processes on free loopback ports (demo, UI, benchmarks)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

PIPEDRIVE_TOKEN = "sandbox-token"
LEADBOXER_KEY = "sandbox-key"
ROOT = Path(__file__).resolve().parents[1]
# Warnings the CLI prints that nobody here can act on: `airflow dags test` looks for graphviz (to draw DAGs)
# and Airflow's in-process test client imports a deprecated starlette module.
QUIET_WARNINGS = "ignore:Could not import graphviz,ignore:Using `httpx` with `starlette.testclient`"


def airflow_env(home: Path) -> dict[str, str]:
    """The environment of an Airflow on SQLite in ``home`` with this repository's DAGs and plugins."""
    return {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"), "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "PYTHONPATH": f"{ROOT / 'plugins'}:{ROOT}", "GX_ANALYTICS_ENABLED": "false",
            "LEADBOXER_PIPEDRIVE_STAGING_URL": f"file://{home / 'staging'}",
            "PYTHONWARNINGS": QUIET_WARNINGS,
            # Airflow starts its components as `airflow ...` subprocesses: the venv's first.
            "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}


def _host_and_port(url: str) -> dict[str, str | int]:
    parts = urlsplit(url)
    return {"host": f"{parts.scheme}://{parts.hostname}", "port": parts.port}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Sandboxes:
    pipedrive_url: str
    leadboxer_url: str

    def connections(self, burst_limit: int = 100) -> dict[str, dict]:
        """The Airflow connections (id -> fields) pointing the DAGs at these sandboxes. The port is a field of
        its own, not in the host: Airflow 3.3.2's Test button refuses connections without one."""
        return {
            "pipedrive_default": {"conn_type": "pipedrive", **_host_and_port(self.pipedrive_url),
                                  "password": PIPEDRIVE_TOKEN,
                                  "extra": {"burst_limit": burst_limit, "search_burst_limit": 10}},
            "leadboxer_default": {"conn_type": "leadboxer", **_host_and_port(self.leadboxer_url),
                                  "password": LEADBOXER_KEY},
        }

    def connection_env(self, burst_limit: int = 100) -> dict[str, str]:
        """The same connections as ``AIRFLOW_CONN_*`` variables."""
        return {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(fields)
                for conn_id, fields in self.connections(burst_limit).items()}


def _start(module: str, args: list[str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", module, "--port", str(port), *args],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if "listening on" in line:
            return process, line.rsplit(" ", 1)[-1].strip()
        if process.poll() is not None:
            raise RuntimeError(f"{module} exited with {process.returncode}: {line}")
    process.kill()
    raise RuntimeError(f"{module} did not start within 60 s")


@contextmanager
def running_sandboxes(pipedrive_args: list[str] | None = None, leadboxer_args: list[str] | None = None):
    pipedrive, pipedrive_url = _start("sandbox.pipedrive", pipedrive_args or [])
    try:
        leadboxer, leadboxer_url = _start("sandbox.leadboxer", leadboxer_args or [])
        try:
            yield Sandboxes(pipedrive_url, leadboxer_url)
        finally:
            leadboxer.terminate()
            leadboxer.wait(10)
    finally:
        pipedrive.terminate()
        pipedrive.wait(10)
