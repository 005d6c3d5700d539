"""The replay controller runs under the footswitch mode the session was recorded with, not the
replaying station's (review 3): the recording's metadata keeps the mode."""
from __future__ import annotations

import pytest

from smpdevice.control import PenController
from smpdevice.records.frames import read_recording
from smpdevice.replay.runner import replay_session
from tests.smpdevice.conftest import sim, true_calibration  # noqa: F401 - a fixture
from tests.smpdevice.replay.conftest import record_session

pytestmark = pytest.mark.virtual_time


@pytest.mark.parametrize("station", ["off", "optional"])
def test_a_station_set_differently_replays_without_a_difference(sim, passlog,  # noqa: F811
                                                                monkeypatch, station):
    sim.press_pedal()  # required: the pen starts only with the pedal down
    with PenController.connect(sim.url, calibration=true_calibration(sim), lease_ms=200,
                               clock=sim.clock, footswitch="required") as pen:
        recorded = record_session(pen, passlog)
    assert read_recording(recorded.path).meta["footswitch"] == "required"
    monkeypatch.setenv("SMP_FOOTSWITCH", station)  # the replaying station's own setting
    report = replay_session(recorded.passlog, recorded.session_id)
    assert report.match, report.difference
