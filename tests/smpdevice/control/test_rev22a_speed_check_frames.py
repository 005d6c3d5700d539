"""Session 22 (review A): a speed check counts punctures from its own spin's reports only.

The speed step counted the punctures of each spin from a public telemetry listener
(`add_telemetry_listener`), added just before the spin. Those listeners share one bounded
queue, delivered on its own thread to the listeners present at delivery: with an integrator's
display held up (a frozen UI), a spin's frames were still queued when its list was removed
(before the fix this run failed: "cannot count punctures from 0 telemetry frames"), and the
previous spin's frames, queued, went to the next spin's list: its rate counted across both
spins and the stop between them (the defect of review 22: reports that predate the command
they are meant to measure). The frames are now taken as read, on the reading thread, as the
session's counter is (review9a R06). The pen is on a clock its controller drives
(`pensim://?clock=virtual`'s): a held listener holds it half a second at most, then it goes
at the wall's pace.
"""

from __future__ import annotations

import threading

from firmware_protocol.messages import MsgType
from simulators import PenSimulator, VirtualClock
from simulators.firmware import PenFirmware
from smpdevice.calibration.gauges import SimulatorGauge
from smpdevice.calibration.report import CalibrationSettings
from smpdevice.calibration.workflow import run_calibration
from smpdevice.control import PenController


def test_a_held_display_never_lends_a_spin_the_previous_spins_frames(monkeypatch):
    release = threading.Event()
    starts: list[int] = []
    original = PenFirmware._HANDLERS[MsgType.NEEDLE_START]

    def noting(fw: PenFirmware, msg) -> object:
        starts.append(fw.telemetry_seq)
        if len(starts) == 2:  # the second spin: its frame list is there, the first's queued
            release.set()
        return original(fw, msg)

    monkeypatch.setitem(PenFirmware._HANDLERS, MsgType.NEEDLE_START, noting)

    held: list[bool] = []

    def frozen_ui(t) -> None:  # held from the first spin's first running frame
        if t.needle_running and not release.is_set():
            held.append(True)
            release.wait(60)

    try:
        with (PenSimulator(seed=3, clock=VirtualClock(host_driven=True)) as sim,
              PenController.connect(sim.url, telemetry_hz=20) as ctl):
            ctl.add_telemetry_listener(frozen_ui)
            report = run_calibration(ctl, SimulatorGauge(sim), technician="ana",
                                     settings=CalibrationSettings(spin_duration_s=1.0))
    finally:
        release.set()
    assert held and len(starts) >= 3  # the display was held across the first spin's end
    check = report.puncture_rate
    assert check is not None and len(check.points) == 3, check
    for point in check.points:  # each its own spin's: within the run's bound of its speed
        assert abs(point.error_pct) <= check.tolerance_pct, check.points
