"""Resuming an interrupted session (issue 15.5), against the simulator on its virtual clock.

The session reads time from the controller's clock (virtual); the screening's age is judged at
a wall-clock `now` the test passes in, so no test waits for real minutes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smpdevice.control import PenController, State
from smpdevice.errors import SmpError
from smpdevice.passlog import PassLog, PassOutcome, PassStats
from smpdevice.records.keys import InstallationKey
from smpdevice.sessions.profiles import PlannedPass
from smpdevice.sessions.resume import (
    RESCREEN_AFTER_MIN,
    ResumeError,
    ScreeningDue,
    check_rescreen_after,
    remaining_passes,
    resume_session,
    screening_due,
)
from smpdevice.sessions.screening import ScreeningRefused, parse_screening
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.sessions.test_session import CLEAR, open_session, short_profile

pytestmark = pytest.mark.virtual_time


@pytest.fixture
def db(tmp_path):
    return tmp_path / "passlog.sqlite"


@pytest.fixture
def passlog(db):
    with PassLog.open(db) as log:
        yield log


def estop_during(index: int, pen, after_s: float = 0.15):
    """An on_progress callback that presses the E-stop once pass `index` has run `after_s`."""
    pressed = []

    def on_progress(p) -> None:
        if p.index == index and p.elapsed_s >= after_s and not pressed:
            pressed.append(p.impressions)
            pen.estop()
    return on_progress


def opened_at(passlog, sid) -> datetime:
    return datetime.fromisoformat(passlog.session(sid).opened_at)


def test_estop_clear_resume_plays_only_the_remaining_passes(pen, passlog):
    profile = short_profile(0.6, passes=3)
    session = open_session(pen, passlog, profile)
    session.play(on_progress=estop_during(1, pen))
    summary = session.suspend()
    assert summary["outcome"] == "estop" and pen.state is State.ESTOP
    sid = session.session_id
    assert passlog.session(sid).closed_at is None, "an E-stopped session stays open"
    with pytest.raises(SmpError, match="must be idle"):  # the cause is not cleared yet
        resume_session(pen, passlog, sid, technician="ana", now=opened_at(passlog, sid))
    pen.clear_faults()
    cut = passlog.passes(sid)[1]
    resumed = resume_session(pen, passlog, sid, technician="bo",
                             now=opened_at(passlog, sid) + timedelta(minutes=5))
    assert [i for i, _ in resumed.remaining] == [1, 2]
    remainder = resumed.remaining[0][1]
    assert remainder.duration_s == pytest.approx(0.6 - cut.impressions * cut.period_ms / 1000)
    assert 0 < remainder.duration_s < 0.6 and resumed.remaining[1][1].duration_s == 0.6
    results = resumed.play()
    assert [(r.index, r.outcome) for r in results] == [(1, PassOutcome.completed),
                                                       (2, PassOutcome.completed)]
    summary, sheet = resumed.close()
    assert summary["outcome"] == "completed" and summary["resumptions"] == 1
    logged = [(p.index, p.outcome) for p in passlog.passes(sid)]
    assert logged == [(0, "completed"), (1, "estop"), (1, "completed"), (2, "completed")]
    (resumption,) = passlog.resumptions(sid)
    assert resumption["technician"] == "bo" and resumption["screening"] is None
    assert [p["index"] for p in resumption["passes_left"]] == [1, 2]
    assert "resumed" in sheet and "SESSION INCOMPLETE" not in sheet
    assert passlog.verify() is None
    kinds = [r.kind for r in passlog.records()]
    assert kinds.count("session_resume") == 1 and kinds[-1] == "session_close"


def test_a_host_crash_leaves_the_session_open_and_resume_finishes_it(sim, pen, db):
    profile = short_profile(0.5, passes=2)
    log = PassLog.open(db)
    session = open_session(pen, log, profile)
    session.run_pass(profile.plan[0], index=0)
    # The host dies mid pass 2: begun and checkpointed, never ended, the session never closed.
    pass_id = log.begin_pass(session.session_id, index=1, zone=profile.plan[1].zone,
                             depth_mm=0.4, speed_hz=90.0, duty_pct=40.0, period_ms=120.0,
                             started_at=datetime.now(UTC))
    stats = PassStats()
    stats.counters(0, 0)
    stats.counters(60, 2)  # two dots made before the crash
    log.checkpoint(pass_id, stats)
    log.close()
    pen.close()  # and so does its connection: the pen's lease stops it
    sid = session.session_id
    with PassLog.open(db) as log, PenController.connect(  # the restarted host
            sim.url, calibration=true_calibration(sim), clock=sim.clock) as pen:
        assert log.recovered == [pass_id]
        assert log.session(sid).closed_at is None
        resumed = resume_session(pen, log, sid, technician="ana", now=opened_at(log, sid))
        assert [(i, p.duration_s) for i, p in resumed.remaining] == [(1, pytest.approx(0.26))]
        resumed.play()
        summary, _ = resumed.close()
        assert summary["outcome"] == "completed"
        assert [p.outcome for p in log.passes(sid)] == ["completed", "controller_crashed",
                                                        "completed"]
        assert log.verify() is None


def test_the_screening_is_asked_again_after_the_set_time_and_not_before(pen, passlog):
    session = open_session(pen, passlog, short_profile(0.3, passes=3))
    session.play(on_progress=estop_during(0, pen, after_s=0.1))
    session.suspend()
    pen.clear_faults()
    sid = session.session_id
    screened = opened_at(passlog, sid)
    late = screened + timedelta(minutes=RESCREEN_AFTER_MIN, seconds=1)
    with pytest.raises(ScreeningDue, match=r"more than 30 min ago"):
        resume_session(pen, passlog, sid, technician="ana", now=late)
    assert passlog.resumptions(sid) == [], "nothing recorded by a refused resume"
    with pytest.raises(ScreeningRefused, match="sunburn"):
        resume_session(pen, passlog, sid, technician="ana", now=late,
                       screening=parse_screening({**CLEAR, "sunburn": True}))
    resumed = resume_session(pen, passlog, sid, technician="ana", now=late,
                             screening=parse_screening(CLEAR))
    resumed.play(on_progress=estop_during(1, pen, after_s=0.1))
    resumed.suspend()
    pen.clear_faults()
    # The next resume counts from the screening asked at the first resume, not the opening.
    again = resume_session(pen, passlog, sid, technician="ana",
                           now=late + timedelta(minutes=RESCREEN_AFTER_MIN))
    again.play()
    summary, _ = again.close()
    first, second = passlog.resumptions(sid)
    assert first["screening"] == CLEAR and second["screening"] is None
    assert summary["resumptions"] == 2 and summary["outcome"] == "completed"
    assert passlog.verify() is None


def test_the_screening_age_is_judged_on_the_pens_record_time(sim, pen, passlog):
    """On virtual time a session's records run ahead of the wall clock: judged against the
    wall, a session opened a virtual minute "from now" looked screened in the future and its
    resume was refused (ScreeningDue, suite failure of session 11)."""
    sim.time.sleep(10.0)  # ten virtual seconds: far more than the wall time this test takes
    session = open_session(pen, passlog, short_profile(0.2, passes=2))
    session.suspend()
    assert opened_at(passlog, session.session_id) > datetime.now(UTC), "virtual time ahead"
    resumed = resume_session(pen, passlog, session.session_id, technician="ana")
    resumed.play()
    summary, _ = resumed.close()
    assert summary["outcome"] == "completed"
    resumed_at = datetime.fromisoformat(passlog.resumptions(session.session_id)[0]["resumed_at"])
    assert resumed_at >= opened_at(passlog, session.session_id)


def test_a_closed_session_cannot_be_reopened(pen, passlog):
    session = open_session(pen, passlog, short_profile(0.2, passes=1))
    session.play()
    session.close()
    sid = session.session_id
    with pytest.raises(ResumeError, match=rf"session {sid} is closed .*cannot be reopened") as e:
        resume_session(pen, passlog, sid, technician="ana", now=opened_at(passlog, sid))
    assert e.value.exit_code == 2
    with pytest.raises(SmpError, match="no session 'Snope'"):
        resume_session(pen, passlog, "Snope", technician="ana")


def test_a_different_profile_or_another_installation_is_refused(pen, db):
    with PassLog.open(db) as log:
        session = open_session(pen, log, short_profile(0.3, passes=2))
        session.play(on_progress=estop_during(0, pen, after_s=0.1))
        session.suspend()
    pen.clear_faults()
    sid = session.session_id
    with PassLog.open(db) as log:
        now = opened_at(log, sid)
        with pytest.raises(ResumeError, match="differs from the one session"):
            resume_session(pen, log, sid, technician="ana", now=now,
                           profile=short_profile(0.4, passes=2))
    with PassLog.open(db, key=InstallationKey.generate()) as log, \
            pytest.raises(ResumeError, match="another installation"):
        resume_session(pen, log, sid, technician="ana", now=now)


def test_a_session_with_nothing_left_says_so(pen, passlog):
    session = open_session(pen, passlog, short_profile(0.2, passes=1))
    session.play()
    session.suspend()  # e.g. the host died between the last pass and the close
    with pytest.raises(ResumeError, match="nothing left to play"):
        resume_session(pen, passlog, session.session_id, technician="ana")


def test_screening_due_boundaries():
    t0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
    assert not screening_due(t0, t0 + timedelta(minutes=30), 30)
    assert screening_due(t0, t0 + timedelta(minutes=30, seconds=1), 30)
    assert screening_due(t0, t0 - timedelta(seconds=1), 30), "a clock gone back: ask"
    assert screening_due(t0, t0 + timedelta(seconds=1), 0)
    for bad in (-1, 481, float("nan"), "soon", True, None):
        with pytest.raises(ResumeError, match="rescreen_after_min"):
            check_rescreen_after(bad)
    assert check_rescreen_after("45") == 45.0


def _part(index, outcome, impressions, period_ms=100.0):
    return SimpleNamespace(index=index, outcome=outcome, impressions=impressions,
                           period_ms=period_ms)


_plans = st.lists(st.one_of(
    st.builds(lambda n: PlannedPass(zone="top", impressions=n), st.integers(1, 500)),
    st.builds(lambda s: PlannedPass(zone="top", duration_s=s),
              st.floats(0.01, 600, allow_nan=False))), min_size=1, max_size=8)
_outcomes = st.sampled_from([o.value for o in PassOutcome])


@given(_plans, st.lists(st.tuples(st.integers(0, 9), _outcomes, st.integers(0, 1000)),
                        max_size=12))
def test_remaining_never_replays_a_completed_pass_nor_more_than_planned(plan, parts):
    passes = [_part(i, o, n) for i, o, n in parts]
    left = remaining_passes(plan, passes)
    assert [i for i, _ in left] == sorted({i for i, _ in left})  # plan order, once each
    for index, rest in left:
        assert not any(p.index == index and p.outcome == "completed" for p in passes)
        planned = plan[index]
        if planned.impressions is not None:
            assert 0 < rest.impressions <= planned.impressions and rest.duration_s is None
        else:
            assert 0 < rest.duration_s <= planned.duration_s and rest.impressions is None
    untouched = {i for i in range(len(plan)) if not any(p.index == i for p in passes)}
    assert untouched <= {i for i, _ in left}


def test_a_v3_log_with_signed_sessions_migrates_and_still_verifies(pen, db):
    """Schema 4 rebuilds the records table (to allow `session_resume`): a populated, signed
    v3 log keeps every record, hash and signature, and then takes resume records."""
    import sqlite3

    with PassLog.open(db) as log:
        session = open_session(pen, log, short_profile(0.2, passes=2))
        session.play(on_progress=estop_during(1, pen, after_s=0.05))
        session.suspend()
        before = [r.hash for r in log.records()]
    conn = sqlite3.connect(db)  # back to schema 3: the old CHECK, no version 4
    with conn:
        conn.execute("ALTER TABLE records RENAME TO records_new")
        conn.execute(
            "CREATE TABLE records (seq INTEGER PRIMARY KEY, kind TEXT NOT NULL CHECK (kind IN "
            "('session_open', 'pass_begin', 'pass_end', 'session_close')), session_id TEXT "
            "NOT NULL, pass_id TEXT, written_at TEXT NOT NULL, body TEXT NOT NULL, prev_hash "
            "TEXT NOT NULL, hash TEXT NOT NULL)")
        conn.execute("INSERT INTO records SELECT * FROM records_new")
        conn.execute("DROP TABLE records_new")
        conn.execute("DELETE FROM schema_version WHERE version = 4")
        with pytest.raises(sqlite3.IntegrityError):  # what a v3 log refuses
            conn.execute("INSERT INTO records SELECT seq + 1000, 'session_resume', session_id, "
                         "pass_id, written_at, body, prev_hash, hash FROM records LIMIT 1")
    conn.close()
    pen.clear_faults()
    with PassLog.open(db) as log:
        assert [r.hash for r in log.records()] == before
        assert log.verify() is None
        resume_session(pen, log, session.session_id, technician="ana",
                       now=opened_at(log, session.session_id)).play()
        assert [r.kind for r in log.records()][len(before)] == "session_resume"
        assert log.verify() is None
