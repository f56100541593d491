"""Pipedrive sandbox: a loopback HTTP server that answers like Pipedrive's API v2 (and v1 for leads).

See ``sandbox/README.md`` ("Pipedrive sandbox") for flags, control endpoints and fault rules.
"""

from sandbox.pipedrive.app import DEFAULT_DAILY_BUDGET, DEFAULT_TOKEN, PipedriveApp
from sandbox.pipedrive.costs import COSTS
from sandbox.pipedrive.server import PipedriveSandbox

__all__ = ["COSTS", "DEFAULT_DAILY_BUDGET", "DEFAULT_TOKEN", "PipedriveApp", "PipedriveSandbox"]
