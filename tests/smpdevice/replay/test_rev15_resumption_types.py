"""Review 15 B4: a resumed session's `session_resume` record edited to a field of the wrong
type (`resumed_at` 5) made `smp replay` end "a time in the pass log is not ISO 8601", exit 2
(a bad option or file), where the README's exit table promises 3 for "a record body whose
field has a type no reader can use". `PassLog.resumptions` now checks every field a reader
uses (`record_types.resumption_problem`) and names the record and the file (exit 3).
"""

from __future__ import annotations

import json
import shutil
import sqlite3

import pytest
from click.testing import CliRunner

from smpdevice.cli import main
from smpdevice.passlog import PassLog
from smpdevice.records.model import PassLogError
from smpdevice.sessions.resume import resume_session
from smpdevice.sessions.screening import parse_screening
from tests.smpdevice.sessions.test_session import CLEAR, open_session, short_profile

pytestmark = pytest.mark.virtual_time

EDITS = [  # the reviewer's, then fields nobody listed
    {"resumed_at": 5}, {"resumed_at": "2026-11-30T10:00:00"}, {"resumed_at": None},
    {"number": "2"}, {"number": True}, {"passes_before": -1}, {"passes_before": 1.5},
    {"passes_left": "x"}, {"passes_left": [{"index": "0", "duration_s": 0.2}]},
    {"passes_left": [{"index": 1, "duration_s": 0.2, "impressions": 5}]},
    {"passes_left": [7]}, {"pen_counted": 5}, {"pen_counted": [{"pass_id": 3}]},
    {"count_only": "yes"}, {"screening": "clear"}, {"recording_before": 5},
    {"technician": ["ana"]},
]


@pytest.fixture
def resumed(sim, pen, tmp_path):
    db = tmp_path / "passlog.sqlite"
    with PassLog.open(db) as log:
        session = open_session(pen, log, short_profile(0.2, passes=2))
        session.play(should_stop=lambda: len(session.results) >= 1)  # one pass, then stop
        session.suspend()
        again = resume_session(pen, log, session.session_id, technician="ana",
                               screening=parse_screening(CLEAR))
        again.play()
        again.close()
    return db, session.session_id


def _edited(db, tmp_path, change):
    copy = tmp_path / f"edited-{len(list(tmp_path.glob('edited-*')))}.sqlite"
    shutil.copyfile(db, copy)
    with sqlite3.connect(copy) as conn:
        seq, body = conn.execute(
            "SELECT seq, body FROM records WHERE kind = 'session_resume'").fetchone()
        conn.execute("UPDATE records SET body = ? WHERE seq = ?", (json.dumps(
            {**json.loads(body), **change}, separators=(",", ":"), sort_keys=True), seq))
    conn.close()
    return copy, seq


def test_the_untouched_resumption_reads(resumed):
    db, sid = resumed
    with PassLog.open(db, readonly=True) as log:
        assert [r["number"] for r in log.resumptions(sid)] == [1]


def test_a_wrongly_typed_resumption_is_a_damaged_record_exit_3(resumed, tmp_path):
    db, sid = resumed
    for change in EDITS:
        copy, seq = _edited(db, tmp_path, change)
        with PassLog.open(copy, readonly=True) as log, pytest.raises(
                PassLogError, match=f"malformed record {seq}, a resumption of session {sid}"
                                     f": its {next(iter(change))}"):
            log.resumptions(sid)
        if change in EDITS[:1] or "passes_left" in change:  # the replay, through the CLI
            result = CliRunner().invoke(main, ["replay", sid, "--db", str(copy)])
            assert result.exit_code == 3, (change, result.exit_code, result.output[-300:])
            assert f"malformed record {seq}" in result.output, result.output
