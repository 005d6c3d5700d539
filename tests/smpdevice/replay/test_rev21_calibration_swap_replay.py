"""Session 21 (review 20 R1, known gap of session 20): a session whose calibration was swapped
between passes did not replay: the replay played every pass on the recording's calibration,
so the first pass after the swap sent another depth (`first difference: command #6 ...:
expected SetSetpoints {'depth_um': 506, ...}; got SetSetpoints {'depth_um': 700, ...}`).

Each pass's begin record names its calibration (rev 20); the replay now installs it on its
controller before the pass (replay/pass_calibration.py). A pass record without it (made before
rev 20) installs nothing: such a recording replays as before.

Virtual time, the real simulator, controller, pass log (SQLite) and recording; the swap is made
between an integrator's `run_pass` calls (the pen disarmed first: a swap is idle only, as
tests/smpdevice/sessions/test_rev20_pass_calibration.py does), or before the first pass.
Each replay runs several times from a fresh controller."""

from __future__ import annotations

import pytest

from smpdevice.control.calibration import Calibration
from smpdevice.passlog import PassLog
from smpdevice.sessions.session_guard import PassGuards
from tests.smpdevice.replay.conftest import assert_matches, record_acted, replay_runs

pytestmark = pytest.mark.virtual_time

RUNS = 3


def _other(sim) -> Calibration:
    """Another fit of the same pen: 0.2 mm more offset, so every depth is sent otherwise."""
    return Calibration.linear(pen_serial=sim.serial, technician="bo",
                              offset_mm=-sim.model.offset_mm + 0.2, gain=sim.model.gain)


def _swap_between(sim, pen, session) -> None:
    """An integrator's passes (`run_pass`), the calibration swapped between them: armed for
    pass 1, the pen is disarmed first (a swap is idle only); pass 2 is in another zone, so
    the replayed session's own disarm for it is that DISARM."""
    plan = session.profile.plan
    assert plan[0].zone != plan[1].zone
    session.run_pass(plan[0])
    pen.disarm()
    pen.set_calibration(_other(sim))
    for planned in plan[1:]:
        session.run_pass(planned)


def _swap_before_play(sim, pen, session, log) -> None:
    pen.set_calibration(_other(sim))


def _named(tmp_path_log: PassLog, sid: str) -> list[str | None]:
    return [(p.calibration or {}).get("calibration_id") for p in tmp_path_log.passes(sid)]


@pytest.mark.parametrize("where", ["between passes", "before the first pass"])
def test_a_session_with_a_calibration_swapped_replays_as_a_match(tmp_path, where):
    if where == "between passes":
        acted = record_acted(tmp_path, None, passes=3, play=_swap_between)
    else:
        acted = record_acted(tmp_path, None, passes=2, before=_swap_before_play)
    with PassLog(acted.path, readonly=True) as log:
        named = _named(log, acted.session_id)
        opened = log.session(acted.session_id).calibration_id
    assert acted.passes == ("completed",) * len(named), acted.passes
    swapped = [n for n in named if n != opened]
    assert swapped and len(set(swapped)) == 1, (named, opened)  # the run played on the swap
    assert_matches(acted, RUNS, unwanted="calibration")


def test_a_swap_the_pass_records_do_not_name_replays_as_before(tmp_path, monkeypatch):
    """Pass records made before they named their calibration (`calibration` None): nothing is
    installed, the passes play on the recording's, and the swap shows as a difference at the
    first depth sent through it, as it did before (no calibration is guessed)."""
    monkeypatch.setattr(PassGuards, "_played_on", staticmethod(lambda calibration: None))
    acted = record_acted(tmp_path, None, passes=2, play=_swap_between)
    with PassLog(acted.path, readonly=True) as log:
        assert _named(log, acted.session_id) == [None, None]
    (report,) = replay_runs(acted, 1)
    assert not report.match
    assert report.difference.what == "command", report.difference
    assert "SetSetpoints" in report.difference.expected, report.difference
    assert report.difference.expected != report.difference.got


def test_records_that_name_no_calibration_and_no_swap_still_match(tmp_path, monkeypatch):
    monkeypatch.setattr(PassGuards, "_played_on", staticmethod(lambda calibration: None))
    acted = record_acted(tmp_path, None, passes=2)
    for report in replay_runs(acted, 1):
        assert report.match, (report.difference, report.notes)
