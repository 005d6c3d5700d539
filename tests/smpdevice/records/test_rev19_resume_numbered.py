"""Review 19 (gaps) finding 1, the pass log's side: two resumes of one session that both read
"no resumption yet" each recorded `session_resume` number 1; `smp replay` then read the parts
[1, 1, 2] as an altered close record. `PassLog.resume_session` now refuses, in its own write
transaction, a resumption whose number is not above every one the session has recorded."""

from __future__ import annotations

from datetime import timedelta

import pytest

from smpdevice.passlog import PassLog
from smpdevice.records.sqlite_resume import ResumedMeanwhile
from tests.smpdevice.records.test_passlog import T0, open_session


def _resume(log: PassLog, sid: str, **details) -> None:
    log.resume_session(sid, resumed_at=T0 + timedelta(minutes=5), details=details)


def test_a_resumption_recorded_meanwhile_refuses_the_stale_one(tmp_path):
    with PassLog(tmp_path / "passlog.sqlite") as log:
        sid = open_session(log)
        _resume(log, sid, number=1, technician="ana")
        with pytest.raises(ResumedMeanwhile, match="resumed meanwhile") as refused:
            _resume(log, sid, number=1, technician="bob")  # read before ana's was recorded
        assert refused.value.exit_code == 2
        assert "nothing was recorded" in str(refused.value)
        assert [r["technician"] for r in log.resumptions(sid)] == ["ana"]
        _resume(log, sid, count_only=True, technician="carl", passes_left=[])  # unnumbered
        for stale in (0, -3, "2", 1.5, True):  # never above 1, or no whole number
            with pytest.raises(ResumedMeanwhile):
                _resume(log, sid, number=stale, technician="dan")
        _resume(log, sid, number=3, technician="eve")  # as resume_session numbers it
        assert [r.get("number") for r in log.resumptions(sid)] == [1, None, 3]
        assert log.verify() is None  # the refusals left the chain whole
