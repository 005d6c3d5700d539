"""Judging a silent link for the engine's loop (smpdevice.link.engine): no byte for the silence
limit is a lost link, except that a loop which itself woke late gives the reader one turn.

A host process that was stopped (SIGSTOP, a debugger, a suspended VM) or starved wakes with
its loop far past the silence deadline while the pen's frames wait unread on the port: the
reader thread was held as long as the loop. Judged at once, a hung host would be recorded as a
lost pen (cable, power: exit 6) while the pen itself stopped by its lease and latched
LEASE_EXPIRED (review 16, finding 4). So a verdict of silence reached just after a late wake
is postponed by LATE_WAKE_GRACE_S, once per silence (per last byte heard): a real silence is
still declared, at most that much later, and a silence seen by a loop that woke on time is
declared at once. On a virtual clock nothing is postponed: time moves only when it is advanced.
"""

from __future__ import annotations

import math

LATE_WAKE_S = 0.1  # the loop sleeps at most IDLE_TICK_S (50 ms): later than this, it was held
LATE_WAKE_GRACE_S = 0.2  # the reader's one turn after a late wake (docs/reliability.md)


class SilenceJudge:
    """When the loop must wake for the silence deadline, and whether the link is lost."""

    def __init__(self, virtual: bool) -> None:
        self.virtual = virtual
        self._wake_by_s = math.inf  # when the loop's current sleep ends at the latest
        self._late_until_s = -math.inf  # a verdict before this follows a late wake
        self._postponed_for: float | None = None  # the last byte heard of the silence postponed
        self._verdict_s = 0.0  # when that postponed silence is judged

    def sleeping(self, wake_by_s: float) -> None:
        """The loop sleeps until `wake_by_s` at the latest (clock time)."""
        self._wake_by_s = wake_by_s

    def woke(self, now_s: float) -> None:
        """The loop woke: much later than its sleep allowed, this process was held."""
        if not self.virtual and now_s - self._wake_by_s > LATE_WAKE_S:
            self._late_until_s = now_s + LATE_WAKE_GRACE_S
        self._wake_by_s = math.inf

    def due_s(self, heard_s: float, limit_s: float) -> float:
        """When the silence is next judged."""
        if self._postponed_for == heard_s:
            return max(heard_s + limit_s, self._verdict_s)
        return heard_s + limit_s

    def lost(self, now_s: float, heard_s: float, limit_s: float) -> bool:
        """Whether the link is lost: no byte since `heard_s` for more than `limit_s`."""
        if now_s - heard_s <= limit_s:
            return False
        if self._postponed_for == heard_s:  # its one turn given: judged when it is over
            return now_s >= self._verdict_s
        if self.virtual or now_s >= self._late_until_s:
            return True  # the loop woke on time: the silence is real
        self._postponed_for, self._verdict_s = heard_s, now_s + LATE_WAKE_GRACE_S
        return False
