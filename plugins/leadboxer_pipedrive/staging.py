"""Frames between tasks go to object storage (a local folder by default, S3/GCS/... in production),
and only their paths travel in XCom, so the metadata database stays small and tasks may run on
different workers (give them a shared ``LEADBOXER_PIPEDRIVE_STAGING_URL`` such as ``s3://bucket/lbpd``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


def staging_root(url: str | None = None):
    from airflow.sdk import ObjectStoragePath

    url = url or os.environ.get("LEADBOXER_PIPEDRIVE_STAGING_URL")
    if not url:
        home = Path(os.environ.get("AIRFLOW_HOME", Path.home() / "airflow"))
        url = f"file://{home / 'leadboxer_pipedrive_staging'}"
    return ObjectStoragePath(url)


def run_folder(root, dag_id: str, run_id: str, *, create: bool = True):
    """The run's folder under ``root`` (made unless ``create`` is false)."""
    safe_run = re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)
    folder = root / dag_id / safe_run
    if create:
        folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_frame(frame: pd.DataFrame, path) -> str:
    with path.open("wb") as handle:
        frame.to_parquet(handle, index=False)
    return str(path)


def read_frame(path: str) -> pd.DataFrame:
    import pandas as pd
    from airflow.sdk import ObjectStoragePath

    with ObjectStoragePath(path).open("rb") as handle:
        return pd.read_parquet(handle)
