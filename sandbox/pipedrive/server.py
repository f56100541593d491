"""``PipedriveSandbox``: the Pipedrive sandbox app on a loopback ``SandboxServer``."""

from __future__ import annotations

from typing import Any

from sandbox.common import SandboxServer
from sandbox.pipedrive.app import (
    DEFAULT_DAILY_BUDGET,
    DEFAULT_OAUTH_CLIENT_ID,
    DEFAULT_OAUTH_CLIENT_SECRET,
    DEFAULT_OAUTH_REFRESH_TOKEN,
    DEFAULT_OAUTH_TOKEN_TTL,
    DEFAULT_TOKEN,
    PipedriveApp,
)
from sandbox.pipedrive.existing import DEFAULT_SEED


class PipedriveSandbox:
    """A Pipedrive look-alike on ``http://127.0.0.1:<port>``.

    ``with PipedriveSandbox(burst_limit=5).start() as pd: requests.get(pd.url + "/api/v2/deals", ...)``

    ``contact_sync=False``: a company without contact sync (persons have no ``im``, ``postal_address``,
    ``notes``, ``birthday`` nor ``job_title``).

    ``existing_persons=N``: the account starts (and resets) holding N persons, the first ones with the
    ``existing_emails`` given (at least one person per email), about a third of them in organizations
    (see ``sandbox/pipedrive/existing.py``); made in the store, nothing charged. ``seed`` draws them.
    """

    def __init__(self, token: str = DEFAULT_TOKEN, burst_limit: int = 100, search_burst_limit: int = 10,
                 daily_budget: int = DEFAULT_DAILY_BUDGET, search_lag: float = 0.0, latency: float = 0.0,
                 faults: Any = (), port: int = 0, host: str = "127.0.0.1", window: float = 2.0,
                 verbose: bool = False, oauth_client_id: str = DEFAULT_OAUTH_CLIENT_ID,
                 oauth_client_secret: str = DEFAULT_OAUTH_CLIENT_SECRET,
                 oauth_refresh_token: str | None = DEFAULT_OAUTH_REFRESH_TOKEN,
                 oauth_token_ttl: float = DEFAULT_OAUTH_TOKEN_TTL, contact_sync: bool = True,
                 existing_persons: int = 0, existing_emails: list[str] | None = None,
                 seed: int = DEFAULT_SEED) -> None:
        self.token = token
        self.oauth_client_id = oauth_client_id
        self.oauth_client_secret = oauth_client_secret
        self.oauth_refresh_token = oauth_refresh_token
        self.app = PipedriveApp(token=token, burst_limit=burst_limit, search_burst_limit=search_burst_limit,
                                daily_budget=daily_budget, search_lag=search_lag, latency=latency, window=window,
                                faults=faults, oauth_client_id=oauth_client_id,
                                oauth_client_secret=oauth_client_secret, oauth_refresh_token=oauth_refresh_token,
                                oauth_token_ttl=oauth_token_ttl, contact_sync=contact_sync,
                                existing_persons=existing_persons, existing_emails=existing_emails, seed=seed)
        self.server = SandboxServer(self.app, host=host, port=port, verbose=verbose)
        self._started = False

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def headers(self) -> dict[str, str]:
        """Auth header for this sandbox's token."""
        return {"x-api-token": self.token}

    def start(self) -> PipedriveSandbox:
        if not self._started:
            self.server.start()
            self._started = True
        return self

    def serve_forever(self) -> None:
        self.server.serve_forever()

    def stop(self) -> None:
        if self._started:
            self.server.stop()
            self._started = False

    def __enter__(self) -> PipedriveSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def state(self) -> dict[str, Any]:
        return self.app.state()

    def reset(self) -> None:
        self.app.reset()

    def add_fault(self, spec: dict[str, Any]) -> None:
        self.app.faults.add(spec)

    def clear_faults(self) -> None:
        self.app.faults.clear()

    def configure(self, **changes: Any) -> dict[str, Any]:
        return self.app.configure(**changes)

    # OAuth 2 helpers (the token endpoint is ``POST {url}/oauth/token``).
    @property
    def token_url(self) -> str:
        return self.url + "/oauth/token"

    def issue_refresh_token(self, refresh_token: str | None = None) -> str:
        return self.app.issue_refresh_token(refresh_token)

    def revoke_oauth(self) -> None:
        self.app.revoke_oauth()

    def expire_access_tokens(self) -> None:
        self.app.expire_access_tokens()

    def configure_oauth(self, token_ttl: float) -> None:
        self.app.configure_oauth(token_ttl)
