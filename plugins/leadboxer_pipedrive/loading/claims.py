"""Claims in the ledger: at most one writer creates a given Pipedrive record, across threads, tasks,
runs and machines (the ledger is shared), on SQLite and PostgreSQL alike.

A claim is a row keyed by what is being created. It is inserted before the search-or-create and deleted
once the new id is in the ledger. A claim that outlives its owner (task killed between the create and
the ledger write) is a create that *may* have happened: whoever takes it over must reconcile, i.e. look
in Pipedrive for what the first try created, before creating again. A claim is taken over at once by a
later try of the same task, or by anyone once its process is known dead (same machine) or it is older
than ``stale_after`` (other machines); otherwise other runs wait for it. A takeover waits
``settle_seconds`` before the taker reconciles: a create the holder sent just before it died may still
be running on the server, and must be found, not made again.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from typing import Any

from leadboxer_pipedrive.exceptions import ApiError, TransientApiError


@dataclass(frozen=True)
class ClaimOwner:
    """Who holds a claim: one thread of one try of one task instance, on one machine and process (a row
    of ``lbpd_create_claim``)."""

    dag_id: str
    run_id: str
    task_id: str
    try_number: int
    hostname: str = ""
    pid: int = 0
    thread_id: int = 0

    def in_this_thread(self) -> ClaimOwner:
        """This task try, as held by the calling thread of this process."""
        return replace(self, hostname=socket.gethostname(), pid=os.getpid(), thread_id=threading.get_ident())

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ClaimOwner:
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})

    def as_row(self) -> dict[str, Any]:
        return asdict(self)

    def is_earlier_try_of(self, other: ClaimOwner) -> bool:
        return ((self.dag_id, self.run_id, self.task_id) == (other.dag_id, other.run_id, other.task_id)
                and self.try_number != other.try_number)

    def process_is_gone(self) -> bool:
        """True when the holder ran on this machine and its process no longer exists (killed task)."""
        if self.hostname != socket.gethostname() or self.pid == os.getpid():
            return False  # another machine: only staleness can tell
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    def __str__(self) -> str:
        return (f"{self.dag_id}/{self.run_id}/{self.task_id} try {self.try_number} "
                f"(pid {self.pid} on {self.hostname})")


class ClaimTimeout(TransientApiError):
    """Another live run holds the claim too long; the task retries later."""


class ClaimManager:
    """Takes and releases claims. ``stale_after`` seconds: when a claim counts as abandoned;
    ``settle_seconds``: how long a request of a holder that died may still be landing (see the module)."""

    def __init__(self, ledger, owner: ClaimOwner, *, stale_after: float = 300.0, wait_timeout: float = 120.0,
                 poll_interval: float = 0.1, settle_seconds: float = 0.0, clock=time.time,
                 sleep=time.sleep) -> None:
        self.ledger = ledger
        self.owner = owner
        self.stale_after = stale_after
        self.settle_seconds = settle_seconds
        self.wait_timeout = wait_timeout
        self.poll_interval = poll_interval
        self._clock = clock
        self._sleep = sleep

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    @contextmanager
    def claim(self, key: str) -> Iterator[int | None]:
        """Hold ``key`` for the block.

        Yields None for a fresh claim, or, when it took over an abandoned one, the epoch-ms time that
        claim was taken: the earlier holder may have created the record since then, so reconcile.
        """
        me = self.owner.in_this_thread()
        takeover = self._acquire(key, me)
        try:
            yield takeover
        except ApiError as exc:
            # Pipedrive answered "no" or "not now" (or never got the request): nothing was written, so
            # release. Keep it after a create whose outcome is unknown, or when it was taken over (the
            # reconcile may not have run to the end): whoever takes it next reconciles.
            if not exc.write_may_have_happened and takeover is None:
                self.ledger.release_claim(key, me)
            raise
        except BaseException:
            # Anything else (a crash between a create and its ledger write, a ledger failure): the state
            # is unknown, so keep the claim for the next holder to reconcile.
            raise
        else:
            self.ledger.release_claim(key, me)

    def _acquire(self, key: str, me: ClaimOwner) -> int | None:
        deadline = self._clock() + self.wait_timeout
        while True:
            if self.ledger.insert_claim(key, me, self._now_ms()):
                return None
            held = self.ledger.get_claim(key)
            if held is None:
                continue  # released between our insert and our read: try again at once
            holder, claimed_ms = held
            stale = self._now_ms() - claimed_ms > self.stale_after * 1000 or holder.process_is_gone()
            if holder.is_earlier_try_of(me) or stale:
                if self.ledger.take_over_claim(key, me, holder, claimed_ms, self._now_ms()):
                    self._sleep(self.settle_seconds)  # the holder's last create may still be landing
                    return claimed_ms
                continue  # someone else took it over first
            if self._clock() > deadline:
                raise ClaimTimeout("ledger", "claim", key, None,
                                   f"held by {holder} for over {self.wait_timeout:.0f} s")
            self._sleep(self.poll_interval)
