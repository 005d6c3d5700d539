"""review9b R09: `smp replay --into-sim` of a session played on a simulator in another process
(`smp sim --tcp`, reached over socket://; its IDENTIFY says SIMULATED) says what it was, a
simulator whose seed and fault spec the recording does not know, and how to give the spec;
never "recorded on a real pen"."""

from __future__ import annotations

import pytest

from simulators import PenSimulator
from simulators.reach import TcpBridge
from smpdevice.control import PenController
from smpdevice.passlog import PassLog
from smpdevice.replay.into_sim import replay_into_sim
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.replay.conftest import record_session, short_profile


# A session on a wall-clock pen over a TCP bridge (a host cannot drive its clock): realtime.
@pytest.mark.realtime
def test_a_session_on_a_simulator_over_tcp_is_said_to_be_one(tmp_path):
    with PenSimulator(seed=3) as sim, TcpBridge(sim) as bridge, \
            PassLog.open(tmp_path / "passlog.sqlite") as log:
        with PenController.connect(bridge.url, calibration=true_calibration(sim),
                                   lease_ms=500) as pen:
            assert pen.simulated
            recorded = record_session(pen, log, short_profile(seconds=0.3, passes=1))
        report = replay_into_sim(log, recorded.session_id)
    said = " ".join(report.notes)
    assert "real pen" not in said, said
    assert "simulator in another process" in said and "--faults SPEC" in said, said
    assert "seed 0 stands in" in said
