"""Fault injection shared by both sandboxes.

A fault rule is a dict (from a ``--fault JSON`` flag at start, or ``POST /_sandbox/faults`` at run time)::

    {"kind": "status", "status": 500, "count": 3, "path": "^/api/v2/persons/search", "method": "GET"}
    {"kind": "slow", "delay": 2.5, "probability": 0.1}
    {"kind": "drop", "count": 1}
    {"kind": "repeat_cursor", "path": "^/api/v2/persons$"}

``kind``: ``status`` answers ``status`` (default 500) with an error body; ``slow`` sleeps ``delay`` seconds
and then answers normally; ``drop`` closes the connection without answering; ``repeat_cursor`` answers
a paged read normally except that its next-page pointer points back at the page just served, so a
client that follows it gets the same page and the same pointer again (a server repeating a cursor):

- Pipedrive v2 lists and searches: ``additional_data.next_cursor`` is the ``cursor`` the request sent,
  or on a first page (no cursor sent) a cursor designating the first page;
- Pipedrive v1 ``start``/``limit`` lists (``/api/v1/leads``, ``/api/v1/leadFields``):
  ``more_items_in_collection`` is true and ``pagination.next_start`` is the request's ``start`` (0 if none);
- LeadBoxer lead, session and event lists: ``nextToken`` is the token the request sent, or on a first
  page a valid token designating the first page.

The pointer is set even on a last (or only) page. Answers that are not paged (single records, unpaged
lists, writes) are unchanged, though the rule still counts them as fired; a ``repeat_cursor`` rule
matches GET requests only unless it names another ``method``.

``count`` (default: unlimited) is how many requests the rule hits before it expires; ``probability``
(default 1.0) makes it random (seeded, so runs repeat); ``path`` is a regex on the URL path and
``method`` an HTTP method; both default to any. ``after`` (default 0) skips that many matching requests
before the rule starts firing. The first live rule that matches a request fires.
"""

from __future__ import annotations

import random
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

KINDS = ("status", "slow", "drop", "repeat_cursor")


@dataclass
class FaultRule:
    kind: str = "status"
    status: int = 500
    delay: float = 0.0
    count: int | None = None
    probability: float = 1.0
    path: str | None = None
    method: str | None = None
    after: int = 0
    fired: int = 0
    seen: int = 0
    _path_re: re.Pattern[str] | None = field(default=None, repr=False)

    @classmethod
    def from_dict(cls, spec: dict[str, Any]) -> FaultRule:
        kind = spec.get("kind", "status")
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}: use status, slow, drop or repeat_cursor")
        method = spec.get("method") or ("GET" if kind == "repeat_cursor" else None)
        rule = cls(
            kind=kind,
            status=int(spec.get("status", 500)),
            delay=float(spec.get("delay", 0.0)),
            count=None if spec.get("count") is None else int(spec["count"]),
            probability=float(spec.get("probability", 1.0)),
            path=spec.get("path"),
            method=method and str(method).upper(),
            after=int(spec.get("after", 0)),
        )
        rule._path_re = re.compile(rule.path) if rule.path else None
        return rule

    @property
    def live(self) -> bool:
        return self.count is None or self.fired < self.count

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "status": self.status, "delay": self.delay, "count": self.count,
                "probability": self.probability, "path": self.path, "method": self.method,
                "after": self.after, "fired": self.fired}


def apply_transport_fault(rule: FaultRule, handler: Any) -> bool:
    """Carry out a ``drop`` or ``slow`` rule; True when the connection was dropped (answer nothing).

    A ``status`` rule is left to the server, which answers in its own service's error shape; a
    ``repeat_cursor`` rule too: it flags the request (``request.repeat_cursor``) for the paging code.
    """
    if rule.kind == "drop":
        handler.close_connection = True
        return True
    if rule.kind == "slow":
        time.sleep(rule.delay)
    return False


class FaultInjector:
    """Thread-safe list of fault rules; ``pick`` returns the rule that fires for a request, if any."""

    def __init__(self, seed: int = 0) -> None:
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()
        self._random = random.Random(seed)

    def add(self, spec: dict[str, Any]) -> FaultRule:
        rule = FaultRule.from_dict(spec)
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[dict[str, Any]]:
        with self._lock:
            return [rule.to_dict() for rule in self._rules]

    def pick(self, method: str, path: str) -> FaultRule | None:
        with self._lock:
            for rule in self._rules:
                if not rule.live:
                    continue
                if rule.method and rule.method != method:
                    continue
                if rule._path_re and not rule._path_re.search(path):
                    continue
                rule.seen += 1
                if rule.seen <= rule.after:
                    continue
                if rule.probability < 1.0 and self._random.random() >= rule.probability:
                    continue
                rule.fired += 1
                return rule
        return None
