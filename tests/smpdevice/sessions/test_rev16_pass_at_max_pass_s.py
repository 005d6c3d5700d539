"""A timed pass planned at (or within a grace of) its zone's `max_pass_s`, which the profile
checks accept, ends at its plan and is recorded `completed` even when the session's thread is
held up; the needle still never runs past `max_pass_s` (the controller's planned-end stop is
then the time limit's own: at `max_pass_s`, nothing queued ahead of it).

Promised: docs/safety.md "Overworking one spot": a timed pass is stopped by the controller at
its planned length when the session's thread is held up, recorded `completed`.
Found (review 16): with `max_pass_s` 1 s, a 1 s pass and one slow redraw was recorded `stopped`
(the over-time stop fired at 1 s, before the planned-end stop at 1.1 s).
"""

# ruff: noqa: F811 (fixtures imported from the suite's conftests, used as arguments)
from __future__ import annotations

import pytest

from smpdevice.control import PenController, State
from smpdevice.envelope import parse_envelope
from smpdevice.passlog import PassLog
from smpdevice.sessions.profiles import parse_profile
from smpdevice.sessions.screening import parse_screening
from smpdevice.sessions.session import TreatmentSession
from tests.smpdevice.conftest import sim, true_calibration  # noqa: F401

pytestmark = pytest.mark.virtual_time

MAX_PASS_S = 1.0
ZONES = parse_envelope({"crown": {"max_pass_s": MAX_PASS_S}})
CLEAR = dict.fromkeys(("open_sores", "eczema", "dermatitis", "psoriasis_flare", "infection",
                       "sunburn", "keloid_tendency"), False)
TICK_S = 0.05  # the controller's checks run every few ms: a stop goes within this


def _profile(duration_s: float):
    return parse_profile({
        "schema_version": 1, "session_kind": "base_density", "client_ref": "C-0042",
        "zones": {"crown": {"needle": "1RL 0.25mm", "depth_mm": 0.5, "speed_hz": 90.0,
                            "duty_pct": 40.0, "period_ms": 100.0}},
        "plan": [{"zone": "crown", "duration_s": duration_s}]}, ZONES)  # accepted: not above


def _connect(sim) -> PenController:
    return PenController.connect(sim.url, calibration=true_calibration(sim), lease_ms=200,
                                 clock=sim.clock, zones=ZONES)


@pytest.mark.parametrize("duration_s", [MAX_PASS_S, MAX_PASS_S - 0.05])
def test_a_pass_planned_at_max_pass_s_completes_after_a_slow_redraw(sim, tmp_path, duration_s):
    pen = _connect(sim)
    redraws: list[int] = []
    needle_s: list[float] = []  # when each report saw the needle running (the pen's own word)
    pen.add_inline_telemetry_reader(
        lambda t: needle_s.append(t.received_at_s) if t.needle_running else None)

    def slow_redraw(_progress) -> None:
        if not redraws:
            redraws.append(1)
            pen.pause(2.5)  # one slow redraw, on the controller's (virtual) clock

    try:
        with PassLog.open(tmp_path / "passlog.sqlite") as log:
            session = TreatmentSession.open(pen, log, _profile(duration_s), technician="ana",
                                            screening=parse_screening(CLEAR))
            [result] = session.play(on_progress=slow_redraw)
            summary, _sheet = session.close()
            [record] = log.passes(session.session_id)
    finally:
        pen.close()
    assert redraws
    assert result.outcome.value == "completed", (result.outcome, result.detail)
    assert summary["outcome"] == "completed", summary
    ran_s = needle_s[-1] - needle_s[0]
    assert duration_s - TICK_S <= ran_s <= MAX_PASS_S + TICK_S, ran_s  # never past the limit
    assert record.ended_at > record.started_at


def test_a_pass_planned_past_max_pass_s_is_still_stopped_at_the_limit(sim):
    """The safety limit holds for a caller that plans longer than the zone allows."""
    pen = _connect(sim)
    try:
        pen.set_zone("crown")
        pen.set_setpoints(depth_mm=0.5, speed_hz=90.0, duty_pct=40.0, period_ms=100.0)
        pen.arm()
        start_s = sim.clock.now()
        pen.start_needle(run_for_s=MAX_PASS_S + 0.5)
        pen.wait_for_state(State.ARMED, timeout_s=5.0)
        assert sim.clock.now() - start_s <= MAX_PASS_S + TICK_S + 0.1  # + the stop's answer
        assert pen.stopped_at_planned_end is None  # the time limit stopped it, not its plan
    finally:
        pen.close()
