"""Review 18e: a close whose record committed but whose receipt could not be appended to the
anchors file raises PassLogError, yet the session is ended: close() again returns that close's
summary and aftercare sheet (before: PassLogError "is closed", the sheet lost), and suspend()
is refused (before: it returned a summary though the log holds the session closed). Real
simulator (virtual time), real SQLite log; the anchors path a symbolic link, which the log
refuses to append through."""

# ruff: noqa: F811 (fixtures imported from the suite's conftests, used as arguments)
from __future__ import annotations

import pytest

from smpdevice.control import PenController
from smpdevice.control.states import StateError
from smpdevice.passlog import PassLog
from smpdevice.records.model import PassLogError
from smpdevice.sessions.profiles import parse_profile
from smpdevice.sessions.screening import parse_screening
from smpdevice.sessions.session import TreatmentSession
from tests.smpdevice.conftest import sim, true_calibration  # noqa: F401

pytestmark = pytest.mark.virtual_time

CLEAR = dict.fromkeys(("open_sores", "eczema", "dermatitis", "psoriasis_flare", "infection",
                       "sunburn", "keloid_tendency"), False)


def test_a_close_committed_but_unanchored_returns_its_result_again_and_never_suspends(
        sim, tmp_path, monkeypatch):
    monkeypatch.setenv("SMP_KEY_DIR", str(tmp_path / "keys"))
    pen = PenController.connect(sim.url, calibration=true_calibration(sim), clock=sim.clock)
    profile = parse_profile({
        "schema_version": 1, "session_kind": "base_density", "client_ref": "C-0042",
        "zones": {"crown": {"needle": "1RL 0.25mm", "depth_mm": 0.5, "speed_hz": 90.0,
                            "duty_pct": 40.0, "period_ms": 100.0}},
        "plan": [{"zone": "crown", "duration_s": 0.2}]}, pen.zones)
    try:
        with PassLog.open(tmp_path / "passlog.sqlite") as log:
            session = TreatmentSession.open(pen, log, profile, technician="ana",
                                            screening=parse_screening(CLEAR))
            session.play()
            log.anchors_path.unlink(missing_ok=True)
            log.anchors_path.symlink_to(tmp_path / "elsewhere.jsonl")
            with pytest.raises(PassLogError, match="recorded and closed"):
                session.close()
            summary, sheet = session.close()  # the kept result, nothing recorded twice
            assert session.close() == (summary, sheet)
            with pytest.raises(StateError, match="already closed"):
                session.suspend()
            recorded = log.session(session.session_id)
    finally:
        pen.close()
    assert summary["outcome"] == "completed" and session.outcome.value == "completed"
    assert recorded.closed_at is not None and recorded.summary == summary
    assert "C-0042" in sheet
