"""Review 16 (b16e, finding 1): a zone change (or a client floor) that runs while another
thread's set_setpoints is on its way (sent, its ACK not read yet) checked the setpoints in
force before it (none), so it passed; the ACK then put the new setpoints in force, checked
against the OLD zone: armed and started, the needle ran 0.70 mm in the hairline (ceiling
0.55). Now setpoints computed under another zone, floor or calibration never come in force
(set_setpoints says so; arm and start refuse: none are in force)."""

from __future__ import annotations

import contextlib
import threading

import pytest

from smpdevice.control import PenController
from smpdevice.control.states import StateError
from smpdevice.errors import SmpError
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.virtual_time import virtual_sim

SP = {"speed_hz": 80.0, "duty_pct": 35.0, "period_ms": 120.0}


def _race(change, depth_mm: float):
    """set_setpoints(depth_mm) in crown from a thread; `change(pen)` while it is on its way.
    Returns (pen's setpoints after, what set_setpoints raised, arm's error)."""
    with (virtual_sim(seed=7, link_faults="delay=0.2") as sim,  # replies take 0.2 s
          PenController.connect(sim.url, calibration=true_calibration(sim),
                                clock=sim.clock) as pen):
        pen.set_zone("crown")  # 0.25 .. 0.75
        before_um = sim.firmware.depth_cmd_um
        raised: list[BaseException] = []

        def setter() -> None:
            try:
                pen.set_setpoints(depth_mm=depth_mm, **SP)
            except SmpError as exc:
                raised.append(exc)

        thread = threading.Thread(target=setter)
        thread.start()
        sim.time.wait_until(lambda: sim.firmware.depth_cmd_um != before_um, 3.0)  # on its way
        with contextlib.suppress(SmpError):  # refused: fine
            change(pen)
        thread.join(10)
        assert not thread.is_alive()
        ceiling, floor = pen.zone.dermal_ceiling_mm, pen.zone.epidermal_floor_mm
        assert pen.setpoints is None or floor <= pen.setpoints.depth_mm <= ceiling, (
            f"setpoints {pen.setpoints} in force in '{pen.zone_name}' ({floor}..{ceiling}): "
            f"arm() and start_needle() run them")
        arm_error = None
        try:
            pen.arm()
        except SmpError as exc:
            arm_error = exc
        return pen.setpoints, raised, arm_error


def test_setpoints_in_force_always_fit_the_active_zone():
    setpoints, raised, arm_error = _race(lambda pen: pen.set_zone("hairline"), 0.7)
    assert setpoints is None
    assert raised and isinstance(raised[0], StateError) and "set them again" in str(raised[0])
    assert isinstance(arm_error, StateError) and "no setpoints" in str(arm_error)


def test_the_same_zone_chosen_again_also_leaves_none_in_force():
    # a depth that fits both: still computed before the change, so never put in force
    setpoints, raised, _ = _race(lambda pen: pen.set_zone("hairline"), 0.5)
    assert setpoints is None and raised


def test_a_client_floor_raised_meanwhile_leaves_none_in_force():
    # floor 0.40 + 0.05 = 0.45 mm, above the 0.30 mm on its way
    setpoints, raised, arm_error = _race(lambda pen: pen.set_client_skin(0.40), 0.30)
    assert setpoints is None and raised
    assert arm_error is not None


def test_without_a_change_the_setpoints_come_in_force():
    setpoints, raised, arm_error = _race(lambda pen: None, 0.7)
    assert setpoints is not None and setpoints.depth_mm == pytest.approx(0.7)
    assert not raised and arm_error is None
