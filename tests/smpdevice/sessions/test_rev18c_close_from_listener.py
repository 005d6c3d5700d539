"""Review 18e: `TreatmentSession.close()` (and suspend()) called from a state listener (the
controller's loop thread) while play() runs a pass is refused at once, changing nothing: the
pass and the next one complete. Before, with the end lock free, it marked the session ended
and stopped the needle before refusing (pass `stopped`, the second pass dropped). Real
simulator, virtual time."""

# ruff: noqa: F811 (fixtures imported from the suite's conftests, used as arguments)
from __future__ import annotations

import pytest

from smpdevice.control import PenController, State
from smpdevice.control.states import StateError
from smpdevice.passlog import PassLog
from smpdevice.sessions.profiles import parse_profile
from smpdevice.sessions.screening import parse_screening
from smpdevice.sessions.session import TreatmentSession
from tests.smpdevice.conftest import sim, true_calibration  # noqa: F401

pytestmark = pytest.mark.virtual_time

CLEAR = dict.fromkeys(("open_sores", "eczema", "dermatitis", "psoriasis_flare", "infection",
                       "sunburn", "keloid_tendency"), False)


def test_session_close_or_suspend_from_a_listener_changes_nothing(sim, tmp_path):
    pen = PenController.connect(sim.url, calibration=true_calibration(sim), clock=sim.clock)
    profile = parse_profile({
        "schema_version": 1, "session_kind": "base_density", "client_ref": "C-0042",
        "zones": {"crown": {"needle": "1RL 0.25mm", "depth_mm": 0.5, "speed_hz": 90.0,
                            "duty_pct": 40.0, "period_ms": 100.0}},
        "plan": [{"zone": "crown", "duration_s": 0.5}, {"zone": "crown", "duration_s": 0.5}]},
        pen.zones)
    refusals: list[Exception] = []

    def end_from_listener(_old, new, _reason) -> None:
        if new is State.RUNNING and not refusals:
            for end in (session.close, session.suspend):
                try:
                    end()
                except StateError as exc:
                    refusals.append(exc)

    try:
        with PassLog.open(tmp_path / "passlog.sqlite") as log:
            session = TreatmentSession.open(pen, log, profile, technician="ana",
                                            screening=parse_screening(CLEAR))
            pen.add_state_listener(end_from_listener)
            results = session.play()
            pen.state_listeners.remove(end_from_listener)
            summary, _sheet = session.close()
    finally:
        pen.close()
    assert len(refusals) == 2 and all("loop thread" in str(e) for e in refusals), refusals
    assert [r.outcome.value for r in results] == ["completed", "completed"], results
    assert summary["outcome"] == "completed", summary
