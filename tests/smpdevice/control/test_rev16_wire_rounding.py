"""A setpoint inside the zone reaches the pen rounded to the wire's integer units: rounded to
the nearest unit, except where that lands past a limit of the zone (as narrowed to the pen and
to the client's skin), then one unit toward the inside; what the pen runs is checked too.

Promised: docs/protocol.md "no rounding at a limit"; docs/safety.md "Controller guard": every
setpoint within the zone.
Found (review 16): 0.55 mm (the hairline's ceiling, seed 7) went out as 846 um = 0.55044 mm in
skin, 0.2 mm (its floor) as 506 um = 0.19949 mm; speed x duty x period rounded up to 8.0056
strokes per impression in a zone of 8.
"""

# ruff: noqa: F811 (fixtures imported from the suite's conftests, used as arguments)
from __future__ import annotations

import random

import pytest

from smpdevice.control import PenController
from smpdevice.envelope import EnvelopeError, parse_envelope, strokes_per_impression
from tests.smpdevice.conftest import pen, sim, true_calibration  # noqa: F401

pytestmark = pytest.mark.virtual_time


def _on_pen(sim, pen) -> tuple[float, float, float, float]:
    """What the pen runs, read back from the integers it was sent (depth in skin)."""
    fw = sim.firmware
    return (pen.calibration.to_depth_mm(fw.depth_cmd_um / 1000), fw.speed_set_centihz / 100,
            fw.duty_permille / 10, fw.period_us / 1000)


def _assert_inside(zone, depth_mm, speed_hz, duty_pct, period_ms) -> None:
    assert zone.epidermal_floor_mm <= depth_mm <= zone.dermal_ceiling_mm, depth_mm
    assert zone.speed_min_hz <= speed_hz <= zone.speed_max_hz, speed_hz
    assert zone.duty_min_pct <= duty_pct <= zone.duty_max_pct, duty_pct
    assert zone.period_min_ms <= period_ms <= zone.period_max_ms, period_ms
    strokes = strokes_per_impression(speed_hz, duty_pct, period_ms)
    assert strokes <= zone.max_strokes_per_impression, strokes


@pytest.mark.parametrize("edge", ["dermal_ceiling_mm", "epidermal_floor_mm"])
def test_depth_at_a_zone_limit_never_goes_out_past_it(sim, pen, edge):
    zone = pen.set_zone("hairline")  # seed 7: 0.55 went out as 846 um, 0.2 as 506 um
    limit = getattr(zone, edge)
    pen.set_setpoints(depth_mm=limit, speed_hz=80.0, duty_pct=35.0, period_ms=120.0)
    in_skin = _on_pen(sim, pen)[0]
    assert zone.epidermal_floor_mm <= in_skin <= zone.dermal_ceiling_mm, (
        f"{limit} mm asked, {sim.firmware.depth_cmd_um} um sent = {in_skin:.7f} mm in skin")
    assert abs(in_skin - limit) < 0.0011  # one wire unit at most: never far from what was asked


def test_strokes_per_impression_on_the_pen_stay_within_the_zone(sim, pen):
    zone = pen.set_zone("hairline")  # max 8 strokes, speed <= 110 Hz, duty <= 60 %
    speed_hz, duty_pct = 109.996, 59.96
    period_ms = zone.max_strokes_per_impression / (speed_hz * duty_pct / 100) * 1000
    assert strokes_per_impression(speed_hz, duty_pct, period_ms) <= 8.0  # accepted as asked
    pen.set_setpoints(depth_mm=0.4, speed_hz=speed_hz, duty_pct=duty_pct, period_ms=period_ms)
    _assert_inside(zone, *_on_pen(sim, pen))


def test_every_zone_and_the_clients_floor_hold_on_the_wire(sim, pen):
    """Values nobody listed: every default zone, at and near each of its limits, also with a
    client's own floor (0.3 mm + 0.05 margin = 0.35 mm, not on a wire unit either)."""
    rng = random.Random(16)
    for skin in (None, 0.3):
        pen.set_client_skin(skin)
        for name in pen.zones:
            try:
                zone = pen.set_zone(name)
            except EnvelopeError:
                continue  # this client cannot be treated there (floor past the ceiling)
            for _ in range(12):
                depth = rng.choice([zone.epidermal_floor_mm, zone.dermal_ceiling_mm,
                                    rng.uniform(zone.epidermal_floor_mm, zone.dermal_ceiling_mm)])
                speed = rng.choice([zone.speed_min_hz, zone.speed_max_hz,
                                    rng.uniform(zone.speed_min_hz, zone.speed_max_hz)])
                duty = rng.uniform(zone.duty_min_pct, zone.duty_max_pct)
                most_ms = zone.max_strokes_per_impression / (speed * duty / 100) * 999.999999
                period = min(zone.period_max_ms, most_ms)  # at the strokes limit, or inside
                if period < zone.period_min_ms:
                    continue
                pen.set_setpoints(depth_mm=depth, speed_hz=speed, duty_pct=duty,
                                  period_ms=period)
                _assert_inside(zone, *_on_pen(sim, pen))


def test_a_window_narrower_than_one_wire_unit_is_refused_and_nothing_sent(sim):
    zones = parse_envelope({"crown": {"epidermal_floor_mm": 0.4, "dermal_ceiling_mm": 0.4}})
    pen = PenController.connect(sim.url, calibration=true_calibration(sim), lease_ms=200,
                                clock=sim.clock, zones=zones)
    try:
        pen.set_zone("crown")
        sent = sim.firmware.depth_cmd_um
        with pytest.raises(EnvelopeError, match="wire's units"):
            pen.set_setpoints(depth_mm=0.4, speed_hz=90.0, duty_pct=40.0, period_ms=100.0)
        assert sim.firmware.depth_cmd_um == sent and pen.setpoints is None
    finally:
        pen.close()
