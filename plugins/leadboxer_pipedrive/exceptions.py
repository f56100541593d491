"""Errors raised by the hooks. Messages name the service, method, path and status, never a secret."""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowException, AirflowFailException


class ApiError(AirflowException):
    """A call to LeadBoxer or Pipedrive failed. ``write_may_have_happened``: a create whose outcome is
    unknown preceded it, so the record may exist (claims are kept for the next holder to reconcile)."""

    write_may_have_happened = False

    def __init__(self, service: str, method: str, path: str, status: int | None, detail: str):
        self.service = service
        self.method = method
        self.path = path
        self.status = status
        self.detail = detail
        where = f"{service} {method} {path}"
        super().__init__(f"{where} -> {status if status is not None else 'no answer'}: {detail}")


class TransientApiError(ApiError):
    """Worth retrying: 429, 5xx, timeouts and dropped connections."""

    def __init__(self, *args, retry_after: float | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.retry_after = retry_after


class AmbiguousWriteError(ApiError):
    """A create whose outcome is unknown (timeout, dropped connection, 500/502/504): it may or may not
    have happened. Never retried blindly: the caller looks for the record first (reconcile)."""

    write_may_have_happened = True


class ApiRequestError(ApiError):
    """The service refused the request as given (400, 404, 422...): retrying the same call cannot help."""


class ApiUnreachableError(ApiError, AirflowFailException):
    """The service cannot be reached as configured: its name does not resolve, the connection is refused
    or TLS fails. A configuration error: retrying cannot help, so the task fails at once."""


class ApiAuthError(ApiError, AirflowFailException):
    """401/402/403: the credentials are wrong, revoked or lack permission. Retrying cannot heal that,
    so the task fails at once (and no row is marked refused: the whole run waits for new credentials)."""


class BudgetExhaustedError(ApiError, AirflowFailException):
    """Pipedrive's daily token budget is spent: no retry can succeed before it resets."""


class SyncConfigurationError(AirflowFailException):
    """A setting names something that does not exist (activity type, label, custom field, pipeline):
    retrying cannot help, so the task fails at once with what to change."""
