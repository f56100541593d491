"""LeadBoxer v1 REST stand-in: ``LeadBoxerSandbox`` (thread) or ``python -m sandbox.leadboxer`` (process)."""

from sandbox.leadboxer.app import LeadBoxerApp, LeadBoxerSandbox
from sandbox.leadboxer.generator import DEFAULT_SEGMENT_ID, DEFAULT_SITE, generate_dataset, synced_events

__all__ = ["DEFAULT_SEGMENT_ID", "DEFAULT_SITE", "LeadBoxerApp", "LeadBoxerSandbox", "generate_dataset",
           "synced_events"]
