"""Review 16 (b16e #2): a calibration installed while a set_setpoints (or the re-send of a zone
change, wire_units.resend) is on its way forgets the setpoints (requests._do_set_calibration:
"actuator commands from the old calibration are stale"), but the ACK that follows restores
them (`done()` sets `setpoints` and the wire record): the controller then arms and starts the
needle on an actuator command computed through the OLD calibration. With the true one
installed, the needle runs ~0.96 mm deep in the crown (ceiling 0.75) while `pen.setpoints`
says 0.7 mm. Promised: docs/safety.md "What the pen runs is the guard's check read back from
the integers"; start_needle "no setpoints since the last retract, fault or calibration"."""

from __future__ import annotations

import threading

import pytest

from smpdevice.control import PenController
from smpdevice.control.calibration import Calibration
from smpdevice.control.states import StateError
from tests.smpdevice.conftest import fit_points, true_calibration
from tests.smpdevice.virtual_time import virtual_sim


def _skewed(sim) -> Calibration:  # the calibration in use before the technician's new one
    offset_mm, gain = -sim.model.offset_mm, sim.model.gain * 0.8
    return Calibration.linear(pen_serial=sim.serial, technician="old", offset_mm=offset_mm,
                              gain=gain, **fit_points(offset_mm, gain))


def test_a_calibration_installed_during_set_setpoints_never_runs_the_old_command():
    with (virtual_sim(seed=7, link_faults="delay=0.2") as sim,  # replies take 0.2 s
          PenController.connect(sim.url, calibration=_skewed(sim), clock=sim.clock) as pen):
        pen.set_zone("crown")
        before_um = sim.firmware.depth_cmd_um
        raised: list[BaseException] = []

        def set_them() -> None:
            try:
                pen.set_setpoints(depth_mm=0.7, speed_hz=80.0, duty_pct=35.0, period_ms=120.0)
            except StateError as exc:  # said: not put in force, set them again
                raised.append(exc)

        setter = threading.Thread(target=set_them)
        setter.start()
        sim.time.wait_until(lambda: sim.firmware.depth_cmd_um != before_um, 3.0)  # on its way
        pen.set_calibration(true_calibration(sim))  # forgets the setpoints
        setter.join(10)
        assert raised and "set them again" in str(raised[0])
        in_skin_mm = pen.calibration.to_depth_mm(sim.firmware.depth_cmd_um / 1000)
        assert pen.setpoints is None or abs(in_skin_mm - pen.setpoints.depth_mm) < 0.01, (
            f"setpoints {pen.setpoints} in force after the calibration changed, the pen holds "
            f"{sim.firmware.depth_cmd_um} um = {in_skin_mm:.4f} mm in skin through it (crown "
            f"ceiling {pen.zone.dermal_ceiling_mm}); arm() and start_needle() would run it")
        with pytest.raises(StateError, match="no setpoints"):
            pen.arm()
        pen.set_setpoints(depth_mm=0.7, speed_hz=80.0, duty_pct=35.0, period_ms=120.0)
        in_skin_mm = pen.calibration.to_depth_mm(sim.firmware.depth_cmd_um / 1000)
        assert abs(in_skin_mm - 0.7) < 0.01  # set again: through the new calibration
