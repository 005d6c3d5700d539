"""A pen that falls silent altogether (no byte at all) is a lost link, judged once: the
controller goes straight to `disconnected`. The check for a pen that still answers but reports
nothing (review r04: telemetry older than the silence limit while bytes still come) ran first
in the same tick and latched a fault on the same silence, then the link was judged lost: a
running pass ended `fault` or `link_lost` depending on which state the session's thread saw
first, and a replay of the session could differ from the live one (CI, 2026-11-29).

On the simulator's virtual clock."""

from __future__ import annotations

import pytest

from smpdevice.control import State
from tests.smpdevice.virtual_time import after

pytestmark = pytest.mark.virtual_time

CROWN = dict(depth_mm=0.45, speed_hz=90.0, duty_pct=40.0, period_ms=120.0)


@pytest.mark.parametrize("stall_after_s", [0.3, 0.45, 0.62])
def test_a_pen_silent_altogether_is_a_lost_link_not_a_fault(sim, pen, stall_after_s):
    seen: list[tuple[State, float, float]] = []  # state, last byte, last report at the change

    def on_state(old, new, reason) -> None:
        if new in (State.FAULT, State.DISCONNECTED) and pen.link and pen.telemetry:
            seen.append((new, pen.link.last_rx_s, pen.telemetry.received_at_s))

    pen.add_state_listener(on_state)
    pen.set_zone("crown")
    pen.set_setpoints(**CROWN)
    pen.arm()
    pen.start_needle()
    after(sim.clock, stall_after_s, lambda: sim.link.stall(sim.firmware.time_s()))
    pen.wait_for_state(State.DISCONNECTED, timeout_s=5.0)
    assert seen and seen[-1][0] is State.DISCONNECTED
    for state, last_byte_s, last_report_s in seen:
        # a fault on silent telemetry needs a byte heard after the last report
        assert state is State.DISCONNECTED or last_byte_s > last_report_s, seen
