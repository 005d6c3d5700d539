"""Review 11 FIXC1, R2 and R3: a crashed pass whose pen count reaches the plan.

The pen made every dot of pass 2 (12 dots x 120 ms; the host died at 1.2 s, its checkpoint
recorded 9). R2: the resume refuses ("nothing left to play") and the close must count the
pen's dots as a resume would have (the refusal records the count first). R3: the close command
that refusal prints runs as printed (it named neither the pen nor the log)."""

from __future__ import annotations

import shlex

import pytest
from click.testing import CliRunner

from smpdevice.passlog import PassLog
from smpdevice.sessions.resume import NothingLeft, ResumeError, resume_session
from smpdevice.sessions.session_records import close_session_record
from tests.smpdevice.sessions.test_review11_fixc1_crash_bound import crash_in_pass_2

pytestmark = pytest.mark.virtual_time


def crashed_at_the_plan(sim, pen, tmp_path):
    db, crashed = tmp_path / "live.sqlite", tmp_path / "passlog.sqlite"
    sid, profile, at_start = crash_in_pass_2(sim, pen, db, crashed, target_dots=12)
    pen.reconnect()
    pen.clear_faults()
    return sid, profile, pen.telemetry.impressions - at_start, crashed


def test_the_close_after_a_refused_resume_counts_the_pens_dots(sim, pen, tmp_path):
    sid, profile, made, crashed = crashed_at_the_plan(sim, pen, tmp_path)
    with PassLog.open(crashed) as log:
        (recovered,) = [p for p in log.passes(sid) if p.pass_id in log.recovered]
        assert made >= 12 > recovered.impressions
        with pytest.raises(NothingLeft, match="nothing left to play"):
            resume_session(pen, log, sid, technician="ana")
        (kept,) = log.resumptions(sid)  # the count, kept before refusing
        assert kept["count_only"] and kept["passes_left"] == []
        assert kept["pen_counted"][0]["impressions"] == made
        with pytest.raises(NothingLeft):  # refused again: counted once, not recorded twice
            resume_session(pen, log, sid, technician="ana")
        assert len(log.resumptions(sid)) == 1
        summary, sheet, outcome = close_session_record(log, sid, profile)
        recorded = sum(p.impressions for p in log.passes(sid))
        assert summary["impressions"] == recorded - recovered.impressions + made
        assert f"{summary['impressions']} impressions" in sheet
        assert "resumptions" not in summary and "resumed" not in sheet  # none played
        assert outcome.value == "completed"  # the pen made every planned dot
        assert log.verify() is None


def test_the_close_command_a_refused_resume_prints_runs_as_printed(sim, pen, tmp_path):
    from smpdevice.cli import main

    sid, _, made, crashed = crashed_at_the_plan(sim, pen, tmp_path)
    with PassLog.open(crashed) as log, pytest.raises(ResumeError) as refused:
        resume_session(pen, log, sid, technician="ana")
    printed = str(refused.value).split("close it: ", 1)[1]
    words = shlex.split(printed)
    assert words[:5] == ["smp", "run", "--resume", sid, "--close"]
    assert "--port" in words and "--db" in words  # the log is not the station's
    result = CliRunner().invoke(main, words[1:], env={"SMP_SIM_CLOCK": "virtual"})
    assert result.exit_code == 0, (printed, result.output)
    assert "it is now closed" in result.output
    with PassLog.open(crashed, readonly=True) as log:
        closed = log.session(sid)
        assert closed.closed_at is not None
        assert closed.summary["pen_counted"][0]["impressions"] == made


def test_a_caller_gives_its_own_close_command(sim, pen, tmp_path):
    sid, _, _, crashed = crashed_at_the_plan(sim, pen, tmp_path)
    with PassLog.open(crashed) as log, pytest.raises(NothingLeft) as refused:
        resume_session(pen, log, sid, technician="ana", close_how="end it with session.close")
    assert str(refused.value).endswith("close it: end it with session.close")
    assert refused.value.session_id == sid


def test_a_close_without_a_resume_says_the_crashed_pass_counts_its_checkpoint(sim, pen,
                                                                             tmp_path):
    """`--close` reads no pen: a crashed pass no resume counted keeps its checkpoint's figures,
    and the close says so (the pen may have made more)."""
    from smpdevice.cli import main

    sid, _, _, crashed = crashed_at_the_plan(sim, pen, tmp_path)
    result = CliRunner().invoke(main, ["run", "--resume", sid, "--close", "--port",
                                       "pensim://", "--db", str(crashed)],
                                env={"SMP_SIM_CLOCK": "virtual"})
    assert "it is now closed" in result.output, result.output
    assert "pass 2 was cut by a host crash and no resume counted it by the pen" in \
        " ".join(result.output.split()), result.output

