"""Review 18 b18d: a later pass of the same pen in the SAME pass log, another session's,
recorded without the pen's counters (begun before its first report) makes the cut pass's
count "cannot tell", as it does in another log (README "Resuming an interrupted session").
Before, `PassLog.pen_counters_after` skipped it: the count ran on to the pen's counters now
and took that session's dots as the cut pass's (13 counted, no note)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from smpdevice.passlog import PassLog, PassStats
from smpdevice.sessions.crash_count import crash_count_of

SERIAL = "SMP-R18B0001"
T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
BEGIN = {"uptime_ms": 600_000, "impressions": 100, "strokes": 1000, "lease_ms": 500}
CUT_RECORDED, CUT_MADE, OTHER_DOTS = 6, 9, 4  # the other session's 4 dots: within the cap


def session(log: PassLog, serial: str = SERIAL) -> str:
    return log.open_session(technician="ana", client_ref="C-1", session_kind="base_density",
                            pen_serial=serial, firmware_version="1.0", calibration_id="c1",
                            profile_hash="h", screening={"clear": True}, simulated=True,
                            opened_at=T0)


def a_pass(log: PassLog, sid: str, began: datetime, counters, dots: int, outcome: str) -> None:
    pid = log.begin_pass(sid, index=0, zone="top", depth_mm=0.4, speed_hz=90, duty_pct=40,
                         period_ms=120, started_at=began, pen_counters=counters)
    stats = PassStats()
    stats.counters(0, 0)
    stats.counters(dots * 4, dots)
    log.end_pass(pid, outcome=outcome, stats=stats, ended_at=began + timedelta(seconds=1))


def count(tmp_path, sid: str, made: int):
    now = SimpleNamespace(uptime_ms=660_000, impressions=100 + made, strokes=1000 + 4 * made)
    pen = SimpleNamespace(telemetry=now, record_now=lambda: T0 + timedelta(seconds=60),
                          calibration=None)
    with PassLog(tmp_path / "passlog.sqlite", readonly=True) as log:
        record = log.session(sid)
        return record.passes[0].pass_id, crash_count_of(pen, log, record, log.resumptions(sid))


@pytest.mark.parametrize("outcome", ["link_lost", "controller_crashed"])
def test_a_later_uncountered_pass_of_the_pen_in_the_same_log_is_cannot_tell(tmp_path,
                                                                           monkeypatch, outcome):
    monkeypatch.setenv("SMP_KEY_DIR", str(tmp_path / "keys"))
    with PassLog(tmp_path / "passlog.sqlite") as log:
        sid = session(log)
        a_pass(log, sid, T0, BEGIN, CUT_RECORDED, outcome)
        a_pass(log, session(log), T0 + timedelta(seconds=20), None, OTHER_DOTS, "completed")
        (cut_id,) = [p.pass_id for p in log.passes(sid)]
        later = log.pen_counters_after(sid, [cut_id])  # that pass, its counters None
        assert later == {cut_id: (None, (T0 + timedelta(seconds=20)).isoformat())}, later
    cut, got = count(tmp_path, sid, CUT_MADE + OTHER_DOTS)
    assert cut not in got.counted, got  # its recorded dots, not 13
    assert len(got.notes) == 1 and "without the pen's counters" in got.notes[0], got
    assert "this pass log" in got.notes[0] and "may be played again" in got.notes[0], got
    assert got.records == [{"pass_id": cut, "index": 0, "counted": False,
                            "why": got.records[0]["why"], "recorded_impressions": CUT_RECORDED}]


def test_another_pens_uncountered_pass_in_the_same_log_leaves_the_count(tmp_path, monkeypatch):
    monkeypatch.setenv("SMP_KEY_DIR", str(tmp_path / "keys"))
    with PassLog(tmp_path / "passlog.sqlite") as log:
        sid = session(log)
        a_pass(log, sid, T0, BEGIN, CUT_RECORDED, "link_lost")
        a_pass(log, session(log, "SMP-OTHERPEN"), T0 + timedelta(seconds=20), None, 4,
               "completed")
    cut, got = count(tmp_path, sid, CUT_MADE)
    assert got.counted == {cut: CUT_MADE} and not got.notes, got  # the pen's own count
