"""Review 11 FIXC1, R1 and R9: the pen's count of a pass cut by a host crash is bounded.

R1: the count was the pen's counters at the resume less those at the pass's begin, unbounded
above: any dots the pen made in between (another client's session, a speed check) were written
into this client's summary and sheet, and cut this client's remainder short. Now it stops at
the next pass begun on the pen (another session's in the same log too) and never exceeds what
the pass could make after its last checkpoint (one checkpoint interval plus one lease).
R9: no "may be played again" note for a crashed pass whose planned pass was completed since.

The crash: on the simulator's virtual clock the host goes silent mid-pass (the pen's lease
stops the needle) and the log's files are copied as a killed host leaves them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from smpdevice.passlog import PassLog
from smpdevice.sessions.crash_count import count_crashed
from smpdevice.sessions.resume import resume_session
from tests.smpdevice.sessions.test_review11_sessfix_crash_count import (
    crash_mid_second_pass,
    crash_profile,
)
from tests.smpdevice.sessions.test_session import open_session, short_profile


def crash_in_pass_2(sim, pen, db, crashed_db, target_dots: int, after_s: float = 1.2):
    """`crash_mid_second_pass` with pass 2 of `target_dots` dots. Returns (session id,
    profile, the pen's impressions at pass 2's start)."""
    sid, at_start = crash_mid_second_pass(sim, pen, db, crashed_db, after_s, target_dots)
    return sid, crash_profile(target_dots), at_start


@pytest.mark.virtual_time
def test_another_clients_session_in_the_same_log_is_not_counted_in_the_crashed_pass(
        sim, pen, tmp_path):
    db, crashed = tmp_path / "live.sqlite", tmp_path / "passlog.sqlite"
    sid, _, at_start = crash_in_pass_2(sim, pen, db, crashed, target_dots=30)
    pen.reconnect()
    pen.clear_faults()
    made = pen.telemetry.impressions - at_start  # what the crashed pass really made
    with PassLog.open(crashed) as log:
        other = open_session(pen, log, short_profile(0.5, passes=2))  # the next client
        other.play()
        other.close()
        assert pen.telemetry.impressions - at_start > made + 8  # the pen made many more
        resumed = resume_session(pen, log, sid, technician="ana")
        (counted,) = log.resumptions(sid)[0]["pen_counted"]
        assert counted["counted"] and counted["impressions"] == made
        assert [(i, p.impressions) for i, p in resumed.remaining] == [(1, 30 - made)]


P2_BEGAN = datetime(2026, 11, 30, tzinfo=UTC)


def crashed_pass(impressions=9, strokes=80, index=1, outcome="controller_crashed",
                 pass_id="P1", speed_hz=80.0):
    return SimpleNamespace(pass_id=pass_id, index=index, impressions=impressions,
                           strokes=strokes, outcome=outcome, started_at=P2_BEGAN.isoformat(),
                           period_ms=120.0, speed_hz=speed_hz)


def test_dots_made_on_the_pen_after_the_crash_elsewhere_are_capped_by_the_lease():
    """The pen made 400 dots since the crashed pass began (a session in another log, a speed
    check): the pass could make at most its recorded 9 plus (0.5 s + 0.2 s) / 120 ms = 6 periods,
    and one begun: 16 dots; strokes likewise at its speed."""
    at_begin = {"P1": {"impressions": 1000, "strokes": 9000, "uptime_ms": 600_000,
                       "lease_ms": 200}}
    now = SimpleNamespace(impressions=1400, strokes=40_000, uptime_ms=700_000)
    count = count_crashed([crashed_pass()], [], at_begin, now,
                          P2_BEGAN + timedelta(seconds=100))
    assert count.counted == {"P1": 16}
    (record,) = count.records
    assert record["impressions"] == 16
    assert record["strokes"] == 80 + 71  # ceil(0.7 s x 80 Hz x 1.25) + 1
    # below the cap, the pen's own count stands
    now = SimpleNamespace(impressions=1012, strokes=9100, uptime_ms=700_000)
    count = count_crashed([crashed_pass()], [], at_begin, now,
                          P2_BEGAN + timedelta(seconds=100))
    assert count.counted == {"P1": 12} and count.records[0]["strokes"] == 100


def test_the_next_pass_of_another_session_on_the_pen_bounds_the_count():
    at_begin = {"P1": {"impressions": 1000, "strokes": 9000, "uptime_ms": 600_000,
                       "lease_ms": 200}}
    later = {"P1": ({"impressions": 1011, "strokes": 9090, "uptime_ms": 630_000,
                     "lease_ms": 1000}, (P2_BEGAN + timedelta(seconds=30)).isoformat())}
    now = SimpleNamespace(impressions=1300, strokes=20_000, uptime_ms=700_000)
    count = count_crashed([crashed_pass()], [], at_begin, now,
                          P2_BEGAN + timedelta(seconds=100), later=later)
    assert count.counted == {"P1": 11}


def test_no_may_repeat_note_for_a_crashed_pass_completed_since():
    """An old log (no counters): pass 2 crashed, a resume completed its remainder, the session
    was interrupted later. Pass 2 plays no more: no note, no `pen_counted` entry for it."""
    passes = [crashed_pass(), crashed_pass(outcome="completed", pass_id="P2"),
              crashed_pass(index=2, outcome="fault", pass_id="P3")]
    now = SimpleNamespace(impressions=500, strokes=5000, uptime_ms=900_000)
    count = count_crashed(passes, [{"resumed_at": P2_BEGAN.isoformat()}], {}, now,
                          P2_BEGAN + timedelta(minutes=5))
    assert count.notes == [] and count.records == [] and count.counted == {}
    # a crashed pass still to play keeps its note
    passes[1] = crashed_pass(outcome="fault", pass_id="P2")
    count = count_crashed(passes, [], {}, now, P2_BEGAN + timedelta(minutes=5))
    (note,) = count.notes
    assert "pass 2" in note and "may be played again" in note
