"""Session 21b (review of 6bc3071): the replay installed a pass's recorded calibration only
when its *id* differed from the one in force, and did not compare the calibration each
replayed pass was played on with the one its record names. So a calibration swapped between
passes for another fit kept under the same id (another offset or gain, the same
calibration_id) replayed on the old fit; and a pass record that names a calibration other
than the one its depths were sent through (or one no controller can install: NaN or a huge
gain) replayed as `match` with at most a note.

(The session's summary did not list those passes in `pass_calibrations` either: it compared
ids only.) Now the replay installs the recorded calibration unless the one in force is the
same in id, offset and gain, and each replayed pass's calibration (what its begin record
names) is one of the pass figures compared: a pass recorded on another calibration than the
replayed one played is a difference (`pass #n: expected calibration=...`).

Virtual time, the real simulator, controller, pass log (SQLite) and recording."""

from __future__ import annotations

import pytest

from smpdevice.control.calibration import Calibration
from smpdevice.passlog import PassLog
from tests.smpdevice.replay.conftest import assert_matches, record_acted, replay_runs

pytestmark = pytest.mark.virtual_time


def _refit(pen, offset_step_mm: float = 0.2) -> Calibration:
    """The calibration in force, refitted under the same id: 0.2 mm more offset."""
    current = pen.calibration
    return Calibration.linear(pen_serial=current.pen_serial, technician="bo",
                              offset_mm=current.offset_mm + offset_step_mm, gain=current.gain,
                              calibration_id=current.calibration_id)


LISTED: list[list[dict]] = []  # each recorded session's `pass_calibrations`


def _swap_same_id(sim, pen, session) -> None:
    plan = session.profile.plan
    assert plan[0].zone != plan[1].zone
    session.run_pass(plan[0])
    pen.disarm()
    pen.set_calibration(_refit(pen))
    for planned in plan[1:]:
        session.run_pass(planned)
    LISTED.append(list(session.pass_calibrations))


def test_a_refit_under_the_same_id_between_passes_replays_as_a_match(tmp_path):
    acted = record_acted(tmp_path, None, passes=3, play=_swap_same_id)
    with PassLog(acted.path, readonly=True) as log:
        played = [p.calibration for p in log.passes(acted.session_id)]
    assert len({p["calibration_id"] for p in played}) == 1, played
    assert played[0]["offset_mm"] != played[1]["offset_mm"] == played[2]["offset_mm"]
    # the summary lists the passes played on the refit, as on any other swap
    assert [(c["index"], c["offset_mm"]) for c in LISTED[-1]] == [
        (1, played[1]["offset_mm"]), (2, played[2]["offset_mm"])], LISTED
    assert_matches(acted, 2, unwanted="calibration")


def _lying(change: dict):
    """`_played_on` as a writer that names another calibration than the one the pen drove:
    the records lie, the bytes sent do not."""
    from smpdevice.sessions.session_guard import PassGuards

    real = PassGuards._played_on

    def played_on(calibration):
        named = real(calibration)
        return None if named is None else {**named, **change}

    return played_on


@pytest.mark.parametrize(("change", "what", "named"), [
    # another fit, the same id: the replay sends (or refuses) another depth there
    ({"offset_mm": 0.5}, ("command", "end"), "SetSetpoints"),
    ({"gain": 1e6}, ("pass",), "calibration"),  # no controller installs it: played on the old
], ids=["offset", "huge gain"])
def test_a_pass_record_naming_another_calibration_than_it_drove_differs(
        tmp_path, monkeypatch, change, what, named):
    """(Another id for the same fit cannot be told from the bytes: no depth differs.)"""
    from smpdevice.sessions.session_guard import PassGuards

    monkeypatch.setattr(PassGuards, "_played_on", staticmethod(_lying(change)))
    acted = record_acted(tmp_path, None, passes=2)
    monkeypatch.undo()
    with PassLog(acted.path, readonly=True) as log:
        recorded = [p.calibration for p in log.passes(acted.session_id)]
    assert all(r == {**r, **change} for r in recorded), recorded
    for report in replay_runs(acted, 2):
        assert not report.match, report.notes
        assert report.difference.what in what, report.difference
        assert named in report.difference.expected, report.difference
        if what == ("pass",):
            assert report.difference.index == 0, report.difference
            assert any("could not be installed" in n for n in report.notes), report.notes
