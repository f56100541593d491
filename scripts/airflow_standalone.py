"""`make airflow`: Airflow standalone on SQLite with our DAGs and plugins, connections to sandboxes.

Starts both sandboxes on free ports, then runs ``airflow standalone`` (UI on http://localhost:8080;
Airflow prints the admin password) with ``AIRFLOW_CONN_*`` pointing at them. Ctrl-C stops everything.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from scripts.sandboxes import airflow_env, running_sandboxes

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    home = Path(os.environ.get("AIRFLOW_HOME", ROOT / ".airflow" / "home"))
    home.mkdir(parents=True, exist_ok=True)
    env = airflow_env(home)
    with running_sandboxes() as sandboxes:
        env.update(sandboxes.connection_env())
        print(f"Pipedrive sandbox {sandboxes.pipedrive_url} (state: {sandboxes.pipedrive_url}/_sandbox/state)")
        print(f"LeadBoxer sandbox {sandboxes.leadboxer_url}")
        print("Trigger leadboxer_pipedrive_activities with a logical date such as 2026-11-20T06:00:00Z to sync "
              "the sandbox's generated hour [05:00, 06:00).", flush=True)
        try:
            return subprocess.call([str(Path(sys.executable).parent / "airflow"), "standalone"], env=env, cwd=ROOT)
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    sys.exit(main())
