"""The pass log a replay writes to: what a `TreatmentSession` writes, kept in memory."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from smpdevice.records.model import PassOutcome, PassRecord, PassStats, pass_from_bodies


class MemoryPassLog:
    """What a `TreatmentSession` writes, kept in memory (a replay records nothing)."""

    path = None

    def __init__(self, clock: Any = None) -> None:
        self._begin: dict[str, dict[str, Any]] = {}
        self._session_of: dict[str, str] = {}  # pass id -> its session's id
        self._end: dict[str, dict[str, Any]] = {}
        self.ended_on_clock: dict[str, float] = {}  # pass id -> the replay clock at its end
        self._clock = clock
        self.summary: dict[str, Any] | None = None

    def begin_pass(self, session_id: str, **body: Any) -> str:
        pass_id = "P" + uuid.uuid4().hex[:16]
        body["started_at"] = body["started_at"].isoformat()
        self._begin[pass_id] = body
        self._session_of[pass_id] = session_id
        return pass_id

    def checkpoint(self, pass_id: str, stats: PassStats) -> None:
        pass

    def end_pass(self, pass_id: str, *, outcome: Any, stats: PassStats, ended_at: datetime,
                 fault_code: int | None = None, fault_names: list[str] | None = None) -> None:
        self._end[pass_id] = {"outcome": str(PassOutcome(outcome)), "stats": stats.figures(),
                              "ended_at": ended_at.isoformat(), "fault_code": fault_code,
                              "fault_names": list(fault_names or [])}
        if self._clock is not None:
            self.ended_on_clock[pass_id] = self._clock.now()

    def ended_by(self, clock_s: float) -> int:
        """How many passes, in order, had ended by replay clock time `clock_s`."""
        count = 0
        for pass_id in self._begin:
            if self.ended_on_clock.get(pass_id, float("inf")) > clock_s + 1e-9:
                break
            count += 1
        return count

    def passes(self, session_id: str | None = None) -> list[PassRecord]:
        """Passes in the order they began: of one session, or all (`session_id` None), each
        numbered from 1 within its session, as the pass log does."""
        out: list[PassRecord] = []
        numbers: dict[str, int] = {}
        for pid, body in self._begin.items():
            sid = self._session_of[pid]
            if session_id is not None and sid != session_id:
                continue
            numbers[sid] = numbers.get(sid, 0) + 1
            out.append(pass_from_bodies(pid, sid, body, self._end.get(pid), numbers[sid]))
        return out

    def resumptions(self, session_id: str) -> list[dict[str, Any]]:
        return []

    def close_session(self, session_id: str, *, closed_at: datetime,
                      summary: dict[str, Any]) -> None:
        self.summary = summary
