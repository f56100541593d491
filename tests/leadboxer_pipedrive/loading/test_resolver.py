"""create_or_reconcile: a create whose outcome is unknown is looked for before it is made again."""

from __future__ import annotations

import pytest

from leadboxer_pipedrive.exceptions import AmbiguousWriteError
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
