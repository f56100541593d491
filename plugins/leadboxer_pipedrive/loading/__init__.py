"""Loads transformed rows into Pipedrive through the hooks, remembering every id in the ledger."""

from leadboxer_pipedrive.loading.activities import ActivityLoader
from leadboxer_pipedrive.loading.common import LoadResult, LoadSettings
from leadboxer_pipedrive.loading.leads import LeadLoader
from leadboxer_pipedrive.loading.resolver import Person, PipedriveResolver

__all__ = ["ActivityLoader", "LeadLoader", "LoadResult", "LoadSettings", "Person", "PipedriveResolver"]
