"""When a leads run reads the whole segment, what its progress says, and how much of it a budget takes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from leadboxer_pipedrive.operators.common import largest_affordable
from leadboxer_pipedrive.segment_sync import progress, record_progress, scope_of_run

NOW = datetime(2026, 11, 20, 6, tzinfo=timezone.utc)


class Facts:
    """The ledger's facts, in memory."""

    def __init__(self):
        self.facts = {}

    def fresh_fact(self, key, max_age_seconds):
        return self.facts.get(key)

    def remember_fact(self, key, value):
        self.facts[key] = value


def test_auto_reads_the_segment_first_then_the_hour_until_segment_sync_hours_have_passed():
    ledger = Facts()
    assert scope_of_run(ledger, "ds", 1, now=NOW) == ("segment", "first run of this dataset and segment")
    record_progress(ledger, "ds", 1, members=300, in_pipedrive=300, left=0, left_tokens=0, now=NOW)
    assert scope_of_run(ledger, "ds", 1, every_hours=24, now=NOW + timedelta(hours=23))[0] == "hour"
    assert scope_of_run(ledger, "ds", 1, every_hours=24, now=NOW + timedelta(hours=24))[0] == "segment"
    assert scope_of_run(ledger, "ds", 1, every_hours=0, now=NOW + timedelta(days=30))[0] == "hour"  # off
    assert scope_of_run(ledger, "ds", 2, now=NOW)[0] == "segment"  # another segment: its own first run


def test_an_unfinished_sync_carries_on_whatever_the_schedule_and_keeps_its_last_completion():
    ledger = Facts()
    record_progress(ledger, "ds", 1, members=300, in_pipedrive=300, left=0, left_tokens=0, now=NOW)
    later = NOW + timedelta(days=1)
    state = record_progress(ledger, "ds", 1, members=310, in_pipedrive=305, left=5, left_tokens=75, now=later)
    assert state.completed_at == NOW.isoformat(timespec="seconds")
    assert state.describe() == "305 of 310 members in Pipedrive; 5 left for the next runs (about 75 tokens)"
    assert scope_of_run(ledger, "ds", 1, every_hours=0, now=later) == (
        "segment", "the whole-segment sync is unfinished (5 members left)")
    assert progress(ledger, "ds", 1).left == 5


@pytest.mark.parametrize("requested", ["hour", "segment"])
def test_a_scope_asked_for_is_obeyed(requested):
    assert scope_of_run(Facts(), "ds", 1, requested, now=NOW)[0] == requested


def test_an_unknown_scope_is_refused():
    with pytest.raises(ValueError, match="scope must be one of auto, hour, segment, not 'all'"):
        scope_of_run(Facts(), "ds", 1, "all")


@pytest.mark.parametrize("allowance, taken", [(0, 0), (9, 0), (10, 1), (35, 3), (1_000, 10)])
def test_a_budget_takes_the_longest_prefix_it_can_pay_for(allowance, taken):
    assert largest_affordable(10, lambda n: 10 * n + (5 if n > 2 else 0), allowance) == taken


class Budget:
    """A Pipedrive hook's budget settings and a ledger's spend today."""

    def __init__(self, budget, share, spent):
        self.settings, self.spent = (budget, share), spent

    def budget_settings(self):
        return self.settings

    def tokens_spent_since(self, since_iso):
        assert since_iso == "2026-11-20T00:00:00+00:00"
        return self.spent


@pytest.mark.parametrize("budget, share, spent, allowance", [
    (None, 1.0, 0, None), (10_000, 0.1, 0, 1_000), (10_000, 0.1, 9_500, 500), (10_000, 1.0, 12_000, 0)])
def test_a_run_may_spend_its_share_of_the_budget_at_most_what_is_left_today(budget, share, spent, allowance):
    from leadboxer_pipedrive.operators.common import budget_allowance

    hooks = Budget(budget, share, spent)
    assert budget_allowance(hooks, hooks, now=NOW) == allowance


def test_a_run_over_its_share_fails_and_one_over_what_is_left_today_waits_for_midnight():
    import logging

    from airflow.sdk.exceptions import AirflowFailException, AirflowRescheduleException

    from leadboxer_pipedrive.operators.common import check_budget

    hooks = Budget(10_000, 0.1, 9_500)
    check_budget(hooks, hooks, 400, logging.getLogger(), now=NOW)  # fits both
    with pytest.raises(AirflowFailException, match="over its allowance of 1000"):
        check_budget(hooks, hooks, 1_200, logging.getLogger(), now=NOW)
    with pytest.raises(AirflowRescheduleException) as waiting:
        check_budget(hooks, hooks, 600, logging.getLogger(), now=NOW)
    assert waiting.value.reschedule_date == datetime(2026, 11, 21, 0, 5, tzinfo=timezone.utc)
