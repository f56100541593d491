from leadboxer_pipedrive.hooks.leadboxer import LeadBoxerHook
from leadboxer_pipedrive.hooks.ledger import LedgerHook
from leadboxer_pipedrive.hooks.pipedrive import PipedriveHook

__all__ = ["LeadBoxerHook", "LedgerHook", "PipedriveHook"]
