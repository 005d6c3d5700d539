"""Review 11 (REVC C06): `smp replay --into-sim` of a session recorded on a pen with link faults.

docs/simulator.md step 3: the simulator is built as the recorded one, less the faults on the
link's bytes (their effect on what the pen said is in the recorded bytes already); device
faults and the host->pen type faults stay. A session recorded under `delay=` or `split=`, and
under `drop=`/`flip=`/`junk=`/`dup=` when no EVENT was touched, replays into it as a match."""

from __future__ import annotations

import pytest

from firmware_protocol.codes import MsgType
from simulators import VirtualClock
from smpdevice.control import PenController
from smpdevice.passlog import PassLog
from smpdevice.replay.into_sim import replay_into_sim
from smpdevice.replay.runner import replay_session
from smpdevice.replay.sim_pen import build_simulator
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.replay.conftest import record_session, short_profile


@pytest.mark.parametrize("spec,seed", [
    ("delay=0.01", 3),  # every pen->host frame 10 ms late: the replay found 'nothing'
    ("split=1", 4),  # every pen->host frame in two writes 2 ms apart
    ("delay=0.003,split=0.5,junk=0.3", 5),
    ("drop=0.002", 3),  # random bytes lost both ways
    ("flip=0.001", 4),  # random bits flipped both ways
])
def test_a_session_recorded_under_link_faults_replays_into_the_simulator(tmp_path, spec,
                                                                         seed) -> None:
    url = f"pensim://?seed={seed}&clock=virtual&faults={spec.replace('=', '%3D')}"
    pen = PenController.connect(url, lease_ms=200)
    try:
        pen.set_calibration(true_calibration(pen.link.port.simulator))
        with PassLog.open(tmp_path / "passlog.sqlite") as log:
            rec = record_session(pen, log, short_profile(seconds=0.6, passes=3))
            pen.close()
            assert replay_session(log, rec.session_id).match
            into = replay_into_sim(log, rec.session_id)
    finally:
        pen.close()
    assert into.match, into.difference
    assert into.matched > 0


def test_the_rebuilt_simulator_keeps_device_and_type_faults_and_drops_byte_faults() -> None:
    spec = "delay=0.01,split=0.5,dup=0.2,junk=0.1,drop=0.01,flip=0.01,drop_type=ESTOP," \
           "delay_type=ARM:0.2,jam@2-3,brownout~0.1"
    for faults, options in ((None, {"faults": spec}), (spec, {})):  # recorded, or --faults
        sim = build_simulator(3, options, faults, VirtualClock())
        try:
            link = sim.link.config
            assert (link.delay_s, link.split_p, link.dup_p, link.junk_p, link.drop_p,
                    link.flip_p) == (0, 0, 0, 0, 0, 0)
            assert link.drop_in == (MsgType.ESTOP,)
            assert (link.delay_in, link.delay_in_s) == ((MsgType.ARM,), 0.2)
            assert sorted(action for _, _, action, _ in sim._events) == [
                "_random", "brownout", "jam", "jam"]
        finally:
            sim.close()
