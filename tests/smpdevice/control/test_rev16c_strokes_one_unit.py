"""Review 16 (b16d).

A legal setpoint at a zone's strokes-per-impression maximum whose duty rounds up on the wire
has its period shortened by dozens of wire units (70 us here) when the duty one unit down
(0.6 unit from the asked value) would do. Brief of review 16b-d: a legal setpoint is never moved
by more than one wire unit needlessly; docs/safety.md "Too deep": "by the fewest units"."""

# ruff: noqa: F811 (fixtures imported from the suite's conftests, used as arguments)
from __future__ import annotations

import random

import pytest

from smpdevice.control.guard import wire_setpoints
from smpdevice.control.pen import Setpoints
from smpdevice.envelope import strokes_per_impression
from tests.smpdevice.conftest import pen, sim, true_calibration  # noqa: F401

pytestmark = pytest.mark.virtual_time


def test_a_setpoint_at_the_strokes_maximum_moves_one_unit_at_most(sim, pen):
    zone = pen.set_zone("nape")  # at most 10 strokes per impression
    speed_hz, duty_pct = 108.33133, 69.962
    period_ms = zone.max_strokes_per_impression / (speed_hz * duty_pct / 100) * 1000
    assert strokes_per_impression(speed_hz, duty_pct, period_ms) <= 10.0
    pen.set_setpoints(depth_mm=0.4, speed_hz=speed_hz, duty_pct=duty_pct, period_ms=period_ms)
    fw = sim.firmware
    moves = {"speed_centihz": abs(fw.speed_set_centihz - speed_hz * 100),
             "duty_permille": abs(fw.duty_permille - duty_pct * 10),
             "period_us": abs(fw.period_us - period_ms * 1000)}
    assert strokes_per_impression(fw.speed_set_centihz / 100, fw.duty_permille / 10,
                                  fw.period_us / 1000) <= 10.0
    assert all(m <= 1.0 for m in moves.values()), moves


def test_one_field_rounded_up_at_the_maximum_moves_one_unit_at_most(pen):
    """Whenever one field alone rounds up on the wire (the others down or exact), one unit
    down in it brings the strokes back under the maximum: no field moves more than a unit."""
    rng = random.Random(16)
    checked = 0
    for name in pen.zones:
        zone = pen.set_zone(name)
        for _ in range(300):
            speed_hz = rng.uniform(zone.speed_min_hz, zone.speed_max_hz)
            duty_pct = rng.uniform(zone.duty_min_pct, zone.duty_max_pct)
            period_ms = zone.max_strokes_per_impression / (speed_hz * duty_pct / 100) * 1000
            if not zone.period_min_ms <= period_ms <= zone.period_max_ms:
                continue
            asked = (speed_hz * 100, duty_pct * 10, period_ms * 1000)
            if sum(round(a) > a for a in asked) != 1:
                continue
            sp = Setpoints(depth_mm=(zone.epidermal_floor_mm + zone.dermal_ceiling_mm) / 2,
                           speed_hz=speed_hz, duty_pct=duty_pct, period_ms=period_ms)
            wire = wire_setpoints(zone, lambda mm: mm, lambda mm: mm, sp)
            assert not isinstance(wire, list), (name, sp, wire)
            sent = (wire.speed_centihz, wire.duty_permille, wire.period_us)
            assert strokes_per_impression(sent[0] / 100, sent[1] / 10, sent[2] / 1000) \
                <= zone.max_strokes_per_impression, (name, sp, wire)
            moves = [abs(s - a) for s, a in zip(sent, asked, strict=True)]
            assert max(moves) <= 1.0, (name, sp, wire)
            checked += 1
    assert checked > 100, checked
