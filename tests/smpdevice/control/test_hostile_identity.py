"""A pen whose IDENTIFY the host cannot work with is refused at connect, before a session
(review 5): `pensim://?lease=20` used to connect, open a session and fail at the first
LEASE_RENEW; telemetry_max_hz=0 killed the request engine's thread with ZeroDivisionError;
an empty or escape-laden serial keyed calibrations and records; inverted limits were taken."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from simulators.pen_model import PenModel
from smpdevice.cli import main
from smpdevice.control.controller import PenController
from smpdevice.control.options import LEASE_RANGE_MS
from smpdevice.control.states import HandshakeError, State
from tests.smpdevice.virtual_time import virtual_sim

pytestmark = pytest.mark.virtual_time
EXAMPLES = Path(__file__).resolve().parents[3] / "examples"

CASES = [
    ({"lease_max_ms": 20}, ["grants a lease of at most 20 ms", "host lease_ms=500",
                            f"at least {LEASE_RANGE_MS[0]} ms"]),
    ({"lease_max_ms": 1}, ["at most 1 ms", "pensim://?lease=2000"]),
    ({"telemetry_max_hz": 0, "telemetry_default_hz": 0}, ["telemetry_max_hz=0", "at least 1 Hz"]),
    ({"depth_min_um": 2000, "depth_max_um": 100}, ["depth_min_um=2000 above depth_max_um=100"]),
    ({"speed_min_hz": 150.0, "speed_max_hz": 40.0}, ["speed_min_centihz=15000 above"]),
    ({"duty_min_pct": 50.0, "duty_max_pct": 10.0}, ["duty_min_permille=500 above"]),
    ({"period_min_ms": 500.0, "period_max_ms": 100.0}, ["period_min_us=500000 above"]),
    ({"duty_max_pct": 150.0}, ["duty_max_permille=1500", "at most 100 %"]),
    ({"serial": "\x1b[2Jevil"}, ["serial number b'\\x1b[2Jevil", "printable ASCII"]),
    ({"serial": "\x00"}, ["serial number b'\\x00", "1..12 printable ASCII"]),
    ({"serial": "AB\x00CD"}, ["serial number b'AB\\x00CD"]),
    ({"serial": "SMP 12"}, ["no spaces"]),
]


@pytest.mark.parametrize(("model", "says"), CASES)
def test_a_pen_the_host_cannot_work_with_is_refused_at_connect(model, says):
    with virtual_sim(model=PenModel(seed=5, **model)) as sim:
        with pytest.raises(HandshakeError) as exc:
            PenController.connect(sim.url, lease_ms=500, clock=sim.clock)
        message = str(exc.value)
        for text in says:
            assert text in message, message
        assert "another pen" in message or "its maker" in message, message
        # nothing was driven: the pen was never armed, and its lease never granted
        assert sim.firmware.state.name in ("IDLE", "FAULT"), sim.firmware.state


def test_a_lease_shorter_than_the_hosts_but_keepable_is_taken_and_used():
    with virtual_sim(model=PenModel(seed=5, lease_max_ms=LEASE_RANGE_MS[0] + 10)) as sim:
        pen = PenController.connect(sim.url, lease_ms=500, clock=sim.clock)
        try:
            assert pen.state is State.IDLE and pen.lease_ms == LEASE_RANGE_MS[0] + 10
        finally:
            pen.close()


def test_smp_run_refuses_the_pen_before_any_session_is_opened(tmp_path, monkeypatch):
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    result = runner.invoke(main, ["run", str(EXAMPLES / "session1_base_density.yaml"), "--port",
                                  "pensim://?lease=20", "-t", "ana", "--screening",
                                  str(EXAMPLES / "screening_clear.yaml")])
    assert result.exit_code == 2, result.output
    assert "grants a lease of at most 20 ms" in result.output, result.output
    assert "Traceback" not in result.output and "INCOMPLETE" not in result.output
    listed = runner.invoke(main, ["sessions", "list"])
    assert listed.exit_code == 0, listed.output
    assert not re.search(r"\bS[0-9a-f]{16}\b", listed.output), listed.output
