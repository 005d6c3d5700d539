# ruff: noqa: F811  (the data_dir fixture, imported)
"""Review 18b: whether the pen's pass in another pass log began after the cut pass was judged
by the host's clock alone. A host clock stepped back after the cut (NTP pulling back an RTC
that ran ahead) dated the other chair's pass "before" the cut pass: its dots, made on the pen
after the cut, were counted as the cut pass's, no note. Now the pen's own counters at each
begin order them (within one boot, uptime and counters only grow): a pass whose begin counters
lie within the count's is in between whatever its timestamp; one recorded without counters is
"cannot tell". The same log's next pass (ordered by the log) is chosen by the counters too."""
from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from click.testing import CliRunner

from simulators import PenSimulator, VirtualClock
from smpdevice.cli import main
from smpdevice.control import PenController
from smpdevice.passlog import PassLog
from smpdevice.sessions.crash_count import count_crashed, crash_count_of
from tests.smpdevice.cli.test_cli_run import (  # noqa: F401 - a fixture
    SCREENING,
    calibrate_default_pen,
    data_dir,
)
from tests.smpdevice.sessions.test_rev17_lost_link_count import (
    PLANNED_DOTS,
    PROFILE,
    stall_link_after_dot,
)

OTHER_DOTS = 3


def test_another_logs_pass_dated_before_the_cut_by_a_clock_step_is_still_seen(data_dir,
                                                                            tmp_path):
    """Real simulator, real logs written by `smp run`; only the cut pass's recorded start is
    read as it would be had the host's clock run ahead at the cut."""
    calibrate_default_pen(data_dir)
    profile, small = tmp_path / "one.yaml", tmp_path / "small.yaml"
    profile.write_text(PROFILE)
    small.write_text(PROFILE.replace(f"impressions: {PLANNED_DOTS}", f"impressions: {OTHER_DOTS}"))
    with PenSimulator(seed=0, name="r18b-step", clock=VirtualClock(host_driven=True)) as sim:
        stall_link_after_dot(sim, 6, 2.5)
        ran = CliRunner().invoke(main, ["run", str(profile), "-t", "ana", "--screening",
                                        str(SCREENING), "--port", sim.url])
        assert ran.exit_code == 6, ran.output  # link_lost, left open
        made_in_cut_pass = sim.firmware.impressions
        sim.link.unstall()
        assert CliRunner().invoke(main, ["clear", "--port", sim.url, "--yes"]).exit_code == 0
        other_log = data_dir / f"passlog-{sim.serial}.sqlite"
        other = CliRunner().invoke(main, [
            "run", str(small), "-t", "bob", "--screening", str(SCREENING), "--port", sim.url,
            "--db", str(other_log)])
        assert other.exit_code == 0, other.output
        with PassLog(other_log, readonly=True) as log:
            (other_began,) = [datetime.fromisoformat(p.started_at) for p in log.passes()]
        with PenController.connect(sim.url) as pen, \
                PassLog(data_dir / "passlog.sqlite", readonly=True) as log:
            (session,) = log.sessions()
            record = log.session(session.session_id)
            (cut,) = [p for p in record.passes if p.outcome == "link_lost"]
            now = pen.record_now()
            assert now - other_began > timedelta(milliseconds=20), (now, other_began)
            stepped = other_began + (now - other_began) / 2  # "after" the other's, by the host
            shifted = dataclasses.replace(record, passes=[
                dataclasses.replace(p, started_at=stepped.isoformat())
                if p.pass_id == cut.pass_id else p for p in record.passes])
            counted = crash_count_of(pen, log, shifted, log.resumptions(session.session_id))
    assert cut.pass_id not in counted.counted, (made_in_cut_pass, counted)
    (note,) = counted.notes
    assert other_log.name in note and "may be played again" in note, note


BEGIN = {"uptime_ms": 600_000, "impressions": 1000, "strokes": 9000}
END = {"uptime_ms": 660_000, "impressions": 1012, "strokes": 9100}


def test_the_pens_counters_not_the_clock_place_another_logs_pass():
    from smpdevice.sessions.other_logs import OtherWork, PenPass

    def why(counters):
        return OtherWork(passes=[PenPass("chair2.sqlite", "2020-01-01T00:00:00+00:00",
                                         counters)]).why_not_counted(BEGIN, END)

    assert "chair2.sqlite" in (why({**BEGIN, "uptime_ms": 630_000}) or "")  # in between
    assert "chair2.sqlite" in (why(dict(BEGIN)) or "")  # the same report: taken as between
    assert why({**BEGIN, "uptime_ms": 599_000}) is None  # before (same boot, or another)
    assert why({**END, "uptime_ms": 661_000}) is None  # after the count's end
    assert why({"uptime_ms": 630_000, "impressions": 3, "strokes": 40}) is None  # other boot
    unplaced = why(None)  # recorded without counters: cannot be placed
    assert unplaced is not None and "without the pen's counters" in unplaced


def test_the_same_logs_next_pass_is_chosen_by_the_counters_not_the_clock():
    """The count ends at whichever of this session's next pass and another session's (the
    same log's) began first ON THE PEN, though the host dated them the other way round."""
    t0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    cut = SimpleNamespace(pass_id="P1", index=0, impressions=9, strokes=80, outcome="link_lost",
                          period_ms=120.0, speed_hz=90.0, samples=None, ended_at=None,
                          started_at=t0.isoformat())
    mine = SimpleNamespace(pass_id="P2", index=1, impressions=0, strokes=0, outcome="stopped",
                           period_ms=120.0, speed_hz=90.0, started_at=(
                               t0 + timedelta(seconds=10)).isoformat())  # dated first
    at_begin = {"P1": {**BEGIN, "lease_ms": 1000},
                "P2": {"uptime_ms": 650_000, "impressions": 1030, "strokes": 9300,
                       "lease_ms": 1000}}
    theirs = {"uptime_ms": 620_000, "impressions": 1011, "strokes": 9050, "lease_ms": 1000}
    later = {"P1": (theirs, (t0 + timedelta(seconds=20)).isoformat())}  # dated later
    now = SimpleNamespace(impressions=1100, strokes=9900, uptime_ms=700_000)
    counted = count_crashed([cut, mine], [], at_begin, now, t0 + timedelta(seconds=100),
                            later=later)
    # up to the other session's begin: its 19 dots before this session's next pass are not
    # the cut pass's (by the host's dates, they were: 30 counted)
    assert counted.counted == {"P1": 11}, counted
    later = {"P1": ({**theirs, "impressions": 1060}, later["P1"][1])}  # out of order: reboot
    counted = count_crashed([cut, mine], [], at_begin, now, t0 + timedelta(seconds=100),
                            later=later)
    assert "P1" not in counted.counted and counted.notes, counted
