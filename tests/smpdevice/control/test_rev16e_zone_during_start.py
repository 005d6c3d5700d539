"""Review 16 (b16e #4): a zone change asked while another thread's start_needle is on its way
(NEEDLE_START sent, its ACK not yet read: the controller still says armed, the pen runs) is
taken as an armed one: the zone changes into a running pass, and the needle runs the integers
rounded for the old zone (846 um = 0.5504 mm, past the hairline's 0.55 ceiling) until the
re-sent setpoints arrive. Promised: docs/safety.md "A change of zone ... refused, nothing
changed, while running (stop first)"; controller.set_zone "(not while running)";
control/wire_units.py "the needle would run the old integers until the pen has the new"."""

from __future__ import annotations

import threading

import pytest

from firmware_protocol.codes import FirmwareState
from smpdevice.control import PenController, State
from smpdevice.control.states import StateError
from smpdevice.envelope import EnvelopeError
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.virtual_time import virtual_sim


def test_a_zone_change_while_the_start_is_on_its_way_is_refused():
    with (virtual_sim(seed=7, link_faults="delay=0.2") as sim,  # replies take 0.2 s
          PenController.connect(sim.url, calibration=true_calibration(sim),
                                clock=sim.clock) as pen):
        pen.set_zone("crown")  # 0.55 goes out as 846 um = 0.5504 mm (seed 7)
        pen.set_setpoints(depth_mm=0.55, speed_hz=80.0, duty_pct=35.0, period_ms=120.0)
        pen.arm()
        starter = threading.Thread(target=pen.start_needle)
        starter.start()
        sim.time.wait_until(lambda: sim.firmware.state is FirmwareState.RUNNING, 3.0)
        ran_um = sim.firmware.depth_cmd_um
        changed = None
        try:
            changed = pen.set_zone("hairline")
        except (EnvelopeError, StateError):
            pass  # refused: what running asks
        finally:
            starter.join(10)
            if pen.state is State.RUNNING:
                pen.stop_needle()
        assert changed is None, (
            f"zone changed to 'hairline' (ceiling {changed.dermal_ceiling_mm}) while the pen "
            f"ran {ran_um} um = {pen.calibration.to_depth_mm(ran_um / 1000):.6f} mm in skin")


def test_a_floor_the_held_integers_miss_is_refused_while_the_start_is_on_its_way():
    # seed 7: 0.3502 mm in crown goes out as 652 um = 0.35019 mm; a client floor of exactly
    # 0.3502 mm keeps the floats but not the integers the needle runs: refused, as running
    epidermis_mm = 0.3002
    with (virtual_sim(seed=7, link_faults="delay=0.2") as sim,
          PenController.connect(sim.url, calibration=true_calibration(sim),
                                clock=sim.clock) as pen):
        pen.set_zone("crown")
        pen.set_setpoints(depth_mm=epidermis_mm + 0.05, speed_hz=80.0, duty_pct=35.0,
                          period_ms=120.0)
        assert pen.calibration.to_depth_mm(sim.firmware.depth_cmd_um / 1000) < 0.3502
        pen.arm()
        starter = threading.Thread(target=pen.start_needle)
        starter.start()
        sim.time.wait_until(lambda: sim.firmware.state is FirmwareState.RUNNING, 3.0)
        held_um = sim.firmware.depth_cmd_um
        try:
            with pytest.raises(EnvelopeError, match="stop first"):
                pen.set_client_skin(epidermis_mm)
        finally:
            starter.join(10)
            if pen.state is State.RUNNING:
                pen.stop_needle()
        assert pen.client_epidermis_mm is None  # nothing changed
        assert sim.firmware.depth_cmd_um == held_um


def test_a_zone_change_while_the_arm_is_on_its_way_is_refused():
    with (virtual_sim(seed=7, link_faults="delay=0.2") as sim,
          PenController.connect(sim.url, calibration=true_calibration(sim),
                                clock=sim.clock) as pen):
        pen.set_zone("crown")
        pen.set_setpoints(depth_mm=0.7, speed_hz=80.0, duty_pct=35.0, period_ms=120.0)
        armer = threading.Thread(target=pen.arm)
        armer.start()
        sim.time.wait_until(lambda: sim.firmware.state is FirmwareState.ARMED, 3.0)
        try:
            with pytest.raises(StateError, match="on its way"):
                pen.set_zone("hairline")  # 0.7 held: never armed outside the hairline
        finally:
            armer.join(10)
        assert pen.zone_name == "crown" and pen.state is State.ARMED
        assert pen.setpoints is not None and pen.setpoints.depth_mm == pytest.approx(0.7)
