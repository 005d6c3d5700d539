"""A session run by `smp serve` and stopped from a client (the console's E-stop, its stop):
the input is in the recording, and `smp replay` matches."""

from __future__ import annotations

from importlib import resources

import pytest

from firmware_protocol.codes import FirmwareState
from smpdevice.passlog import PassLog
from smpdevice.paths import pass_log_paths
from smpdevice.replay.runner import replay_session
from smpdevice.service.auth import Role
from smpdevice.sessions.screening import QUESTIONS
from tests.smpdevice.replay.test_replay_inputs import inputs_of
from tests.smpdevice.service.conftest import (  # noqa: F401 - fixtures
    InNeedleRun,
    connect,
    data_dir,
    run,
    service,
    vsim,
    wait_until,
    while_held,
)

PROFILE = (resources.files("smpdevice") / "data" / "session1_base_density.yaml").read_text()
CLEAR = {name: False for name in QUESTIONS}


@pytest.fixture
def sim(vsim):  # noqa: F811
    """The pen on virtual time (the service's controller drives its clock): the stop comes
    while the pen's time stands still at its third impression, never in a race with the pass."""
    return vsim


def served_session(service, sim, how: str) -> dict:  # noqa: F811
    """A session through the service, stopped mid-pass by a viewer's E-stop or the
    operator's `session.stop`; returns its result."""
    async def main() -> dict:
        op = await connect(service, Role.OPERATOR)
        viewer = await connect(service, Role.VIEWER)
        # a driver's lease a loaded machine's late heartbeat never lapses: a lapse would
        # stop the pen itself (a `pen_stop` input), which is not what this test is about
        await op.drive(lease_ms=5000)
        mid_pass = InNeedleRun(sim, 0, hold=True, impressions=3)
        await op.call("session.run", profile=PROFILE, screening=CLEAR, technician="t",
                      quick_pass_s=20.0)
        await mid_pass.reached("three impressions")
        assert sim.firmware.state is FirmwareState.RUNNING
        if how == "estop":  # the controller latches `estop` as it writes ESTOP
            await while_held(mid_pass, viewer.estop(),
                             lambda: service.pen.state.value == "estop")
        else:
            work = service.server.service.work
            stops = work.stops_asked
            await while_held(mid_pass, op.call("session.stop"),
                             lambda: work.stops_asked > stops)
        result = await viewer.next_notification("session.result", timeout_s=60)
        await op.close()
        await viewer.close()
        return result

    return run(main())  # type: ignore[return-value]


def the_log(data_dir):  # noqa: F811
    (path,) = [p for p in pass_log_paths() if p.exists()]
    return PassLog(path, readonly=True)


@pytest.mark.parametrize("how", ["estop", "stop"])
def test_a_served_session_stopped_by_a_client_replays(service, sim, data_dir, how):  # noqa: F811
    result = served_session(service, sim, how)
    sid = result["session_id"]
    with the_log(data_dir) as log:
        recorded = inputs_of(log.path.parent / "recordings" / f"{sid}.mcap")
        kinds = [i["kind"] for i in recorded]
        # session.stop: the session stops its own pass (one actor on the pen), no pen_stop
        assert kinds and kinds[0] == ("estop" if how == "estop" else "stop"), recorded
        assert "pen_stop" not in kinds, recorded
        report = replay_session(log, sid)
    assert report.match, report.difference


def test_a_served_session_resumed_after_the_service_reconnected_replays(data_dir):  # noqa: F811
    """The cable is pulled mid-pass and plugged back at once; the service reconnects before
    the pen's lease (2 s) runs out, and its handshake stops the needle, outside both parts'
    recordings; `session.resume` plays the rest (review6 R04, R05). Both replays match: part
    1's lost link is fed, and --into-sim stops the simulator's needle between the parts (or
    clears the lease fault, if this machine was slower than the lease)."""
    from simulators import PenSimulator, VirtualClock
    from smpdevice.replay.into_sim import replay_into_sim
    from smpdevice.service.runner import ServiceHandle, ServiceOptions
    from tests.smpdevice.conftest import true_calibration
    from tests.smpdevice.service.conftest import WAIT_S, InNeedleRun
    from tests.smpdevice.service.test_service_resume import CLEAR as SCREENED
    from tests.smpdevice.service.test_service_resume import PASS_S, log_path
    from tests.smpdevice.service.test_service_resume import PROFILE as PLAN

    # On virtual time (the service's controller drives the pen's clock): the session plays
    # as fast as the computer computes it, and the cable is pulled at a moment of the pen's
    # own time, the first impression of pass 1, never in a race with the pass's end.
    with PenSimulator(seed=5, clock=VirtualClock(host_driven=True)) as pen_sim, \
            ServiceHandle(ServiceOptions(
            port=pen_sim.url, listen="127.0.0.1:0", data_dir=data_dir, lease_ms=2000,
            calibration=true_calibration(pen_sim))) as served:
        async def main():
            viewer = await connect(served, Role.VIEWER)
            op = await connect(served, Role.OPERATOR)
            pulled = InNeedleRun(pen_sim, 1, pen_sim.disconnect)
            await op.drive(lease_ms=2000)
            await op.call("session.run", profile=PLAN, screening=SCREENED, technician="ana",
                          quick_pass_s=PASS_S, leave_open=True)
            lost = await viewer.next_notification("session.result", timeout_s=WAIT_S)
            assert pulled.fired.is_set(), "the session ended before the cable was pulled"
            pen_sim.reconnect()
            await op.call("pen.reconnect")
            await wait_until(lambda: served.pen.state.value in ("idle", "fault"), what="back")
            if served.pen.state.value != "idle":  # slower than the lease: it lapsed
                tech = await connect(served, Role.TECHNICIAN)
                await tech.call("pen.clear_faults", reason="cable back, lease expired")
                await tech.close()
                await wait_until(lambda: served.pen.state.value == "idle", what="idle")
            await op.call("session.resume", session_id=lost["session_id"], technician="bo")
            done = await viewer.next_notification("session.result", timeout_s=WAIT_S * 2)
            await op.close()
            await viewer.close()
            return lost, done

        lost, done = run(main())
        log_file = log_path(served)
    assert lost["outcome"] == "link_lost" and lost["left_open"], lost
    assert done["outcome"] == "completed", done
    with PassLog(log_file, readonly=True) as log:
        plain = replay_session(log, lost["session_id"])
        assert plain.match, (plain.difference, plain.notes)
        into = replay_into_sim(log, lost["session_id"])
    assert into.match, (into.difference, [r.started for r in into.part_results])
    assert into.parts == 2
