"""create_or_reconcile: a create whose outcome is unknown is looked for before it is made again."""

from __future__ import annotations

import pytest

from leadboxer_pipedrive.exceptions import AmbiguousWriteError, ApiAuthError, ApiRequestError, TransientApiError
from leadboxer_pipedrive.loading import resolver
from leadboxer_pipedrive.loading.common import LoadResult


@pytest.fixture
def sleeps(monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(resolver.time, "sleep", slept.append)
    return slept


def creates(*outcomes):
    """A create that raises or returns each outcome in turn, counting its calls."""
    calls = []

    def create():
        outcome = outcomes[len(calls)]
        calls.append(outcome)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome
    return create, calls


def lost_answer(status=None):
    return AmbiguousWriteError("Pipedrive", "POST", "/api/v2/activities", status, "no answer")


def test_a_create_still_running_on_the_server_is_found_by_a_later_look_not_made_twice(sleeps):
    create, calls = creates(lost_answer(), {"id": 99})
    looks = iter([None, None, {"id": 7}])
    found = resolver.create_or_reconcile(create, lambda since: next(looks), LoadResult(), grace_seconds=2.0)
    assert found == {"id": 7} and len(calls) == 1
    assert sleeps == [2.0, 4.0, 8.0]  # one grace period, then two, then four: found on the third look


def test_a_create_never_found_after_every_look_is_made_again(sleeps):
    create, calls = creates(lost_answer(504), {"id": 99})
    result = LoadResult()
    assert resolver.create_or_reconcile(create, lambda since: None, result, grace_seconds=1.0) == {"id": 99}
    assert len(calls) == 2 and sleeps == [1.0, 2.0, 4.0]
    assert result.counts["ambiguous_writes_reconciled"] == 1


def test_after_a_500_the_server_is_done_so_one_look_decides(sleeps):
    create, calls = creates(lost_answer(500), {"id": 99})
    looks = []
    assert resolver.create_or_reconcile(create, lambda since: looks.append(since), LoadResult(), 5.0) == {"id": 99}
    assert len(looks) == 1 and sleeps == [0] and len(calls) == 2


def test_whatever_fails_after_a_create_of_unknown_outcome_leaves_it_unknown(sleeps):
    """A failed look, or a refused second create, must not release the claim: the first create may still
    land, so the next holder has to reconcile. Errors that end the task keep their kind, marked."""
    def failing_look(since):
        raise TransientApiError("Pipedrive", "GET", "/api/v2/activities", 503, "busy")
    create, calls = creates(lost_answer())
    with pytest.raises(AmbiguousWriteError, match="busy.*outcome is unknown") as raised:
        resolver.create_or_reconcile(create, failing_look, LoadResult(), grace_seconds=1.0)
    assert raised.value.write_may_have_happened and len(calls) == 1

    refused = ApiRequestError("Pipedrive", "POST", "/api/v2/activities", 400, "bad deal")
    create, calls = creates(lost_answer(), refused)
    with pytest.raises(AmbiguousWriteError, match="bad deal"):
        resolver.create_or_reconcile(create, lambda since: None, LoadResult(), grace_seconds=1.0)

    revoked = ApiAuthError("Pipedrive", "POST", "/api/v2/activities", 401, "revoked")
    create, calls = creates(lost_answer(), revoked)
    with pytest.raises(ApiAuthError) as raised:
        resolver.create_or_reconcile(create, lambda since: None, LoadResult(), grace_seconds=1.0)
    assert raised.value.write_may_have_happened


def test_a_plain_refusal_is_not_a_write_that_may_have_happened(sleeps):
    refused = ApiRequestError("Pipedrive", "POST", "/api/v2/activities", 400, "bad deal")
    create, _ = creates(refused)
    with pytest.raises(ApiRequestError) as raised:
        resolver.create_or_reconcile(create, lambda since: None, LoadResult(), grace_seconds=1.0)
    assert not raised.value.write_may_have_happened
