"""Review 16 (b16d).

A pass planned in impressions whose session thread is held up (one slow redraw) runs on
until the zone's max_pass_s: 3 impressions planned, 11 made with max_pass_s 1 s (with the
built-in 600 s, up to 600 s of needle on one spot), recorded `stopped`.

Promised: docs/safety.md "Overworking one spot": the controller stops a pass of a session at
its planned end when the session's thread is held up (review 15, timed passes only); the end
of a pass planned in impressions takes every report as it is read."""

# ruff: noqa: F811 (fixtures imported from the suite's conftests, used as arguments)
from __future__ import annotations

import math

import pytest

from smpdevice.control.news import PLANNED_END_GRACE_S
from smpdevice.passlog import PassLog
from smpdevice.sessions.profiles import parse_profile
from smpdevice.sessions.screening import parse_screening
from smpdevice.sessions.session import TreatmentSession
from tests.smpdevice.conftest import sim, true_calibration  # noqa: F401
from tests.smpdevice.sessions.test_rev16_pass_at_max_pass_s import CLEAR, ZONES, _connect

pytestmark = pytest.mark.virtual_time
PLANNED = 3
PERIOD_S = 0.1
# its count as reported, then the grace its caller has to stop it (PLANNED_END_GRACE_S, as a
# timed pass's), then the stop's own impression at most
MOST = PLANNED + math.ceil(PLANNED_END_GRACE_S / PERIOD_S) + 1


def test_an_impressions_pass_ends_at_its_plan_when_the_thread_is_held(sim, tmp_path):
    profile = parse_profile({
        "schema_version": 1, "session_kind": "base_density", "client_ref": "C-0042",
        "zones": {"crown": {"needle": "1RL 0.25mm", "depth_mm": 0.5, "speed_hz": 90.0,
                            "duty_pct": 40.0, "period_ms": PERIOD_S * 1000}},
        "plan": [{"zone": "crown", "impressions": PLANNED}]}, ZONES)
    pen = _connect(sim)
    held: list[int] = []

    def slow_redraw(_progress) -> None:
        if not held:
            held.append(1)
            pen.pause(2.5)  # one slow redraw, on the controller's (virtual) clock

    try:
        with PassLog.open(tmp_path / "passlog.sqlite") as log:
            session = TreatmentSession.open(pen, log, profile, technician="ana",
                                            screening=parse_screening(CLEAR))
            [result] = session.play(on_progress=slow_redraw)
            session.close()
            [record] = log.passes(session.session_id)
    finally:
        pen.close()
    assert held
    assert PLANNED <= record.impressions <= MOST, (
        f"{PLANNED} impressions planned, {record.impressions} made: {result.outcome.value}, "
        f"{result.detail!r}")
    assert result.outcome.value == "completed", (result.outcome, result.detail)
