"""A setpoint that is not a number (text, a Decimal, a bool, NaN) is refused naming the range
the active zone allows, narrowed to the pen and the client's skin, as the envelope's own refusal
does: never the actuator's travel, which calls negative depths allowed (review 12 REVF-4)."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from smpdevice.checks import InvalidArgument
from smpdevice.control import PenController, State
from smpdevice.envelope import NumberError
from tests.smpdevice.conftest import CROWN, true_calibration
from tests.smpdevice.virtual_time import virtual_sim

pytestmark = pytest.mark.virtual_time


@pytest.fixture(scope="module")
def pen():
    with virtual_sim(seed=5) as sim, PenController.connect(
            sim.url, calibration=true_calibration(sim), clock=sim.clock) as pen:
        yield pen


def refusal(pen: PenController, name: str, value: object) -> str:
    before = pen.setpoints
    with pytest.raises(InvalidArgument) as err:
        pen.set_setpoints(**{**CROWN, name: value})
    assert isinstance(err.value, NumberError)  # also the ValueError integration.md names
    assert pen.setpoints == before and pen.state is State.IDLE  # nothing was sent
    return str(err.value)


def allowed(message: str) -> tuple[float, float]:
    found = re.search(r"allowed: from (-?[\d.]+) to (-?[\d.]+) ", message)
    assert found, message
    return float(found.group(1)), float(found.group(2))


@pytest.mark.parametrize("value", [Decimal("0.5"), "0.5", True, float("nan"), 10**400],
                         ids=["decimal", "text", "bool", "nan", "huge-int"])
@pytest.mark.parametrize("name", ["depth_mm", "speed_hz", "duty_pct", "period_ms"])
def test_each_setpoint_not_a_number_names_the_active_zones_range(pen, name, value):
    pen.set_client_skin(None)
    zone = pen.set_zone("crown")
    low, high = {"depth_mm": (zone.epidermal_floor_mm, zone.dermal_ceiling_mm),
                 "speed_hz": (zone.speed_min_hz, zone.speed_max_hz),
                 "duty_pct": (zone.duty_min_pct, zone.duty_max_pct),
                 "period_ms": (zone.period_min_ms, zone.period_max_ms)}[name]
    message = refusal(pen, name, value)
    assert allowed(message) == pytest.approx((low, high)), message
    assert "the crown zone's limits" in message


def test_the_range_named_is_narrowed_to_the_clients_floor(pen):
    pen.set_client_skin(0.35)  # floor 0.35 + 0.05 mm
    try:
        pen.set_zone("crown")
        assert allowed(refusal(pen, "depth_mm", "0.3")) == pytest.approx((0.40, 0.75))
    finally:
        pen.set_client_skin(None)


def test_with_no_zone_chosen_the_refusal_says_to_choose_one(tmp_path):
    with virtual_sim(seed=6) as sim, PenController.connect(
            sim.url, calibration=true_calibration(sim), clock=sim.clock) as fresh:
        message = refusal(fresh, "depth_mm", Decimal("0.5"))
    assert "set_zone()" in message and "from -" not in message, message
