"""Rev 20 (session 19's known defect 1): a calibration swapped between passes was listed in the
close summary's `pass_calibrations` only; no pass record named it and `smp sessions export`
gave every pass the opening's (or the resumption's) calibration id.

Now each `pass_begin` names the calibration its pass was played on (`calibration`: id,
offset_mm, gain, the pen's as armed) and every export path (SQL JSONL, fast CSV, record by
record; resumed sessions too) gives each pass its own. Real simulator on virtual time, real
SQLite; the chain, the signed close and a replay still hold."""

# ruff: noqa: F811 (fixtures imported from the suite's conftests, used as arguments)
from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner

from smpdevice.cli import main
from smpdevice.control.calibration import Calibration
from smpdevice.passlog import PassLog
from smpdevice.records import export as records_export
from smpdevice.replay.runner import replay_session
from smpdevice.sessions.resume import resume_session
from tests.smpdevice.conftest import pen, sim  # noqa: F401
from tests.smpdevice.sessions.conftest import passlog  # noqa: F401
from tests.smpdevice.sessions.test_session import open_session, short_profile

pytestmark = pytest.mark.virtual_time


def _calibration(sim, technician: str, shift_mm: float) -> Calibration:
    return Calibration.linear(pen_serial=sim.serial, technician=technician,
                              offset_mm=-sim.model.offset_mm + shift_mm, gain=sim.model.gain)


def _named(cal: Calibration) -> dict:
    return {"calibration_id": cal.calibration_id, "offset_mm": cal.offset_mm, "gain": cal.gain}


def _exported_ids(log: PassLog, sid: str) -> dict[str, list[str]]:
    """The calibration id of each pass of `sid`, by export path and format."""
    found = {}
    for sql in (True, False):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(records_export, "SQL_EXPORT", sql)
            for fmt in ("jsonl", "csv"):
                out = io.StringIO()
                log.export(fmt, out, identified=True)
                rows = ([json.loads(line) for line in out.getvalue().splitlines()]
                        if fmt == "jsonl" else
                        list(csv.DictReader(io.StringIO(out.getvalue(), newline=""))))
                found[f"{fmt}-{'sql' if sql else 'records'}"] = [
                    r["calibration_id"] for r in rows if r["session_id"] == sid]
    return found


PATHS = ("jsonl-sql", "csv-sql", "jsonl-records", "csv-records")


def test_each_pass_names_and_exports_the_calibration_it_was_played_on(sim, pen, passlog):
    profile = short_profile(0.2, passes=3)
    session = open_session(pen, passlog, profile)
    opened = pen.calibration
    session.run_pass(profile.plan[0])
    pen.disarm()
    other = _calibration(sim, "bo", 0.2)
    pen.set_calibration(other)  # between passes: accepted, and it drives the next ones
    session.run_pass(profile.plan[1])
    session.run_pass(profile.plan[2])
    summary, _sheet = session.close()
    sid = session.session_id
    passes = passlog.passes(sid)
    assert [p.calibration for p in passes] == [_named(opened)] + [_named(other)] * 2
    assert passlog.session(sid).calibration_id == opened.calibration_id  # the header's
    assert [c["calibration_id"] for c in summary["pass_calibrations"]] == [
        other.calibration_id] * 2  # the summary as before
    wanted = [opened.calibration_id] + [other.calibration_id] * 2
    assert _exported_ids(passlog, sid) == dict.fromkeys(PATHS, wanted)
    assert passlog.verify() is None  # chained and signed as before
    shown = CliRunner().invoke(main, ["sessions", "show", sid, "--db", str(passlog.path),
                                      "--json"])
    assert shown.exit_code == 0, shown.output
    assert [p["calibration"]["calibration_id"]
            for p in json.loads(shown.output)["passes"]] == wanted


def test_a_swap_after_a_resumption_is_exported_per_pass(sim, pen, passlog):
    first = open_session(pen, passlog, short_profile(0.2, passes=3))
    first.play(should_stop=lambda: len(first.results) >= 1)
    first.suspend()
    resumed_on = _calibration(sim, "bo", 0.2)
    pen.set_calibration(resumed_on)
    resumed = resume_session(pen, passlog, first.session_id, technician="ana")
    resumed.run_pass(resumed.remaining[0][1])
    pen.disarm()
    swapped = _calibration(sim, "cy", 0.1)
    pen.set_calibration(swapped)
    resumed.run_pass(resumed.remaining[0][1])
    resumed.close()
    sid = first.session_id
    assert passlog.resumptions(sid)[-1]["calibration_id"] == resumed_on.calibration_id
    wanted = [passlog.session(sid).calibration_id, resumed_on.calibration_id,
              swapped.calibration_id]
    assert len(set(wanted)) == 3
    assert _exported_ids(passlog, sid) == dict.fromkeys(PATHS, wanted)
    assert passlog.verify() is None


def test_a_session_whose_passes_name_their_calibration_verifies_and_replays(pen, passlog):
    session = open_session(pen, passlog, short_profile(0.2, passes=2))
    session.play()
    session.close()
    sid = session.session_id
    assert [p.calibration for p in passlog.passes(sid)] == [_named(pen.calibration)] * 2
    verified = CliRunner().invoke(main, ["sessions", "verify", "--db", str(passlog.path)])
    assert verified.exit_code == 0, verified.output
    report = replay_session(passlog, sid)
    assert report.match, report.difference
