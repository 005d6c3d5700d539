"""Review 15 F1, through the library: `resume_session` (the one the service's `session.resume`
calls too) refuses a session whose records were changed without the key, before it records or
plays anything: a completed pass's end edited to `stopped` (no hash to recompute) would have
been played again in full. On the simulator's virtual clock."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta

import pytest

from smpdevice.passlog import PassLog
from smpdevice.records.sqlite_recovery import LogAltered
from smpdevice.sessions.resume import resume_session
from tests.smpdevice.sessions.test_session import open_session, short_profile
from tests.smpdevice.sessions.test_session_resume import estop_during

pytestmark = pytest.mark.virtual_time


def test_resume_session_refuses_a_completed_pass_edited_to_stopped(pen, tmp_path):
    db = tmp_path / "passlog.sqlite"
    with PassLog.open(db) as passlog:
        session = open_session(pen, passlog, short_profile(0.6, passes=3))
        session.play(on_progress=estop_during(1, pen))
        session.suspend()
        pen.clear_faults()
        sid = session.session_id
        first = passlog.passes(sid)[0]
        assert first.outcome == "completed"
        now = datetime.fromisoformat(passlog.session(sid).opened_at) + timedelta(minutes=1)
        conn = sqlite3.connect(db)  # someone with the files, not the key
        with conn:
            seq, body = conn.execute("SELECT seq, body FROM records WHERE kind = 'pass_end' "
                                     "AND pass_id = ?", (first.pass_id,)).fetchone()
            end = json.loads(body)
            end.update(outcome="stopped", stats={**end["stats"], "impressions": 0})
            conn.execute("UPDATE records SET body = ? WHERE seq = ?", (json.dumps(end), seq))
        conn.close()
        with pytest.raises(LogAltered, match=rf"record {seq}\b.*was altered"):
            resume_session(pen, passlog, sid, technician="bo", now=now)
        before = len(passlog.passes(sid))
    with PassLog(db, readonly=True) as log:
        assert log.resumptions(sid) == [], "no resumption was recorded"
        assert len(log.passes(sid)) == before, "no pass was begun"
