"""ClaimManager over a real SQLite ledger, with a fake clock."""

from __future__ import annotations

import os

import pytest

from leadboxer_pipedrive.hooks.ledger import LedgerHook
from leadboxer_pipedrive.loading.claims import ClaimManager, ClaimOwner, ClaimTimeout


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


@pytest.fixture
def ledger(ledger_conn):
    return LedgerHook(ledger_conn)


def manager(ledger, clock, run="r1", try_number=1, **kwargs):
    return ClaimManager(ledger, ClaimOwner("dag", run, "load", try_number), clock=clock, sleep=clock.sleep,
                        **kwargs)


def test_a_fresh_claim_is_not_a_takeover_and_is_released(ledger):
    clock = Clock()
    with manager(ledger, clock).claim("person:a@b.co") as takeover:
        assert takeover is None
        assert ledger.get_claim("person:a@b.co") is not None
    assert ledger.get_claim("person:a@b.co") is None


def test_a_retry_of_the_same_task_takes_over_at_once_and_learns_when(ledger):
    clock = Clock()
    first = manager(ledger, clock)
    first._acquire("k", first.owner.in_this_thread())  # then the process dies: never released
    claimed_at = int(clock.now * 1000)
    clock.now += 5
    with manager(ledger, clock, try_number=2).claim("k") as takeover:
        assert takeover == claimed_at


def test_a_takeover_lets_the_holders_last_request_land_before_the_taker_reconciles(ledger):
    clock = Clock()
    first = manager(ledger, clock)
    first._acquire("k", first.owner.in_this_thread())
    with manager(ledger, clock, try_number=2, settle_seconds=8.0).claim("k") as takeover:
        assert takeover is not None and clock.now == 1_000_008.0
    with manager(ledger, clock, try_number=3, settle_seconds=8.0).claim("k") as fresh:
        assert fresh is None and clock.now == 1_000_008.0  # a fresh claim does not wait


def test_another_run_waits_then_times_out_while_the_holder_is_alive(ledger):
    clock = Clock()
    holder = manager(ledger, clock, run="r1")
    holder._acquire("k", holder.owner.in_this_thread())
    with pytest.raises(ClaimTimeout, match="held by dag/r1/load try 1"):
        with manager(ledger, clock, run="r2", wait_timeout=10, stale_after=300).claim("k"):
            pass


def test_another_run_takes_over_an_abandoned_claim_once_stale(ledger):
    clock = Clock()
    holder = manager(ledger, clock, run="r1")
    holder._acquire("k", holder.owner.in_this_thread())
    with manager(ledger, clock, run="r2", wait_timeout=1000, stale_after=60).claim("k") as takeover:
        assert takeover is not None
        assert clock.now >= 1_000_060


def test_a_claim_of_a_dead_process_on_this_machine_is_taken_over_at_once(ledger):
    import subprocess
    import sys
    from dataclasses import replace

    clock = Clock()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    holder = manager(ledger, clock, run="r1")
    owner = replace(holder.owner.in_this_thread(), pid=int(dead.stdout))
    ledger.insert_claim("k", owner, int(clock.now * 1000))
    with manager(ledger, clock, run="r2", wait_timeout=5, stale_after=300).claim("k") as takeover:
        assert takeover is not None and clock.now == 1_000_000.0  # no waiting


def test_a_claim_is_released_only_when_nothing_may_have_been_written(ledger):
    from leadboxer_pipedrive.exceptions import AmbiguousWriteError, TransientApiError

    clock = Clock()
    busy = TransientApiError("Pipedrive", "POST", "/api/v2/persons", 503, "busy")
    with pytest.raises(TransientApiError), manager(ledger, clock).claim("released"):
        raise busy
    assert ledger.get_claim("released") is None
    with pytest.raises(AmbiguousWriteError), manager(ledger, clock).claim("kept"):
        raise AmbiguousWriteError("Pipedrive", "POST", "/api/v2/persons", None, "no answer")
    assert ledger.get_claim("kept") is not None
    first = manager(ledger, clock)
    first._acquire("taken over", first.owner.in_this_thread())  # then the process dies
    with pytest.raises(TransientApiError), manager(ledger, clock, try_number=2).claim("taken over") as takeover:
        assert takeover is not None
        raise busy  # the reconcile's look failed: the next holder must reconcile again
    assert ledger.get_claim("taken over") is not None
    busy.write_may_have_happened = True  # after a create whose outcome is unknown
    with pytest.raises(TransientApiError), manager(ledger, clock).claim("kept too"):
        raise busy
    assert ledger.get_claim("kept too") is not None


def test_a_claims_holder_is_stored_in_columns_the_ledger_can_query(ledger):
    from sqlalchemy import text

    clock = Clock()
    holder = manager(ledger, clock, run="r|1")  # a run id may hold any character
    with holder.claim("person:a@b.co"):
        with ledger.get_conn().connect() as db:
            row = db.execute(text("SELECT run_id, task_id, try_number, pid FROM lbpd_create_claim "
                                  "WHERE claim_key = 'person:a@b.co'")).one()
        assert tuple(row) == ("r|1", holder.owner.task_id, holder.owner.try_number, os.getpid())
        stored, _ = ledger.get_claim("person:a@b.co")
        assert stored == holder.owner.in_this_thread()
