"""Review 11, F15: a pass cut by a host crash is counted by the pen's own counters at the resume.

The host records a pass up to its last checkpoint (every 0.5 s), and the needle runs on until
the pen's lease runs out: the log under-counts that pass and a resume played the difference
again on the client's skin. Each pass's begin record now keeps the pen's cumulative counters
and uptime; a resume on the same, not restarted, pen counts the crashed pass as the pen's
counters now less those at its begin, records that count in its `session_resume` record, and
plays only what is left of it. When the pen cannot say (restarted, counters not recorded) the
resume says that up to one checkpoint interval plus one lease of that pass may repeat.

The crash: on the simulator's virtual clock the host goes silent mid-pass (a stalled link: no
lease renewal reaches the pen, which stops by itself), and the log's files are copied at that
moment: what a host killed then leaves on disk. The pen and its counters are the simulator's."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from firmware_protocol.codes import FirmwareState
from smpdevice.passlog import PassLog, PassOutcome
from smpdevice.sessions.crash_count import count_crashed
from smpdevice.sessions.resume import remaining_passes, resume_session
from tests.smpdevice.sessions.test_session import open_session, short_profile

pytestmark = pytest.mark.virtual_time

TARGET_DOTS = 30  # pass 2: an impressions pass (30 x 120 ms = 3.6 s)


class HostDied(Exception):
    """Raised from the progress callback once the crash was taken: ends the dead host's play."""


def crash_profile(target_dots: int = TARGET_DOTS):
    """Two passes, the second one of `target_dots` impressions."""
    profile = short_profile(0.3, passes=2)
    plan = [profile.plan[0], profile.plan[1].model_copy(
        update={"duration_s": None, "impressions": target_dots})]
    return profile.model_copy(update={"plan": plan})


def crash_mid_second_pass(sim, pen, db, crashed_db, after_s: float = 1.2,
                          target_dots: int = TARGET_DOTS):
    """Play a 2-pass session on `db` until pass 2 has run `after_s` (two checkpoints), then:
    the host goes silent (the pen's lease stops the needle), and the log's files are copied as
    a killed host leaves them (the live log goes on being written by the dead host's last
    gasp: the copy is what counts). Returns (session id, pen impressions at pass 2's start)."""
    profile = crash_profile(target_dots)
    passlog = PassLog.open(db)
    session = open_session(pen, passlog, profile)
    at_start: list[int] = []

    def should_stop() -> bool:
        # Asked before each pass: before pass 2 the needle is at rest, its counters still
        if len(session.results) == 1 and not at_start:
            at_start.append(pen.telemetry.impressions)
        return False

    def on_progress(p) -> None:
        if p.index == 1 and p.elapsed_s >= after_s:
            sim.link.stall(sim.clock.now())  # the host is gone: nothing reaches the pen
            sim.time.wait_until(lambda: sim.firmware.state is not FirmwareState.RUNNING, 5.0,
                                "the pen's lease to stop the needle")
            for suffix in ("", "-wal"):  # the log as the dead host left it
                source = db.with_name(db.name + suffix)
                if source.exists():
                    shutil.copyfile(source, crashed_db.with_name(crashed_db.name + suffix))
            raise HostDied

    with pytest.raises(HostDied):
        session.play(on_progress=on_progress, should_stop=should_stop)
    passlog.close()
    sim.link.unstall()
    return session.session_id, at_start[0]


def test_a_resume_counts_the_crashed_pass_by_the_pens_counters(sim, pen, tmp_path):
    db, crashed = tmp_path / "live.sqlite", tmp_path / "passlog.sqlite"
    sid, impressions_at_start = crash_mid_second_pass(sim, pen, db, crashed)
    # The restarted host: the same controller connecting again, so that its record times (on
    # the virtual clock, anchored when a controller takes it) follow the dead host's.
    pen.reconnect()
    pen2 = pen
    with PassLog.open(crashed) as log:
        (recovered,) = [p for p in log.passes(sid) if p.pass_id in log.recovered]
        assert recovered.outcome == "controller_crashed"
        pen2.clear_faults()  # the pen latched LEASE_EXPIRED when the host went silent
        made = pen2.telemetry.impressions - impressions_at_start  # what the pen made in it
        assert made > recovered.impressions, "the pen made dots the log did not record"
        resumed = resume_session(pen2, log, sid, technician="ana")
        (resumption,) = log.resumptions(sid)
        (counted,) = resumption["pen_counted"]
        assert counted["counted"] and counted["impressions"] == made
        assert counted["recorded_impressions"] == recovered.impressions
        assert [(i, p.impressions) for i, p in resumed.remaining] == [(1, TARGET_DOTS - made)]
        assert resumption["passes_left"] == [
            {"index": 1, "duration_s": None, "impressions": TARGET_DOTS - made}]
        assert resumed.resume_notes == []
        before = pen2.telemetry.impressions
        (result,) = resumed.play()
        assert result.outcome is PassOutcome.completed
        # never more than the plan: the two parts together made the 30 dots (the stop may
        # land one report late, as in any impressions pass)
        total = made + (pen2.telemetry.impressions - before)
        assert TARGET_DOTS <= total <= TARGET_DOTS + 1, total
        summary, sheet = resumed.close()
        # the summary and the client's sheet count the dots the pen made, not the checkpoint's
        recorded_total = sum(p.impressions for p in log.passes(sid))
        assert summary["impressions"] == recorded_total + made - recovered.impressions
        assert summary["pen_counted"][0]["impressions"] == made
        assert f"{summary['impressions']} impressions" in sheet
        assert log.verify() is None


