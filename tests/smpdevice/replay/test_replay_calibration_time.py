"""review9b R04: a kept incident replay judges the recorded calibration at the recording's own
time, as live, so it still matches once that calibration has expired (a month later, in CI);
while a live controller a month later refuses the same calibration (safety not loosened), and
no controller but a replay's may run at another time than today's.

"A month later" is the clock a calibration's validity is judged by (`today_utc`) moved on 31
days: the recording, its pass log and the replay are real."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

import smpdevice.control.calibration as calibration_module
from simulators import PenSimulator, VirtualClock
from smpdevice.control import PenController
from smpdevice.control.calibration import Calibration, CalibrationError
from smpdevice.control.states import StateError
from smpdevice.passlog import PassLog
from smpdevice.replay.runner import replay_session
from tests.smpdevice.conftest import CROWN
from tests.smpdevice.replay.conftest import record_session
from tests.smpdevice.virtual_time import TimeDriver

pytestmark = pytest.mark.virtual_time


def _a_month_later(monkeypatch) -> None:
    monkeypatch.setattr(calibration_module, "today_utc",
                        lambda: datetime.now(UTC) + timedelta(days=31))


def _calibration(sim) -> Calibration:
    return Calibration.linear(pen_serial=sim.serial, technician="qa",
                              offset_mm=-sim.model.offset_mm, gain=sim.model.gain,
                              simulated=True)  # valid 30 days from now


def test_a_recorded_session_replays_the_same_after_its_calibration_expired(tmp_path,
                                                                           monkeypatch):
    clock = VirtualClock()
    with PenSimulator(seed=7, clock=clock) as sim, TimeDriver(clock), \
            PassLog.open(tmp_path / "passlog.sqlite") as log:
        sim.advance(0.06)
        calibration = _calibration(sim)
        with PenController.connect(sim.url, calibration=calibration, lease_ms=200,
                                   clock=clock) as pen:
            recorded = record_session(pen, log)
        assert replay_session(log, recorded.session_id).match

        _a_month_later(monkeypatch)
        with PenController.connect(sim.url, calibration=calibration, lease_ms=200,
                                   clock=clock) as pen:  # live, a month later: refused
            pen.set_zone("crown")
            with pytest.raises(CalibrationError, match="expired"):
                pen.set_setpoints(**CROWN)
            with pytest.raises(StateError, match="replay"):
                pen.replay_at(datetime.now(UTC) - timedelta(days=31))
        later = replay_session(log, recorded.session_id)
        assert later.match, (later.difference, later.notes)
