"""
### LeadBoxer → Pipedrive: one Airflow DAG per integration in `include/integrations.yaml`

Each valid entry becomes the DAG `leadboxer_pipedrive__<name>` (an activity or leads sync with the
entry's dataset, segment, options, connections, schedule and tags as defaults).

Invalid entries never take the others down: each is logged as a warning naming the entry and the bad
field, and all of them are listed in the DAG `leadboxer_pipedrive__config_errors`, whose only task fails
with that list (so the failure alerts report it). Airflow reports import errors per file, so raising here
would have hidden every integration.

Parsing is cheap: PyYAML and Airflow's SDK only (no pandas, no great-expectations), and the file is read
again only when its modification time changes. `LEADBOXER_PIPEDRIVE_INTEGRATIONS` names another file.
"""

from __future__ import annotations

import logging

from leadboxer_pipedrive.dag_factory import build_config_errors_dag, build_integration_dag
from leadboxer_pipedrive.integrations import load_integrations

log = logging.getLogger(__name__)

_config = load_integrations()
_errors = list(_config.errors)
for _integration in _config.integrations:
    try:
        globals()[_integration.dag_id] = build_integration_dag(_integration)
    except Exception as error:  # e.g. a cron expression Airflow refuses: that entry only
        _errors.append(f"{_config.path}: integration {_integration.name!r}: cannot build its DAG: {error}")
for _error in _errors:
    log.warning("LeadBoxer → Pipedrive integration skipped: %s", _error)
if _errors:
    config_errors_dag = build_config_errors_dag(_errors)