def pass_(index=1, impressions=4, strokes=40, outcome="controller_crashed", pass_id="P1",
          started_at="2026-11-30T00:00:00+00:00", period_ms=120.0):
    return SimpleNamespace(pass_id=pass_id, index=index, impressions=impressions,
                           strokes=strokes, outcome=outcome, started_at=started_at,
                           period_ms=period_ms)


def counters(impressions, strokes, uptime_ms, lease_ms=500):
    return {"impressions": impressions, "strokes": strokes, "uptime_ms": uptime_ms,
            "lease_ms": lease_ms}


def report(impressions, strokes, uptime_ms):
    return SimpleNamespace(impressions=impressions, strokes=strokes, uptime_ms=uptime_ms)


BEGAN = datetime(2026, 11, 30, tzinfo=UTC)


def test_a_pen_that_restarted_is_not_counted_and_the_resume_says_what_may_repeat():
    at_begin = {"P1": counters(1000, 9000, uptime_ms=600_000)}
    # 60 s later the pen's uptime is 20 s: it restarted (its counters restarted too)
    count = count_crashed([pass_()], [], at_begin, report(3, 30, 20_000),
                          BEGAN + timedelta(seconds=60))
    assert count.counted == {}
    (note,) = count.notes
    assert "pass 2" in note and "restarted" in note and "0.5 s plus one lease (500 ms)" in note
    assert "about 9 dots" in note  # (0.5 s + 0.5 s) / 120 ms, rounded up
    assert count.records == [{"pass_id": "P1", "index": 1, "counted": False,
                              "why": count.records[0]["why"], "recorded_impressions": 4}]
    # the same uptime, but less of it than the time that passed: restarted as well
    count = count_crashed([pass_()], [], at_begin, report(2000, 20_000, 630_000),
                          BEGAN + timedelta(seconds=60))
    assert count.counted == {} and count.notes


def test_a_pass_recorded_without_the_pens_counters_is_said_to_repeat():
    count = count_crashed([pass_()], [], {}, report(50, 500, 10_000), BEGAN)
    assert count.counted == {}
    (note,) = count.notes
    assert "not recorded" in note and "at most 2000 ms" in note


def test_the_count_is_made_once_later_resumes_use_the_recorded_one():
    at_begin = {"P1": counters(1000, 9000, uptime_ms=600_000)}
    earlier = [{"pen_counted": [{"pass_id": "P1", "index": 1, "counted": True,
                                 "impressions": 9, "strokes": 90}]}]
    # the pen made many more dots since (the resumed part): they are not the crashed pass's
    count = count_crashed([pass_(), pass_(outcome="completed", pass_id="P2")], earlier,
                          at_begin, report(1500, 14_000, 700_000),
                          BEGAN + timedelta(seconds=100))
    assert count.counted == {"P1": 9} and count.records == [] and count.notes == []


def test_a_crashed_pass_followed_by_another_is_bounded_by_that_ones_begin():
    """A pass crashed in an older log whose resume did not count it: the pen's counters at the
    next pass's begin bound it, never the counters now (the later passes' dots)."""
    passes = [pass_(), pass_(outcome="completed", pass_id="P2",
                             started_at="2026-11-30T00:00:30+00:00")]
    at_begin = {"P1": counters(1000, 9000, uptime_ms=600_000),
                "P2": counters(1007, 9070, uptime_ms=630_000)}
    count = count_crashed(passes, [], at_begin, report(1500, 14_000, 700_000),
                          BEGAN + timedelta(seconds=100))
    assert count.counted == {"P1": 7}


def test_the_remainder_never_goes_below_nothing_nor_counts_less_than_recorded():
    profile = short_profile(0.3, passes=1)
    planned = profile.plan[0].model_copy(update={"duration_s": None, "impressions": 10})
    crashed = pass_(index=0, impressions=4)
    assert remaining_passes([planned], [crashed], counted={"P1": 12}) == []
    (left,) = remaining_passes([planned], [crashed], counted={"P1": 7})
    assert left[1].impressions == 3
    # the pen never counts less than the log recorded (a reading of a counter gone back)
    at_begin = {"P1": counters(1000, 9000, uptime_ms=600_000)}
    count = count_crashed([crashed], [], at_begin, report(1002, 9010, 660_000),
                          BEGAN + timedelta(seconds=60))
    assert count.counted == {"P1": 4}
