"""Session 20: the replay's in-memory pass log (`MemoryPassLog`, what a replayed
`TreatmentSession` writes to) answered `passes(session_id)` with every pass it held, whatever
the id, each numbered across all of them and stamped with the session id "replay": not what
the pass log it stands in for does (smpdevice/records/sqlite_read.py: the passes of that
session, numbered from 1 within it; all of them for None).

Two sessions played on the virtual-time simulator into one `MemoryPassLog` and into a real
SQLite pass log, the same way: the in-memory log must answer as the real one does."""

from __future__ import annotations

import pytest

from smpdevice.passlog import PassLog
from smpdevice.replay.memlog import MemoryPassLog
from smpdevice.sessions.screening import parse_screening
from smpdevice.sessions.session import TreatmentSession
from tests.smpdevice.replay.conftest import CLEAR, short_profile

pytestmark = pytest.mark.virtual_time


def _shape(passes) -> list[tuple[str, int, int, str | None]]:
    return [(p.session_id, p.number, p.index, p.outcome) for p in passes]


def test_passes_of_one_session_as_the_pass_log_answers(pen, tmp_path):
    memlog = MemoryPassLog(pen.clock)
    with PassLog.open(tmp_path / "passlog.sqlite") as real:
        ids = []
        for passes in (2, 3):  # two sessions, one after the other, on the same pen
            opened = TreatmentSession.open(pen, real, short_profile(0.2, passes=passes),
                                           technician="ana", screening=parse_screening(CLEAR))
            opened.play()
            opened.close()
            ids.append(opened.session_id)
            replayed = TreatmentSession(pen, memlog,  # type: ignore[arg-type]
                                        short_profile(0.2, passes=passes), opened.session_id,
                                        "ana")
            replayed.play()
            replayed.close()
        first, second = ids
        assert [p.session_id for p in memlog.passes()] == [first] * 2 + [second] * 3
        for sid in (first, second):
            assert _shape(memlog.passes(sid)) == _shape(real.passes(sid)), sid
        assert _shape(memlog.passes(first)) == [(first, 1, 0, "completed"),
                                                (first, 2, 1, "completed")]
        assert [p.number for p in memlog.passes(second)] == [1, 2, 3]
        assert memlog.passes("S0000000000000000") == real.passes("S0000000000000000") == []
