"""Session 21b (gap left by session 21): a session whose opening saw E-stops (pressed and
cleared while it was opened, after its checks read the pen's counts) did not replay as a
match: the live session's first play() ended before pass 1 on them, but the replay made them
again from the recording's preamble before its session existed, so that session's play()
watched from its own start and played pass 1 (`first difference: ... expected no more
commands`).

Now the recording's `/meta` keeps `since_opening` (the interruptions and stops counted
from the opening's decision to the recording's start) and the replayed session is opened on
the counts before them (`keep_opening_counts`), as live. A recording without it replays as
before. Virtual time, the real simulator, controller, SQLite pass log and recording."""

from __future__ import annotations

import pytest

from smpdevice.passlog import PassLog
from smpdevice.records.frames import read_recording
from smpdevice.replay.runner import replay_session
from tests.smpdevice.replay.test_rev21_opening_interruptions import _opened_interrupted

pytestmark = pytest.mark.virtual_time


@pytest.mark.parametrize("pressed", [1, 3])
def test_an_opening_interrupted_replays_as_a_match(tmp_path, pressed):
    summary, path, session_id = _opened_interrupted(tmp_path, pressed)
    assert len(summary["interruptions_between"]) == pressed, summary
    with PassLog(path, readonly=True) as log:
        file = log.session(session_id)
        reports = [replay_session(log, session_id) for _ in range(3)]
    for report in reports:
        assert report.match, (report.difference, report.notes)
    rec = read_recording(reports[0].recording)
    assert rec.meta["since_opening"] == {"interruptions": pressed,
                                                  "stops_asked": pressed}, rec.meta
    assert file is not None


def test_an_opening_not_interrupted_records_none_since(tmp_path):
    _, path, session_id = _opened_interrupted(tmp_path, 0)
    with PassLog(path, readonly=True) as log:
        report = replay_session(log, session_id)
    assert report.match, (report.difference, report.notes)
    since = read_recording(report.recording).meta["since_opening"]
    assert since == {"interruptions": 0, "stops_asked": 0}, since
