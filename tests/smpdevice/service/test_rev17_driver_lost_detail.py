"""A pass stopped because its driving client was lost (its lease ran out: a hung client) is
told (session.pass, and the pass's log line) naming that cause, "driver lost: <client>", as
the local path names its own (Ctrl-C, the pedal, a fault), never "stop requested", which
reads as the technician's ask.
Real service, sockets and SQLite; the pen on virtual time, held mid-pass while the lease
clock jumps past the lease (as test_s13_driver_lapse_outcome)."""

from __future__ import annotations

from smpdevice.service.auth import Role
from smpdevice.service.runner import ServiceHandle, ServiceOptions
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.service.conftest import WAIT_S, InNeedleRun, connect, run, wait_until

from .test_review11_reclaim_mid_session import CLEAR, PROFILE, LaggingClock


def test_a_pass_stopped_by_the_dead_man_names_the_lost_driver(vsim, data_dir):
    sim, clock = vsim, LaggingClock()
    options = ServiceOptions(port=sim.url, listen="127.0.0.1:0", data_dir=data_dir,
                             lease_ms=5000, calibration=true_calibration(sim),
                             lease_clock=clock)
    with ServiceHandle(options) as handle:
        pen = handle.server.service.pen
        moment = InNeedleRun(sim, 0, hold=True)

        async def main() -> tuple[dict, str]:
            viewer = await connect(handle, Role.VIEWER)
            op = await connect(handle, Role.OPERATOR)
            await op.drive(lease_ms=1000)
            await op.call("session.run", profile=PROFILE, screening=CLEAR, technician="ana",
                          quick_pass_s=1.2)
            await moment.reached("pass 1 under way")
            op.stop_heartbeats()  # the client hangs: its lease runs out
            # A beat already sent is still read (stop_heartbeats() cancels only the wait for
            # its answer): it would renew the lease after the jump. The service reads this
            # connection's pings and heartbeats in order, so once the ping is answered none
            # is left (a quiet CI run saw the session play on to `completed`).
            await op.call("rpc.ping")
            stops = pen.stops_asked
            clock.jump(5.0)
            clock.caught_up.set()
            # The pen's time stays held until the dead-man has asked its stop: on virtual
            # time the rest of the 1.2 s pass takes no wall time, so a watchdog looking every
            # 20 ms of wall could find the pass already ended (`completed`) on a busy machine.
            await wait_until(lambda: pen.stops_asked > stops, what="the dead-man's stop")
            moment.release()
            told = await viewer.next_notification("session.pass", timeout_s=WAIT_S)
            await viewer.next_notification("session.result", timeout_s=WAIT_S)
            await op.close()
            await viewer.close()
            return told, str(op.client_id)

        told, driver = run(main())
    assert told["outcome"] == "stopped", told  # the pass's result as the clients hear it
    assert told["detail"] == f"driver lost: {driver}", told
