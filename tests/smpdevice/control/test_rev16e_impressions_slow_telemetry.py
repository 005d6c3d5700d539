"""Review 16 (b16e): a pass planned in impressions ran far past its count when the telemetry
was slow (`smp serve --telemetry-hz 1`, `PenController.connect(telemetry_hz=1)`, both legal):
its end was judged only on telemetry frames, so 2 impressions planned at 10 per second made
about 11, recorded `completed`. Promised: docs/safety.md "Overworking one spot": "the
controller stops it when the pen's telemetry shows that many since it began (one more at
most, made while the stop travels), recorded `completed`". The pen makes one impression per
period: the controller also ends the pass on that time, whichever comes first."""

# ruff: noqa: F811 (fixtures imported from the suite's conftests, used as arguments)
from __future__ import annotations

import pytest

from smpdevice.control import PenController
from smpdevice.passlog import PassLog
from smpdevice.records.model import PassOutcome
from smpdevice.sessions.profiles import parse_profile
from smpdevice.sessions.screening import parse_screening
from smpdevice.sessions.session import TreatmentSession
from tests.smpdevice.conftest import sim, true_calibration  # noqa: F401
from tests.smpdevice.sessions.test_rev16_pass_at_max_pass_s import CLEAR

pytestmark = pytest.mark.virtual_time


def _play(sim, tmp_path, telemetry_hz, period_ms, plan):
    profile = parse_profile({
        "schema_version": 1, "session_kind": "base_density", "client_ref": "C-0042",
        "zones": {"crown": {"needle": "1RL 0.25mm", "depth_mm": 0.5, "speed_hz": 90.0,
                            "duty_pct": 40.0, "period_ms": period_ms}},
        "plan": [{"zone": "crown", "impressions": n} for n in plan]}, None)
    pen = PenController.connect(sim.url, calibration=true_calibration(sim), clock=sim.clock,
                                telemetry_hz=telemetry_hz)
    try:
        with PassLog.open(tmp_path / "passlog.sqlite") as log:
            session = TreatmentSession.open(pen, log, profile, technician="ana",
                                            screening=parse_screening(CLEAR))
            before = sim.firmware.impressions
            results = session.play()
            pen.pause(2.0)  # the pen's count settles
            made = sim.firmware.impressions - before
            session.close()
    finally:
        pen.close()
    return made, [r.outcome for r in results]


@pytest.mark.parametrize(("telemetry_hz", "period_ms", "planned"),
                         [(1, 100.0, 2), (2, 100.0, 2), (1, 50.0, 5), (2, 250.0, 3),
                          (10, 100.0, 4), (1, 300.0, 2), (5, 300.0, 1)])
def test_an_impressions_pass_ends_near_its_count_at_a_slow_telemetry_rate(
        sim, tmp_path, telemetry_hz, period_ms, planned):
    made, outcomes = _play(sim, tmp_path, telemetry_hz, period_ms, [planned])
    assert outcomes == [PassOutcome.completed]
    assert planned <= made <= planned + 1, (
        f"{planned} impressions planned at {telemetry_hz} Hz telemetry, period {period_ms} ms: "
        f"the pen made {made}")


@pytest.mark.parametrize("telemetry_hz", [1, 2])
def test_passes_back_to_back_each_end_near_their_count(sim, tmp_path, telemetry_hz):
    """The second pass starts right after the first's stop, before a report shows its count."""
    made, outcomes = _play(sim, tmp_path, telemetry_hz, 100.0, [3, 3, 2])
    assert outcomes == [PassOutcome.completed] * 3
    assert 8 <= made <= 8 + 3, f"3 + 3 + 2 planned at {telemetry_hz} Hz: the pen made {made}"
