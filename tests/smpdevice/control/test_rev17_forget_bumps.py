"""Setpoints forgotten (`_forget_setpoints`: a retract, a fault, a zone left with no depth,
a calibration swap) while a set_setpoints is on its way (sent, its ACK not read yet) stay
forgotten: the ACK that lands afterwards never puts them in force, since forgetting bumps
the setpoint generation they were computed under (wire_units.require_current)."""

from __future__ import annotations

from smpdevice.control.states import StateError
from smpdevice.control.wire_units import generation

from .test_rev16e_zone_during_setpoints import _race


def test_forgetting_bumps_the_generation_setpoints_were_computed_under():
    before: list[object] = []

    def forget(pen) -> None:  # as a retract or a fault does, in the middle of the set
        before.append(generation(pen))
        pen._forget_setpoints()
        before.append(generation(pen))

    setpoints, raised, arm_error = _race(forget, 0.5)
    assert before[0] != before[1], "forgetting left the generation as it was"
    assert setpoints is None, "an ACK after the forget put the old setpoints in force"
    assert raised and isinstance(raised[0], StateError) and "set them again" in str(raised[0])
    assert isinstance(arm_error, StateError) and "no setpoints" in str(arm_error)
